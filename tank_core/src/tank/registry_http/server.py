"""The Tank Registry REST API as a WSGI application over any Registry implementation.

=========  =================================  ==============================================
GET        /images                            brief listing ``{"images": [...]}``
GET        /images/detail                     full listing; both take the filters, sort_key,
                                              sort_dir, limit and marker of the Images API
POST       /images                            ``{"image": {...}}`` → 201 ``{"image": {...}}``
GET        /images/<id>                       ``{"image": {...}}``
PUT        /images/<id>                       ``{"image": {changes}, "purge_props": bool,
                                              "expected_status": str|null}`` → ``{"image"}``
DELETE     /images/<id>                       → ``{"image": {...}}`` (marked deleted)
GET        /images/<id>/members               ``{"members": [...]}``
PUT        /images/<id>/members               ``{"memberships": [{"member_id", "can_share"}]}``
PUT        /images/<id>/members/<member>      optional ``{"member": {"can_share": bool}}``
DELETE     /images/<id>/members/<member>      → 204
GET        /shared-images/<member>            ``{"members": [...]}``
=========  =================================  ==============================================

Create answers 201 Created (Glance v1's registry said 200; clients accept any 2xx).
Members are answered in full (with timestamps), unlike the Images API. The caller's
context and the error format are in :mod:`tank.registry_http.wire`. Malformed requests
are 400 with a message, never 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from tank import errors
from tank.api.http import Request, Response, route_path, unquote_segment
from tank.model import BRIEF_FIELDS, Context, parse_memberships
from tank.registry import Registry
from tank.registry_http import wire

log = logging.getLogger(__name__)

Handler = Callable[..., Response]


class RegistryApp:
    """A WSGI callable serving ``registry``. Holds no per-request state."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        image, member = r"(?P<image_id>[^/]+)", r"(?P<member>[^/]+)"
        self.routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"^/images/?$"), {"GET": self.index, "POST": self.create}),
            (re.compile(r"^/images/detail/?$"), {"GET": self.detail}),
            (
                re.compile(rf"^/images/{image}/?$"),
                {"GET": self.show, "PUT": self.update, "DELETE": self.delete},
            ),
            (
                re.compile(rf"^/images/{image}/members/?$"),
                {"GET": self.members, "PUT": self.replace_members},
            ),
            (
                re.compile(rf"^/images/{image}/members/{member}/?$"),
                {"PUT": self.add_member, "DELETE": self.remove_member},
            ),
            (re.compile(rf"^/shared-images/{member}/?$"), {"GET": self.shared}),
        ]

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            response = self._dispatch(Request(environ), environ)
        except errors.TankError as exc:
            response = Response.json(wire.error_to_json(exc), exc.http_status)
        except Exception:
            log.exception(
                "unexpected error in %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            failure = errors.StoreError("internal error in the registry; its log has the details")
            response = Response.json(wire.error_to_json(failure), 500)
        start_response(response.status_line, response.headers)
        return response.body

    def _dispatch(self, req: Request, environ: dict[str, Any]) -> Response:
        path, quoted = route_path(environ)
        for pattern, methods in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            handler = methods.get(req.method)
            if handler is None:
                allowed = ", ".join(sorted(methods))
                body = wire.error_to_json(errors.Invalid(f"{req.method} is not allowed here"))
                body["error"].update(code=405, title="Method Not Allowed")
                return Response.json(body, 405, [("Allow", allowed)])
            params = match.groupdict()
            if quoted:
                params = {k: unquote_segment(k, v) for k, v in params.items()}
            return handler(req, wire.context_from(req.headers), **params)
        raise errors.NotFound(f"no such resource: {path[:200]}")

    # --- images ----------------------------------------------------------------------

    def index(self, req: Request, ctx: Context) -> Response:
        images = self.registry.list(wire.query_from_params(req.query), context=ctx)
        rows = (wire.image_to_json(i) for i in images)
        return Response.json({"images": [{f: row[f] for f in BRIEF_FIELDS} for row in rows]})

    def detail(self, req: Request, ctx: Context) -> Response:
        images = self.registry.list(wire.query_from_params(req.query), context=ctx)
        return Response.json({"images": [wire.image_to_json(i) for i in images]})

    def create(self, req: Request, ctx: Context) -> Response:
        data = _json(req)
        image = wire.image_from_json(data.get("image") if isinstance(data, dict) else None)
        return Response.json({"image": wire.image_to_json(self.registry.create(image))}, 201)

    def show(self, req: Request, ctx: Context, image_id: str) -> Response:
        image = self.registry.get(image_id, context=ctx)
        return Response.json({"image": wire.image_to_json(image)})

    def update(self, req: Request, ctx: Context, image_id: str) -> Response:
        changes, purge_props, expected = wire.update_from_json(_json(req))
        image = self.registry.update(
            image_id, changes, context=ctx, purge_props=purge_props, expected_status=expected
        )
        return Response.json({"image": wire.image_to_json(image)})

    def delete(self, req: Request, ctx: Context, image_id: str) -> Response:
        image = self.registry.delete(image_id, context=ctx)
        return Response.json({"image": wire.image_to_json(image)})

    # --- members -------------------------------------------------------------------

    def members(self, req: Request, ctx: Context, image_id: str) -> Response:
        found = self.registry.list_members(image_id, context=ctx)
        return Response.json({"members": [wire.member_to_json(m) for m in found]})

    def replace_members(self, req: Request, ctx: Context, image_id: str) -> Response:
        pairs = parse_memberships(_json(req))
        found = self.registry.replace_members(image_id, pairs, context=ctx)
        return Response.json({"members": [wire.member_to_json(m) for m in found]})

    def add_member(self, req: Request, ctx: Context, image_id: str, member: str) -> Response:
        can_share = wire.can_share_from_json(_json(req))
        found = self.registry.add_member(image_id, member, can_share=can_share, context=ctx)
        return Response.json({"member": wire.member_to_json(found)})

    def remove_member(self, req: Request, ctx: Context, image_id: str, member: str) -> Response:
        self.registry.remove_member(image_id, member, context=ctx)
        return Response.empty(204)

    def shared(self, req: Request, ctx: Context, member: str) -> Response:
        found = self.registry.shared_with(member, context=ctx)
        return Response.json({"members": [wire.member_to_json(m) for m in found]})


def _json(req: Request) -> Any:
    try:
        return req.json()
    except RecursionError:  # json's C scanner on "[[[[..." nested a million deep
        raise errors.Invalid("request body is not valid JSON: nested too deeply") from None


def make_registry_app(registry: Registry) -> RegistryApp:
    """The Registry REST API over ``registry`` as a WSGI application."""
    return RegistryApp(registry)
