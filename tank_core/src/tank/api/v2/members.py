"""Image sharing in the Images API v2: the owner adds and removes members; each member
answers (pending, accepted, rejected). Only ``shared`` images take members."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tank import errors
from tank.api.paths import image_id_of
from tank.api.v2 import bodies, views
from tank.model import Context, Member, Visibility
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api


def _find(api: Api, ctx: Context, image_id: str, member: str) -> Member:
    for found in api.service.list_members(image_id, context=ctx):
        if found.member == member:
            return found
    raise errors.NotFound(f"{member[:255]!r} is not a member of image {image_id}")


def create(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    image_id = image_id_of(image_id)
    member = bodies.parse_member_create(req.json())
    image = api.service.get(image_id, context=ctx)
    if not ctx.can_modify(image):
        raise errors.Forbidden(f"only the owner of image {image_id} may share it")
    if image.visibility is not Visibility.SHARED:
        raise errors.Forbidden(
            f"image {image_id} is {image.visibility}: only images with visibility 'shared' "
            "take members"
        )
    added = api.service.add_member(image_id, member, context=ctx, new_only=True)
    return Response.json(views.member_json(added))


def index(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    found = api.service.list_members(image_id_of(image_id), context=ctx)
    return Response.json(views.members_json(found))


def show(api: Api, req: Request, ctx: Context, image_id: str, member: str) -> Response:
    return Response.json(views.member_json(_find(api, ctx, image_id_of(image_id), member)))


def update(api: Api, req: Request, ctx: Context, image_id: str, member: str) -> Response:
    status = bodies.parse_member_status(req.json())
    found = api.service.set_member_status(image_id_of(image_id), member, status, context=ctx)
    return Response.json(views.member_json(found))


def delete(api: Api, req: Request, ctx: Context, image_id: str, member: str) -> Response:
    api.service.remove_member(image_id_of(image_id), member, context=ctx)
    return Response.empty(204)
