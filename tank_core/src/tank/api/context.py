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
    # X-Project-Id is Keystone's name; X-Tenant-Id only a fallback for older proxies (a
    # client that adds its own X-Tenant-Id must not become another project)
    tenant = headers.get("x-project-id") or headers.get("x-tenant-id") or None
    roles = frozenset(r.strip().lower() for r in headers.get("x-roles", "").split(",") if r.strip())
    return Context(
        tenant=tenant,
        user=headers.get("x-user-id") or None,
        roles=roles,  # type: ignore[arg-type]  # attrs converter typing
        is_admin=ADMIN_ROLE in roles,
    )


#: Identity headers (as WSGI names them) whose values must be UTF-8.
IDENTITY_HEADERS = {
    "HTTP_X_PROJECT_ID": "X-Project-Id",
    "HTTP_X_TENANT_ID": "X-Tenant-Id",
    "HTTP_X_USER_ID": "X-User-Id",
    "HTTP_X_ROLES": "X-Roles",
    "HTTP_X_SERVICE_ROLES": "X-Service-Roles",
}


def check_identity_encoding(environ: Mapping[str, object]) -> None:
    """Refuse identity headers that are not UTF-8 (400): read as Latin-1 they would
    name another tenant or role than the proxy meant."""
    for key, name in IDENTITY_HEADERS.items():
        value = environ.get(key)
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("latin-1").decode("utf-8")
            except UnicodeError:
                raise errors.Invalid(f"{name} is not valid UTF-8") from None
