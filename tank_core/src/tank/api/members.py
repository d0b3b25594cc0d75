"""Membership endpoints of the Glance v1 API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tank import errors
from tank.api.paths import image_id_of
from tank.model import Context, parse_bool, parse_memberships
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api


def list_members(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    members = api.service.list_members(image_id_of(image_id), context=ctx)
    return Response.json(
        {"members": [{"member_id": m.member, "can_share": m.can_share} for m in members]}
    )


def replace_members(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    pairs = parse_memberships(req.json())
    api.service.replace_members(image_id_of(image_id), pairs, context=ctx)
    return Response.empty(204)


def add_member(api: Api, req: Request, ctx: Context, image_id: str, member: str) -> Response:
    body: Any = req.json()
    can_share = False
    if body is not None:
        inner = body.get("member") if isinstance(body, dict) else None
        if not isinstance(inner, dict):
            raise errors.ValidationError("member", 'expected a body {"member": {"can_share": ...}}')
        can_share = parse_bool("can_share", inner.get("can_share", False))
    api.service.add_member(image_id_of(image_id), member, can_share=can_share, context=ctx)
    return Response.empty(204)


def remove_member(api: Api, req: Request, ctx: Context, image_id: str, member: str) -> Response:
    api.service.remove_member(image_id_of(image_id), member, context=ctx)
    return Response.empty(204)


def shared_images(api: Api, req: Request, ctx: Context, member: str) -> Response:
    shared = api.service.shared_with(member, context=ctx)
    return Response.json(
        {"shared_images": [{"image_id": m.image_id, "can_share": m.can_share} for m in shared]}
    )
