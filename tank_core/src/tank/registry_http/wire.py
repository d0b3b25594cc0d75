"""What travels between tank-api and a registry, shared by the client and the server.

Images are ``Image.to_dict()`` JSON and are parsed back by the model, so a bad value gets
the same :class:`~tank.errors.ValidationError` on either side. The request context
travels in headers (``X-Tenant-Id``, ``X-User-Id``, ``X-Roles``, ``X-Is-Admin``, UTF-8),
listings as query parameters parsed by :class:`~tank.model.ListQuery`, and errors as
``{"error": {"code", "title", "message", "type", ["field"]}}`` where ``type`` names the
:mod:`tank.errors` class, so the client raises the very class the registry raised.

The registry trusts all of it, the context and the whole image (store and location
included): it binds loopback by default and must be reachable by tank-api only.
"""

from __future__ import annotations

import builtins
import datetime as dt
import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any

from tank import errors
from tank.model import Context, Image, ListQuery, Location, Member, Status, parse_bool, parse_int
from tank.quotas import RESOURCES, QuotaCheck
from tank.web.messages import reason

#: Query parameters of a listing that are not filters.
PAGING = ("sort", "sort_key", "sort_dir", "limit", "marker")

# --- context ---------------------------------------------------------------------------


def context_headers(ctx: Context) -> dict[str, bytes]:
    """The context as request headers; values are UTF-8 (tenants need not be ASCII)."""
    headers = {"X-Is-Admin": b"true" if ctx.is_admin else b"false"}
    if ctx.tenant is not None:
        headers["X-Tenant-Id"] = _header("tenant", ctx.tenant)
    if ctx.user is not None:
        headers["X-User-Id"] = _header("user", ctx.user)
    if ctx.roles:
        for role in ctx.roles:
            if "," in role:
                raise errors.ValidationError("roles", f"a role cannot contain ',': {role!r}")
        headers["X-Roles"] = _header("roles", ",".join(sorted(ctx.roles)))
    return headers


def _header(field: str, value: str) -> bytes:
    # A value a header cannot carry unchanged would reach the registry as someone else.
    if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise errors.ValidationError(
            field, f"cannot travel in a header (control characters or outer spaces): {value!r}"
        )
    return value.encode("utf-8")


def context_from(headers: Mapping[str, str]) -> Context:
    """The context of a request whose header names are lower-case and values decoded."""
    roles = frozenset(r for r in headers.get("x-roles", "").split(",") if r)
    return Context(
        tenant=headers.get("x-tenant-id") or None,
        user=headers.get("x-user-id") or None,
        roles=roles,  # type: ignore[arg-type]  # attrs converter typing
        is_admin=parse_bool("X-Is-Admin", headers.get("x-is-admin", "false")),
    )


# --- images and members --------------------------------------------------------------


def image_to_json(image: Image) -> dict[str, Any]:
    return image.to_dict()


def image_from_json(data: Any) -> Image:
    if not isinstance(data, Mapping):
        raise errors.ValidationError("image", "expected a JSON object")
    return Image.from_dict(data)


def images_from_json(data: Any) -> builtins.list[Image]:
    if not isinstance(data, list):
        raise errors.ValidationError("images", "expected a JSON list")
    return [image_from_json(row) for row in data]


def member_to_json(member: Member) -> dict[str, Any]:
    return {
        "image_id": member.image_id,
        "member_id": member.member,
        "can_share": member.can_share,
        "status": member.status.value,
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
        status=data.get("status", "pending"),
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
    )


def members_from_json(data: Any) -> builtins.list[Member]:
    if not isinstance(data, list):
        raise errors.ValidationError("members", "expected a JSON list")
    return [member_from_json(row) for row in data]


def memberships_to_json(members: Iterable[tuple[str, bool]]) -> dict[str, Any]:
    return {"memberships": [{"member_id": m, "can_share": c} for m, c in members]}


def can_share_from_json(data: Any) -> bool:
    """``{"member": {"can_share": bool}}`` (Glance v1), or no body at all."""
    if data is None:
        return False
    inner = data.get("member") if isinstance(data, Mapping) else None
    if not isinstance(inner, Mapping):
        raise errors.ValidationError("member", 'expected {"member": {"can_share": ...}}')
    return parse_bool("can_share", inner.get("can_share", False))


# --- updates -----------------------------------------------------------------------


def update_to_json(
    changes: Mapping[str, Any],
    purge_props: bool,
    expected_status: Status | None,
    quota: QuotaCheck | None = None,
) -> dict[str, Any]:
    """The body of ``PUT /images/<id>``: ``{"image": changes, "purge_props": bool,
    "expected_status": str | null}`` (all in the body, typed by JSON), and ``"quota":
    {"limits": {...}, "reserve": {...}}`` with a quota check."""
    body = {
        "image": {k: _json_item(v) for k, v in changes.items()},
        "purge_props": purge_props,
        "expected_status": None if expected_status is None else expected_status.value,
    }
    if quota is not None:
        body["quota"] = quota.to_dict()
    return body


def quota_from_json(data: Any) -> QuotaCheck | None:
    """The ``quota`` of a create or update body, if any."""
    raw = data.get("quota") if isinstance(data, Mapping) else None
    return None if raw is None else QuotaCheck.from_dict(raw)


def reservation_to_json(wanted: int, minimum: int | None, limit: int | None) -> dict[str, Any]:
    """The body of ``PUT /images/<id>/reservations/<resource>``."""
    return {"wanted": wanted, "minimum": minimum, "limit": limit}


