"""Image endpoints of the Images API v2: create, list, show, patch, delete, tags,
deactivate/reactivate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tank import errors
from tank.api.paths import image_id_of
from tank.api.v2 import bodies, patch, views
from tank.api.v2.listing import list_query
from tank.model import Context, Image, parse_tag
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api


def live_image(api: Api, ctx: Context, image_id: str) -> Image:
    """The image a v2 path names, if ``ctx`` sees it and it is not deleted (v2 shows no
    deleted images, not even to admins); NotFound otherwise."""
    image = api.service.get(image_id_of(image_id), context=ctx)
    if image.deleted:
        raise errors.NotFound(f"image {image.id} is deleted")
    return image


def render(api: Api, ctx: Context, image: Image) -> dict[str, Any]:
    """The image as this caller may see it: ``direct_url`` only with
    ``show_image_direct_url`` and to admins (never with secrets)."""
    return views.image_json(image, show_direct_url=api.direct_url(ctx)(image))


def _json_object(req: Request) -> Any:
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype != "application/json":
        raise errors.UnsupportedMediaType(
            f"expected a JSON body (application/json), not {ctype[:80]!r}"
        )
    return req.json()


def import_headers(api: Api) -> list[tuple[str, str]]:
    """What a client needs to pick how to send data (Glance's interoperable import)."""
    stores = ",".join(backend.name for backend in api.service.stores)
    return [
        ("OpenStack-image-import-methods", ",".join(api.import_methods())),
        ("OpenStack-image-store-ids", stores),
    ]


def create(api: Api, req: Request, ctx: Context) -> Response:
    fields = bodies.parse_create(_json_object(req), is_admin=ctx.is_admin, tenant=ctx.tenant)
    image = api.service.create(fields, context=ctx)
    headers = [("Location", f"{req.base_url}/v2/images/{image.id}"), *import_headers(api)]
    return Response.json(render(api, ctx, image), 201, headers)


def index(api: Api, req: Request, ctx: Context) -> Response:
    query = list_query(req.query_items)
    try:
        images = api.service.list(query, context=ctx)
    except errors.NotFound:
        raise errors.Invalid(f"invalid marker: no image {query.marker}") from None
    more = len(images) == query.limit and query.limit > 0
    first, next_url = views.collection_links(req.query_items, images[-1].id if more else None)
    body = views.images_json(
        images,
        first_url=first,
        next_url=next_url,
        image_view=lambda image: render(api, ctx, image),
    )
    return Response.json(body)


def show(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    return Response.json(render(api, ctx, live_image(api, ctx, image_id)))


def update(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    image_id = image_id_of(image_id)
    ops = patch.parse_patch(req.json(), req.headers.get("content-type"))
    image = live_image(api, ctx, image_id)
    changes = patch.apply_patch(image, ops, is_admin=ctx.is_admin)
    if changes:
        image = api.service.update(
            image_id, changes, context=ctx, purge_props="properties" in changes
        )
    return Response.json(render(api, ctx, image))


def delete(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    # a pending_delete image is gone in v2 (404), though v1 shows it to admins
    deleted = api.service.delete(live_image(api, ctx, image_id).id, context=ctx)
    api.cancel_import(deleted.id)
    return Response.empty(204)


def add_tag(api: Api, req: Request, ctx: Context, image_id: str, tag: str) -> Response:
    api.service.add_tag(image_id_of(image_id), parse_tag(tag, "tag"), context=ctx)
    return Response.empty(204)


def remove_tag(api: Api, req: Request, ctx: Context, image_id: str, tag: str) -> Response:
    api.service.remove_tag(image_id_of(image_id), tag, context=ctx)
    return Response.empty(204)


def deactivate(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    api.service.deactivate(image_id_of(image_id), context=ctx)
    return Response.empty(204)


def reactivate(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    api.service.reactivate(image_id_of(image_id), context=ctx)
    return Response.empty(204)
