"""What a v2 client discovers before it calls: the API versions, JSON schemas, import
methods, stores, and the caller's quota usage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tank import errors
from tank.api.v2.schemas import SCHEMA_DOCUMENTS
from tank.model import Context
from tank.store import Capability
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api

#: v2 minor versions as Glance 33 lists them without an image cache, newest (current)
#: first: 2.17 is the locations API for services (tank.api.v2.locations), which
#: python-glanceclient uses only when 2.17 is listed.
V2_VERSIONS = tuple(f"v2.{minor}" for minor in range(17, -1, -1))
V1_VERSIONS = ("v1.1", "v1.0")


def versions(api: Api, req: Request, ctx: Context) -> Response:
    """300 Multiple Choices, as Glance answers ``GET /``: keystoneauth finds v2 here
    whether it was given ``http://host:port`` or ``http://host:port/v2``."""
    base = req.base_url
    listed = [
        _version(vid, "CURRENT" if i == 0 else "SUPPORTED", f"{base}/v2/")
        for i, vid in enumerate(V2_VERSIONS)
    ]
    listed += [_version(vid, "DEPRECATED", f"{base}/v1/") for vid in V1_VERSIONS]
    return Response.json({"versions": listed}, 300)


def _version(vid: str, status: str, href: str) -> dict[str, object]:
    return {"id": vid, "status": status, "links": [{"rel": "self", "href": href}]}


def schema(api: Api, req: Request, ctx: Context, name: str) -> Response:
    document = SCHEMA_DOCUMENTS.get(name)
    if document is None:
        raise errors.NotFound(f"no schema {name[:80]!r}: there are {', '.join(SCHEMA_DOCUMENTS)}")
    return Response(
        200,
        [("Content-Type", "application/json"), ("Content-Length", str(len(document)))],
        [document],
    )


def import_info(api: Api, req: Request, ctx: Context) -> Response:
    methods = api.import_methods()
    return Response.json(
        {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": list(methods),
            }
        }
    )


def stores_info(api: Api, req: Request, ctx: Context) -> Response:
    """Configured stores (``id``, ``description``, the default flagged, read-only ones
    marked), as Glance's multi-store ``/v2/info/stores``."""
    default = api.service.stores.default
    out = []
    for backend in api.service.stores:
        entry: dict[str, object] = {
            "id": backend.name,
            "description": f"{backend.type_name} store",
        }
        if backend.name == default:
            entry["default"] = True
        if Capability.WRITE not in backend.capabilities:
            entry["read-only"] = True
        out.append(entry)
    return Response.json({"stores": out})


def usage_info(api: Api, req: Request, ctx: Context) -> Response:
    """The caller's project's limits and usage (Glance's ``GET /v2/info/usage``):
    ``{"usage": {"image_size_total": {"limit": L, "usage": U}, ...}}``, sizes in MiB,
    -1 for no limit."""
    if ctx.tenant is None:
        raise errors.Invalid("quota usage is per project, and this request has none")
    return Response.json({"usage": api.service.usage(ctx.tenant)})
