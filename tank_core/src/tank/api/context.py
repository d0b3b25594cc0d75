"""Who is calling: the request context from identity headers.

With auth off (the default, as Glance's ``noauth``) every caller is an admin. With auth
on, Tank trusts the headers a front proxy or Keystone's auth_token middleware sets and
strips from client requests; tank-api must not be reachable around that proxy.
"""

from __future__ import annotations

from collections.abc import Mapping

from tank import errors
from tank.model import Context

ADMIN_ROLE = "admin"


class Unauthenticated(errors.TankError):
    http_status = 401


def context_from_headers(headers: Mapping[str, str], *, auth: bool) -> Context:
    if not auth:
        return Context.admin()
    if headers.get("x-identity-status", "").lower() != "confirmed":
        raise Unauthenticated("authentication required (X-Identity-Status is not Confirmed)")
    tenant = headers.get("x-tenant-id") or headers.get("x-project-id") or None
    roles = frozenset(r.strip().lower() for r in headers.get("x-roles", "").split(",") if r.strip())
    return Context(
        tenant=tenant,
        user=headers.get("x-user-id") or None,
        roles=roles,  # type: ignore[arg-type]  # attrs converter typing
        is_admin=ADMIN_ROLE in roles,
    )
