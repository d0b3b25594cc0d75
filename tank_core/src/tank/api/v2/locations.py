"""Locations in the Images API v2, for services: ``POST|GET /v2/images/{id}/locations``
and ``DELETE /v2/stores/{store}/{id}`` (Glance 2024.1+, see :mod:`tank.handover`).

Adding and listing locations is for callers with the ``service`` role (in ``X-Roles``,
or in ``X-Service-Roles`` when a service token came with the user's, as Nova and
Cinder send) and for admins; everyone else gets 403, whatever the image, because a user
who could point an image at data, or see where data lives, is how OSSN-0065 and
OSSN-0090 happened. Removing a store's copy is for admins (Glance's default policy).
Listed locations never show credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tank import errors
from tank.api.paths import image_id_of
from tank.api.v2 import views
from tank.handover import ValidationData
from tank.locations import redact
from tank.model import Context
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api

SERVICE_ROLE = "service"


def _roles(header: str) -> set[str]:
    return {r.strip().lower() for r in header.split(",") if r.strip()}


def require_service(api: Api, req: Request, ctx: Context) -> None:
    """Forbidden unless the caller is an admin or a service."""
    if ctx.is_admin or SERVICE_ROLE in ctx.roles:
        return
    if api.config.auth and SERVICE_ROLE in _roles(req.headers.get("x-service-roles", "")):
        return
    raise errors.Forbidden("only services and admins may add or list image locations")


def add(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    image_id = image_id_of(image_id)
    require_service(api, req, ctx)
    body: Any = req.json()
    if not isinstance(body, dict):
        raise errors.ValidationError("body", "must be a JSON object with a url")
    unknown = sorted(set(body) - {"url", "validation_data"})
    if unknown:
        raise errors.ValidationError(unknown[0][:80], "unknown key")
    if "url" not in body:
        raise errors.ValidationError("url", "is required")
    validation = ValidationData.parse(body.get("validation_data"))
    api.handover.add(image_id, body["url"], validation, context=ctx)
    return Response.empty(202)


def index(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    image_id = image_id_of(image_id)
    require_service(api, req, ctx)
    image = api.handover.get(image_id, context=ctx)
    shown = [{**loc, "url": redact(loc["url"])} for loc in views.locations_json(image)]
    return Response.json(shown)


def remove_from_store(api: Api, req: Request, ctx: Context, store: str, image_id: str) -> Response:
    image_id = image_id_of(image_id)
    if not ctx.is_admin:
        raise errors.Forbidden("only an admin may remove image data from a store")
    api.handover.remove_from_store(image_id, store, context=ctx)
    return Response.empty(204)
