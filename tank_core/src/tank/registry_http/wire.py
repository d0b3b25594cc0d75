"""What travels between tank-api and a registry: JSON images and members, the request
context as headers, errors with their :mod:`tank.errors` class name.

The registry is trusted with the whole image (store and location included): it binds
loopback by default and must only be reachable by tank-api.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tank import errors
from tank.model import Context, Image, Member, parse_bool

CONTEXT_HEADERS = ("X-Tenant-Id", "X-User-Id", "X-Roles", "X-Is-Admin")


def context_headers(ctx: Context) -> dict[str, str]:
    headers = {"X-Is-Admin": "true" if ctx.is_admin else "false"}
    if ctx.tenant is not None:
        headers["X-Tenant-Id"] = ctx.tenant
    if ctx.user is not None:
        headers["X-User-Id"] = ctx.user
    if ctx.roles:
        headers["X-Roles"] = ",".join(sorted(ctx.roles))
    return headers


def context_from(headers: Mapping[str, str]) -> Context:
    roles = frozenset(r for r in headers.get("x-roles", "").split(",") if r)
    return Context(
        tenant=headers.get("x-tenant-id") or None,
        user=headers.get("x-user-id") or None,
        roles=roles,  # type: ignore[arg-type]  # attrs converter typing
        is_admin=parse_bool("X-Is-Admin", headers.get("x-is-admin", "false")),
    )


def image_to_json(image: Image) -> dict[str, Any]:
    return image.to_dict()


def image_from_json(data: Any) -> Image:
    if not isinstance(data, Mapping):
        raise errors.ValidationError("image", "expected a JSON object")
    return Image.from_dict(data)


def member_to_json(member: Member) -> dict[str, Any]:
    return {
        "image_id": member.image_id,
        "member_id": member.member,
        "can_share": member.can_share,
        "created_at": member.created_at.isoformat(),
        "updated_at": member.updated_at.isoformat(),
    }


def member_from_json(data: Any) -> Member:
    if not isinstance(data, Mapping):
        raise errors.ValidationError("member", "expected a JSON object")
    return Member(
        image_id=data.get("image_id"),
        member=data.get("member_id"),
        can_share=data.get("can_share", False),
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
    )


#: Error classes a registry may answer with, by name; others become StoreError.
ERRORS: dict[str, type[errors.TankError]] = {
    cls.__name__: cls
    for cls in (
        errors.Invalid,
        errors.NotFound,
        errors.Forbidden,
        errors.Conflict,
        errors.Duplicate,
        errors.InvalidTransition,
        errors.StoreUnavailable,
        errors.ConfigError,
    )
}


def error_to_json(exc: errors.TankError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": exc.http_status,
        "type": type(exc).__name__,
        "message": str(exc),
    }
    if isinstance(exc, errors.ValidationError):
        body["field"] = exc.field
        body["message"] = str(exc)[len(exc.field) + 2 :]
    return {"error": body}


def error_from_json(body: Any, status: int, url: str) -> errors.TankError:
    err = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping) or not isinstance(err.get("message"), str):
        return errors.StoreUnavailable(f"registry at {url} answered {status} without an error body")
    if err.get("type") == "ValidationError" and isinstance(err.get("field"), str):
        return errors.ValidationError(err["field"], err["message"])
    cls = ERRORS.get(str(err.get("type")))
    if cls is None:
        for candidate in (errors.NotFound, errors.Conflict, errors.Forbidden, errors.Invalid):
            if candidate.http_status == status:
                cls = candidate
                break
    return (cls or errors.StoreError)(err["message"])
