"""Interoperable import in the Images API v2: ``PUT /v2/images/{id}/stage`` and
``POST /v2/images/{id}/import`` (Glance 33's, and its api-ref ``images-import.inc``).

The work is :class:`tank.imports.service.ImportService`'s; here the request is read.
An import answers 202 at once and runs in the background; clients follow it through
the image's status and its ``os_glance_*`` properties.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tank import errors
from tank.api.paths import image_id_of
from tank.api.v2.data import check_octet_stream
from tank.imports.request import ImportRequest
from tank.model import Context
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api
    from tank.imports.service import ImportService


def _service(api: Api) -> ImportService:
    if api.imports is None:
        raise errors.NotFound("interoperable import is not enabled on this server")
    return api.imports


def stage(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    imports = _service(api)
    image_id = image_id_of(image_id)
    check_octet_stream(req)
    size = req.headers.get("x-openstack-image-size")
    imports.stage(image_id, req.body(), context=ctx, size=size)
    return Response.empty(204)


def import_image(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    imports = _service(api)
    image_id = image_id_of(image_id)
    request = parse_import(req.json(), req.headers.get("x-image-meta-store"))
    imports.start_import(image_id, request, context=ctx)
    return Response.empty(202)


def parse_import(body: Any, store_header: str | None = None) -> ImportRequest:
    """The import body, checked as Glance's deserializer does (400 for each defect)."""
    if not isinstance(body, dict):
        raise errors.Invalid("the import request must be a JSON object")
    method = body.get("method")
    if not isinstance(method, dict):
        raise errors.Invalid("the import request needs a 'method' object")
    name = method.get("name")
    if not isinstance(name, str):
        raise errors.Invalid("the import request needs method.name (a string)")
    uri = method.get("uri")
    if uri is not None and not isinstance(uri, str):
        raise errors.Invalid("method.uri must be a string")
    flags = {}
    for key, default in (("all_stores", False), ("all_stores_must_succeed", True)):
        value = body.get(key, default)
        if not isinstance(value, bool):
            raise errors.Invalid(f"'{key}' must be a boolean")
        flags[key] = value
    stores = body.get("stores")
    if stores is not None:
        if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
            raise errors.Invalid("'stores' must be a list of store names")
        if store_header is not None:
            raise errors.Invalid("give the stores parameter or the x-image-meta-store header")
    elif store_header is not None:
        if flags["all_stores"]:
            raise errors.Invalid("all_stores cannot be given with the x-image-meta-store header")
        stores = [store_header.strip()]
    return ImportRequest(
        method=name,
        uri=uri,
        stores=None if stores is None else tuple(stores),
        all_stores=flags["all_stores"],
        all_stores_must_succeed=flags["all_stores_must_succeed"],
    )
