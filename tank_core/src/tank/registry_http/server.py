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
PUT        /images/<id>/members/<member>/status  ``{"status": "accepted"}`` → ``{"member"}``
DELETE     /images/<id>/members/<member>      → 204
GET        /shared-images/<member>            ``{"members": [...]}``
POST       /leases/<name>                     ``{"holder": str, "seconds": number}`` →
                                              ``{"held": bool}`` (admins only)
POST       /leases/<name>/release             ``{"holder": str}`` → 204 (admins only)
PUT        /images/<id>/reservations/<res>    ``{"wanted", "minimum", "limit"}`` → ``{"granted"}``
GET        /usage/<owner>                     ``{"usage": {resource: amount}}`` (bytes)
=========  =================================  ==============================================

A create or update body may carry ``"quota": {"limits": {...}, "reserve": {...}}``
(:class:`tank.quotas.QuotaCheck`), checked in the same transaction.

Create answers 201 Created (Glance v1's registry said 200; clients accept any 2xx).
Members are answered in full (with timestamps), unlike the Images API. The caller's
context and the error format are in :mod:`tank.registry_http.wire`. Malformed requests
are 400 with a message, never 500.
"""

from __future__ import annotations

import logging

from tank import errors
from tank.model import BRIEF_FIELDS, Context, parse_memberships
from tank.registry import Registry
from tank.registry_http import wire
from tank.web import Match, Request, Response, Router, WebApp
from tank.web.messages import reason

log = logging.getLogger(__name__)


class RegistryApp(WebApp):
    """A WSGI callable serving ``registry``. Holds no per-request state."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.router = router = Router()
        router.add("/images", GET=self.index, POST=self.create)
        router.add("/images/detail", GET=self.detail)
        router.add("/images/{image_id}", GET=self.show, PUT=self.update, DELETE=self.delete)
        router.add("/images/{image_id}/members", GET=self.members, PUT=self.replace_members)
        router.add(
            "/images/{image_id}/members/{member}", PUT=self.add_member, DELETE=self.remove_member
        )
        router.add("/images/{image_id}/members/{member}/status", PUT=self.member_status)
        router.add("/shared-images/{member}", GET=self.shared)
        router.add("/leases/{name}", POST=self.hold_lease)
        router.add("/leases/{name}/release", POST=self.release_lease)
        router.add("/images/{image_id}/reservations/{resource}", PUT=self.reserve)
        router.add("/usage/{owner}", GET=self.usage)

    def call(self, req: Request, match: Match) -> Response:
        return match.handler(req, wire.context_from(req.headers), **match.params)  # type: ignore[no-any-return]

    def error(self, status: int, message: str, exc: BaseException | None = None) -> Response:
        """Errors travel with their tank.errors class, so the client raises the same."""
        if isinstance(exc, errors.TankError) and status != 405:
            return Response.json(wire.error_to_json(exc), status)
        if status == 500:
            message = "internal error in the registry; its log has the details"
            return Response.json(wire.error_to_json(errors.StoreError(message)), 500)
        body = wire.error_to_json(errors.Invalid(message))
        body["error"].update(code=status, title=reason(status))
        return Response.json(body, status)

    # --- images ----------------------------------------------------------------------

    def index(self, req: Request, ctx: Context) -> Response:
        images = self.registry.list(wire.query_from_params(req.query), context=ctx)
        rows = (wire.image_to_json(i) for i in images)
        return Response.json({"images": [{f: row[f] for f in BRIEF_FIELDS} for row in rows]})

    def detail(self, req: Request, ctx: Context) -> Response:
        images = self.registry.list(wire.query_from_params(req.query), context=ctx)
        return Response.json({"images": [wire.image_to_json(i) for i in images]})

    def create(self, req: Request, ctx: Context) -> Response:
        data = req.json()
        image = wire.image_from_json(data.get("image") if isinstance(data, dict) else None)
        quota = wire.quota_from_json(data)
        created = self.registry.create(image, quota=quota) if quota else self.registry.create(image)
        return Response.json({"image": wire.image_to_json(created)}, 201)

    def show(self, req: Request, ctx: Context, image_id: str) -> Response:
        image = self.registry.get(image_id, context=ctx)
        return Response.json({"image": wire.image_to_json(image)})

    def update(self, req: Request, ctx: Context, image_id: str) -> Response:
        data = req.json()
        changes, purge_props, expected = wire.update_from_json(data)
        quota = wire.quota_from_json(data)
        extra = {"quota": quota} if quota is not None else {}
        image = self.registry.update(
            image_id,
            changes,
            context=ctx,
            purge_props=purge_props,
            expected_status=expected,
            **extra,
        )
        return Response.json({"image": wire.image_to_json(image)})

    def delete(self, req: Request, ctx: Context, image_id: str) -> Response:
        image = self.registry.delete(image_id, context=ctx)
        return Response.json({"image": wire.image_to_json(image)})

    # --- quotas --------------------------------------------------------------------

    def reserve(self, req: Request, ctx: Context, image_id: str, resource: str) -> Response:
        wanted, minimum, limit = wire.reservation_from_json(req.json())
        granted = self.registry.reserve(image_id, resource, wanted, minimum=minimum, limit=limit)
        return Response.json({"granted": granted})

    def usage(self, req: Request, ctx: Context, owner: str) -> Response:
        return Response.json({"usage": self.registry.usage(owner)})

    # --- members -------------------------------------------------------------------

    def members(self, req: Request, ctx: Context, image_id: str) -> Response:
        found = self.registry.list_members(image_id, context=ctx)
        return Response.json({"members": [wire.member_to_json(m) for m in found]})

    def replace_members(self, req: Request, ctx: Context, image_id: str) -> Response:
        pairs = parse_memberships(req.json())
        found = self.registry.replace_members(image_id, pairs, context=ctx)
        return Response.json({"members": [wire.member_to_json(m) for m in found]})

    def add_member(self, req: Request, ctx: Context, image_id: str, member: str) -> Response:
        can_share = wire.can_share_from_json(req.json())
        found = self.registry.add_member(image_id, member, can_share=can_share, context=ctx)
        return Response.json({"member": wire.member_to_json(found)})

    def remove_member(self, req: Request, ctx: Context, image_id: str, member: str) -> Response:
        self.registry.remove_member(image_id, member, context=ctx)
        return Response.empty(204)

    def member_status(self, req: Request, ctx: Context, image_id: str, member: str) -> Response:
        data = req.json()
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, str):
            raise errors.ValidationError("status", 'expected a body {"status": "..."}')
        found = self.registry.set_member_status(image_id, member, status, context=ctx)
        return Response.json({"member": wire.member_to_json(found)})

    def shared(self, req: Request, ctx: Context, member: str) -> Response:
        found = self.registry.shared_with(member, context=ctx)
        return Response.json({"members": [wire.member_to_json(m) for m in found]})

    # --- leases --------------------------------------------------------------------

    def hold_lease(self, req: Request, ctx: Context, name: str) -> Response:
        _admin_only(ctx)
        holder, seconds = wire.lease_from_json(req.json(), with_seconds=True)
        held = self.registry.hold_lease(name, holder, seconds)
        return Response.json({"held": held})

    def release_lease(self, req: Request, ctx: Context, name: str) -> Response:
        _admin_only(ctx)
        holder, _ = wire.lease_from_json(req.json(), with_seconds=False)
        self.registry.release_lease(name, holder)
        return Response.empty(204)


def _admin_only(ctx: Context) -> None:
    if not ctx.is_admin:
        raise errors.Forbidden("only an admin may take or release a lease")


def make_registry_app(registry: Registry) -> RegistryApp:
    """The Registry REST API over ``registry`` as a WSGI application."""
    return RegistryApp(registry)
