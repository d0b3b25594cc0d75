"""Request ids, as oslo.middleware's ``RequestId`` makes them (Glance's pipeline).

Every request gets an id of its own, ``req-<uuid4>``, sent back in
``X-Openstack-Request-Id`` and written in its access-log line. A caller's own
``X-Openstack-Request-Id`` never replaces it; when it has the same ``req-<uuid>``
shape it is kept as the *global* request id (oslo's ``global_request_id``) and logged
beside ours, so a request can be followed across services.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

HEADER = "X-Openstack-Request-Id"
#: WSGI environ keys (oslo.middleware's names).
ENV_REQUEST_ID = "openstack.request_id"
ENV_GLOBAL_REQUEST_ID = "openstack.global_request_id"

_GLOBAL = re.compile(r"^req-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def global_request_id(environ: Mapping[str, Any]) -> str | None:
    """The caller's request id if it is a well-formed ``req-<uuid>``, else None."""
    value = environ.get("HTTP_X_OPENSTACK_REQUEST_ID")
    if isinstance(value, str) and _GLOBAL.match(value):
        return value
    return None


def assign(environ: dict[str, Any]) -> str:
    """Give the request its id (and global id, if the caller sent one); the id."""
    request_id = environ.get(ENV_REQUEST_ID)
    if not request_id:
        request_id = environ[ENV_REQUEST_ID] = new_request_id()
        caller = global_request_id(environ)
        if caller is not None:
            environ[ENV_GLOBAL_REQUEST_ID] = caller
    return str(request_id)
