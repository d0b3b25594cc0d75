"""The Glance Images API v2 (wire format, request parsing; router and handlers live here too)."""
