"""The Registry REST API as a WSGI application over any Registry implementation.

``GET /images`` (brief) and ``GET /images/detail`` take the Images API's filters, sort and
paging as query parameters; ``POST /images`` takes ``{"image": {...}}``; ``PUT
/images/<id>`` takes ``{"changes": {...}, "purge_props": bool, "expected_status": str}``;
members as in the Images API. The caller's context arrives in headers (see ``wire``).
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from tank import errors
from tank.api.http import Request, Response
from tank.model import BRIEF_FIELDS, Context, ListQuery, Status, parse_bool
from tank.registry import Registry
from tank.registry_http import wire

log = logging.getLogger(__name__)
_PAGING = ("sort_key", "sort_dir", "limit", "marker")


def _body(req: Request, key: str) -> Any:
    data = req.json()
    if not isinstance(data, dict) or key not in data:
        raise errors.ValidationError(key, f'expected a JSON body {{"{key}": ...}}')
    return data[key]


class RegistryApp:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        r = re.compile
        self.routes: list[tuple[re.Pattern[str], dict[str, Callable[..., Response]]]] = [
            (r(r"^/images/?$"), {"GET": self.index, "POST": self.create}),
            (r(r"^/images/detail/?$"), {"GET": self.detail}),
            (
                r(r"^/images/(?P<image_id>[^/]+)/?$"),
                {"GET": self.show, "PUT": self.update, "DELETE": self.delete},
            ),
            (
                r(r"^/images/(?P<image_id>[^/]+)/members/?$"),
                {"GET": self.members, "PUT": self.replace_members},
            ),
            (
                r(r"^/images/(?P<image_id>[^/]+)/members/(?P<member>[^/]+)/?$"),
                {"PUT": self.add_member, "DELETE": self.remove_member},
            ),
            (r(r"^/shared-images/(?P<member>[^/]+)/?$"), {"GET": self.shared}),
        ]

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            response = self._dispatch(Request(environ))
        except errors.TankError as exc:
            response = Response.json(wire.error_to_json(exc), exc.http_status)
        except Exception:
            log.exception(
                "unexpected error in %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            response = Response.json(
                {"error": {"code": 500, "type": "StoreError", "message": "registry error"}}, 500
            )
        start_response(response.status_line, response.headers)
        return response.body

    def _dispatch(self, req: Request) -> Response:
        for pattern, methods in self.routes:
            match = pattern.match(req.path)
            if match is None:
                continue
            handler = methods.get(req.method)
            if handler is None:
                raise errors.Invalid(f"{req.method} is not allowed on {req.path[:200]}")
            params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
            return handler(req, wire.context_from(req.headers), **params)
        raise errors.NotFound(f"no such resource: {req.path[:200]}")

    # --- images ----------------------------------------------------------------------

    def _query(self, req: Request) -> ListQuery:
        filters = {k: v for k, v in req.query.items() if k not in _PAGING}
        return ListQuery(filters=filters, **{k: req.query[k] for k in _PAGING if k in req.query})

    def index(self, req: Request, ctx: Context) -> Response:
        images = self.registry.list(self._query(req), context=ctx)
        return Response.json({"images": [{f: getattr(i, f) for f in BRIEF_FIELDS} for i in images]})

    def detail(self, req: Request, ctx: Context) -> Response:
        images = self.registry.list(self._query(req), context=ctx)
        return Response.json({"images": [wire.image_to_json(i) for i in images]})

    def create(self, req: Request, ctx: Context) -> Response:
        image = self.registry.create(wire.image_from_json(_body(req, "image")))
        return Response.json({"image": wire.image_to_json(image)}, 201)

    def show(self, req: Request, ctx: Context, image_id: str) -> Response:
        return Response.json(
            {"image": wire.image_to_json(self.registry.get(image_id, context=ctx))}
        )

    def update(self, req: Request, ctx: Context, image_id: str) -> Response:
        data = req.json()
        if not isinstance(data, dict) or not isinstance(data.get("changes"), dict):
            raise errors.ValidationError("changes", 'expected a JSON body {"changes": {...}}')
        expected = data.get("expected_status")
        image = self.registry.update(
            image_id,
            data["changes"],
            context=ctx,
            purge_props=parse_bool("purge_props", data.get("purge_props", False)),
            expected_status=None if expected is None else _status(expected),
        )
        return Response.json({"image": wire.image_to_json(image)})

    def delete(self, req: Request, ctx: Context, image_id: str) -> Response:
        return Response.json(
            {"image": wire.image_to_json(self.registry.delete(image_id, context=ctx))}
        )

    # --- members -------------------------------------------------------------------

    def members(self, req: Request, ctx: Context, image_id: str) -> Response:
        found = self.registry.list_members(image_id, context=ctx)
        return Response.json({"members": [wire.member_to_json(m) for m in found]})

    def replace_members(self, req: Request, ctx: Context, image_id: str) -> Response:
        rows = _body(req, "memberships")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise errors.ValidationError("memberships", "expected a list of objects")
        pairs = [
            (r.get("member_id"), parse_bool("can_share", r.get("can_share", False))) for r in rows
        ]
        found = self.registry.replace_members(image_id, pairs, context=ctx)  # type: ignore[arg-type]
        return Response.json({"members": [wire.member_to_json(m) for m in found]})

    def add_member(self, req: Request, ctx: Context, image_id: str, member: str) -> Response:
        data = req.json() or {}
        can_share = parse_bool(
            "can_share", data.get("can_share", False) if isinstance(data, dict) else data
        )
        found = self.registry.add_member(image_id, member, can_share=can_share, context=ctx)
        return Response.json({"member": wire.member_to_json(found)})

    def remove_member(self, req: Request, ctx: Context, image_id: str, member: str) -> Response:
        self.registry.remove_member(image_id, member, context=ctx)
        return Response.empty(204)

    def shared(self, req: Request, ctx: Context, member: str) -> Response:
        found = self.registry.shared_with(member, context=ctx)
        return Response.json({"members": [wire.member_to_json(m) for m in found]})


def _status(value: Any) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise errors.ValidationError("expected_status", f"unknown status {value!r}") from None


def make_registry_app(registry: Registry) -> RegistryApp:
    """The Registry REST API over ``registry`` as a WSGI application."""
    return RegistryApp(registry)
