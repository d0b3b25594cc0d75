"""The Images HTTP API, wire-compatible with OpenStack Glance v1.

``make_app(service)`` returns a WSGI application; ``tank-api`` serves it with
:mod:`tank.web.server`, and any other WSGI server that streams request bodies can mount it.
"""

from tank.api.app import Api, ApiConfig, make_app

__all__ = ["Api", "ApiConfig", "make_app"]
