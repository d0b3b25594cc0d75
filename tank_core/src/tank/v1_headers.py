"""Glance v1's header vocabulary, shared by the server (:mod:`tank.api.meta`) and the
client (:mod:`tank.client.wire`), so both sides agree on one list."""

from __future__ import annotations

#: Image fields travel as ``x-image-meta-<field>`` headers ...
META_PREFIX = "x-image-meta-"
#: ... and properties as ``x-image-meta-property-<name>``.
PROPERTY_PREFIX = "x-image-meta-property-"

#: Fields a client may set in headers (besides ``id`` on create, and ``size``,
#: ``checksum``, ``store`` and ``location``, which describe the data). ``is_public`` is
#: v1's view of ``visibility``.
SETTABLE_FIELDS = frozenset(
    {
        "name",
        "disk_format",
        "container_format",
        "is_public",
        "owner",
        "min_ram",
        "min_disk",
        "protected",
    }
)
