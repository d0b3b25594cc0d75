"""Who a request to a ``tank-api --auth`` speaks for: the identity headers that
Keystone's auth_token middleware, or a front proxy that authenticates, would set."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

MEMBER_ROLES = ("member", "reader")
ADMIN_ROLES = ("admin", "member", "reader")


@dataclass(frozen=True)
class Caller:
    """One user of one project, with its roles."""

    project: str
    roles: tuple[str, ...] = MEMBER_ROLES
    user: str = field(default_factory=lambda: uuid.uuid4().hex)

    def headers(self) -> dict[str, str]:
        return {
            "X-Identity-Status": "Confirmed",
            "X-Project-Id": self.project,
            "X-User-Id": self.user,
            "X-Roles": ",".join(self.roles),
        }


def tenant(role: str = "member", *, project: str | None = None) -> Caller:
    """A user holding ``role`` (``admin`` for a cloud admin) in ``project``, by default
    a new one."""
    roles = ADMIN_ROLES if role == "admin" else MEMBER_ROLES
    return Caller(project=uuid.uuid4().hex if project is None else project, roles=roles)