def reservation_from_json(data: Any) -> tuple[int, int | None, int | None]:
    if not isinstance(data, Mapping) or "wanted" not in data:
        raise errors.ValidationError("wanted", 'expected {"wanted": bytes, ...}')
    optional = [
        None if data.get(key) is None else parse_int(key, data[key]) for key in ("minimum", "limit")
    ]
    return parse_int("wanted", data["wanted"]), optional[0], optional[1]


def usage_from_json(data: Any) -> dict[str, int]:
    if not isinstance(data, Mapping):
        raise errors.ValidationError("usage", "expected an object")
    return {name: parse_int(name, data.get(name, 0)) for name in RESOURCES}


def update_from_json(data: Any) -> tuple[dict[str, Any], bool, Status | None]:
    if not isinstance(data, Mapping) or not isinstance(data.get("image"), Mapping):
        raise errors.ValidationError("image", 'expected {"image": {...changes}}')
    expected = data.get("expected_status")
    if expected is not None:
        try:
            expected = Status(expected)
        except ValueError:
            raise errors.ValidationError(
                "expected_status", f"unknown status {expected!r}"
            ) from None
    return dict(data["image"]), parse_bool("purge_props", data.get("purge_props", False)), expected


# --- listings ----------------------------------------------------------------------


def query_to_params(query: ListQuery) -> dict[str, str]:
    """A listing as query parameters: plain filter values as text, lists and
    comparisons as JSON arrays, the order as ``sort=key:dir,key:dir``."""
    params = {k: _param(v) for k, v in query.filters.items() if v is not None}
    params["sort"] = ",".join(f"{key}:{direction}" for key, direction in query.sort)
    params["limit"] = str(query.limit)
    if query.marker:
        params["marker"] = query.marker
    return params


def query_from_params(params: Mapping[str, str]) -> ListQuery:
    """Validation is the model's: unknown filters, bad sort keys and limits are
    ValidationErrors here exactly as in-process."""
    filters: dict[str, Any] = {}
    for key, value in params.items():
        if key in PAGING:
            continue
        filters[key] = _json_list(key, value) if value.startswith("[") else value
    args: dict[str, Any] = {k: params[k] for k in ("limit", "marker") if k in params}
    if "sort" in params:
        pairs = [item.partition(":") for item in params["sort"].split(",")]
        args["sort"] = [(key, direction or "asc") for key, _, direction in pairs]
    else:
        args["sort"] = [(params.get("sort_key", "created_at"), params.get("sort_dir", "desc"))]
    return ListQuery(filters=filters, **args)


def _json_list(key: str, value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise errors.ValidationError(key, f"not a JSON list: {value[:80]!r}") from None


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, tuple):
        return json.dumps([_json_item(v) for v in value])
    return str(value)


def _json_item(value: Any) -> Any:
    """A value of a filter or a change as JSON (enums, timestamps, locations)."""
    if isinstance(value, tuple | list):
        return [_json_item(v) for v in value]
    if isinstance(value, Location):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


# --- errors ------------------------------------------------------------------------

#: Error classes a registry may answer with, by name. ``ValidationError`` travels with
#: its ``field``; the others take a message only.
ERRORS: dict[str, type[errors.TankError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type)
    and issubclass(cls, errors.TankError)
    and cls not in (errors.ValidationError, errors.PluginLoadError)
}


def error_to_json(exc: errors.TankError) -> dict[str, Any]:
    status = exc.http_status
    body: dict[str, Any] = {
        "code": status,
        "title": reason(status),
        "message": exc.message,
        "type": type(exc).__name__,
    }
    if isinstance(exc, errors.ValidationError):
        body["field"] = exc.field
        body["message"] = exc.message[len(exc.field) + 2 :]
    return {"error": body}


def error_from_json(body: Any, status: int, url: str) -> errors.TankError:
    """The error a registry answered, as the same tank.errors class.

    An unknown type falls back on the status code. Server-side failures (5xx) say that
    the registry at ``url`` had them, so an operator knows where to look.
    """
    err = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping) or not isinstance(err.get("message"), str):
        return errors.StoreUnavailable(
            f"registry at {url} answered badly: status {status} without an error body"
        )
    message, kind = err["message"], err.get("type")
    if kind == "ValidationError" and isinstance(err.get("field"), str):
        return errors.ValidationError(err["field"], message)
    cls = ERRORS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        by_status = (errors.NotFound, errors.Conflict, errors.Forbidden, errors.Invalid)
        cls = next((c for c in by_status if c.http_status == status), None)
    if cls is None:
        cls = errors.StoreUnavailable if status == 503 else errors.StoreError
    if cls.http_status >= 500:
        message = f"registry at {url}: {message}"
    return cls(message)


def lease_from_json(data: Any, *, with_seconds: bool) -> tuple[str, float]:
    """``{"holder": str, "seconds": number}`` (``seconds`` only ``with_seconds``)."""
    if not isinstance(data, dict):
        raise errors.ValidationError("lease", 'expected a body {"holder": ..., "seconds": ...}')
    holder = data.get("holder")
    if not isinstance(holder, str):
        raise errors.ValidationError("holder", "expected a string")
    if not with_seconds:
        return holder, 0.0
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise errors.ValidationError("seconds", "expected a number of seconds above 0")
    return holder, float(seconds)
