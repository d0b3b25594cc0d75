"""Request bodies of v2 image creation and of members, parsed into validated values.

Glance 33's rules, in its order: attributes a client can never send (403), then the
image schema (400), then read-only and reserved attributes (403), then policy (public
images need an admin; an owner other than the caller's project needs an admin).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tank.api.v2.schemas import MEMBER_STATUSES, check_image_value
from tank.errors import Forbidden, ValidationError
from tank.model import MAX_PROPERTY_KEY, RESERVED_PREFIX, Image, MemberStatus

#: Never accepted in a body: they are links and views, not attributes.
DISALLOWED = frozenset({"direct_url", "self", "file", "schema", "stores"})
#: Base attributes only Tank sets (403 in a create body or a patch).
READ_ONLY = frozenset(
    {
        "created_at",
        "updated_at",
        "status",
        "checksum",
        "size",
        "virtual_size",
        "os_hash_algo",
        "os_hash_value",
    }
)
#: Names that are not properties a user may set (403).
RESERVED = frozenset({"location", "locations", "deleted", "deleted_at"})
#: Attributes a create body may set; everything else is an extra property.
CREATE_FIELDS = (
    "id",
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "protected",
    "os_hidden",
    "min_ram",
    "min_disk",
    "owner",
    "tags",
)


def _name(key: str) -> str:
    return key if len(key) <= 80 else key[:77] + "..."


def check_property_name(key: str) -> None:
    """Refuse names of reserved properties (403) and overlong ones (400)."""
    if key in RESERVED or key.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{_name(key)}' is reserved.")
    if len(key) > MAX_PROPERTY_KEY:
        raise ValidationError(
            _name(key), f"property names are at most {MAX_PROPERTY_KEY} characters"
        )
    if not key:
        raise ValidationError("properties", "property names must not be empty")


def check_visibility(visibility: Any, *, is_admin: bool) -> None:
    """Glance's default policy: ``publicize_image`` is admin only; ``community`` is open
    to every project member."""
    if visibility == "public" and not is_admin:
        raise Forbidden("only an admin may make an image public (visibility 'public')")


def check_min(field: str, value: Any) -> None:
    if isinstance(value, int) and value < 0:
        raise ValidationError(field, f"cannot be a negative value, got {value}")


def parse_create(body: Any, *, is_admin: bool, tenant: str | None = None) -> dict[str, Any]:
    """``POST /v2/images``: the keyword arguments of :class:`tank.model.Image`.

    Only keys the body has are returned (``properties`` and ``tags`` always), values
    already converted by the model. ``owner`` is returned only when given; the caller
    fills in the caller's project otherwise. A non-admin may name only its own project
    (``tenant``) as owner. ``null`` for a property the schema lets be null (``kernel_id``)
    leaves it unset: Tank's properties are strings.
    """
    if not isinstance(body, Mapping):
        raise ValidationError("body", "expected a JSON object describing the image")
    for key in body:
        if key in DISALLOWED:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    for key, value in body.items():
        check_image_value(key, value)
    for key in body:
        if key in READ_ONLY:
            raise Forbidden(f"Attribute '{key}' is read-only.")
        if key not in CREATE_FIELDS:
            check_property_name(key)

    fields: dict[str, Any] = {k: body[k] for k in CREATE_FIELDS if k in body}
    fields["tags"] = list(body.get("tags", ()))
    fields["properties"] = {
        k: v for k, v in body.items() if k not in CREATE_FIELDS and v is not None
    }
    for field in ("min_ram", "min_disk"):
        check_min(field, fields.get(field))
    if "owner" in fields and not is_admin and fields["owner"] != tenant:
        raise Forbidden(f"You are not permitted to create images owned by {fields['owner']!r}.")
    check_visibility(fields.get("visibility"), is_admin=is_admin)

    image = Image(**fields)  # the model's own rules (tag syntax, value sizes): 400
    return {key: getattr(image, key) for key in fields}


def parse_member_create(body: Any) -> str:
    """``POST /v2/images/<id>/members``: ``{"member": "<project id>"}``."""
    if not isinstance(body, Mapping):
        raise ValidationError("body", 'expected a member in the form {"member": "<project id>"}')
    if "member" not in body:
        raise ValidationError("member", "member to be added not specified")
    member = body["member"]
    if not isinstance(member, str):
        raise ValidationError("member", f"expected a project id string, got {member!r:.80}")
    if not member.strip():
        raise ValidationError("member", "can't be empty")
    return member


def parse_member_status(body: Any) -> MemberStatus:
    """``PUT /v2/images/<id>/members/<member>``: ``{"status": "accepted"}``."""
    if not isinstance(body, Mapping):
        raise ValidationError("body", 'expected a status in the form {"status": "<status>"}')
    if "status" not in body:
        raise ValidationError("status", "status not specified")
    status = body["status"]
    if status not in MEMBER_STATUSES or not isinstance(status, str):
        raise ValidationError(
            "status", f"{status!r:.80} is not one of {', '.join(MEMBER_STATUSES)}"
        )
    return MemberStatus(status)
