"""The domain model: an image as Glance v1 defines it, and the request context.

This module reads like a schema. Every value entering Tank (HTTP headers, JSON, Python
callers) is parsed and validated here, so the in-process service and a remote registry
give the same error for the same bad input.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tank.errors import InvalidTransition, ValidationError


class Status(enum.StrEnum):
    QUEUED = "queued"
    SAVING = "saving"
    ACTIVE = "active"
    KILLED = "killed"
    DELETED = "deleted"
    PENDING_DELETE = "pending_delete"

    def __str__(self) -> str:
        return self.value


DISK_FORMATS = frozenset({"raw", "vhd", "vmdk", "vdi", "iso", "qcow2", "aki", "ari", "ami"})
CONTAINER_FORMATS = frozenset({"bare", "ovf", "aki", "ari", "ami"})
AMAZON_FORMATS = frozenset({"aki", "ari", "ami"})

#: The lifecycle, in one place. Keys are the current status, values the allowed next ones.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.SAVING, Status.ACTIVE, Status.KILLED, Status.DELETED}),
    Status.SAVING: frozenset({Status.ACTIVE, Status.KILLED, Status.DELETED}),
    Status.ACTIVE: frozenset({Status.DELETED, Status.PENDING_DELETE}),
    Status.KILLED: frozenset({Status.DELETED}),
    Status.PENDING_DELETE: frozenset({Status.DELETED}),
    Status.DELETED: frozenset(),
}

MAX_NAME = 255
MAX_PROPERTY_KEY = 255
MAX_PROPERTY_VALUE = 65535


def check_transition(old: Status, new: Status) -> None:
    """Raise :class:`InvalidTransition` unless the lifecycle allows ``old -> new``."""
    if old == new and old in (Status.QUEUED, Status.ACTIVE):
        return
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"image status cannot change from {old} to {new}")


# --- parsers (converters) ------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def parse_bool(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValidationError(field, f"expected a boolean (true/false), got {value!r}")


def parse_memberships(data: Any) -> list[tuple[str, bool]]:
    """``(member, can_share)`` pairs of a Glance v1 memberships body, as both tank-api and
    the registry API take it: ``{"memberships": [{"member_id": ..., "can_share": ...}]}``."""
    rows = data.get("memberships") if isinstance(data, Mapping) else None
    if not isinstance(rows, list):
        raise ValidationError(
            "memberships", 'expected a body {"memberships": [{"member_id": ..., "can_share": ...}]}'
        )
    pairs = []
    for row in rows:
        if not isinstance(row, Mapping) or not isinstance(row.get("member_id"), str):
            raise ValidationError("memberships", "each entry needs a member_id string")
        pairs.append((row["member_id"], parse_bool("can_share", row.get("can_share", False))))
    return pairs


def parse_int(field: str, value: Any, *, minimum: int = 0) -> int:
    if isinstance(value, bool):
        raise ValidationError(field, f"expected an integer, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        digits = text.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()):
            raise ValidationError(field, f"expected an integer, got {value[:40]!r}")
        if len(digits.lstrip("0")) > 19:  # past 2**63 (and int()'s 4,300-digit limit)
            raise ValidationError(field, f"must be < 2**63, got a {len(digits)}-digit number")
        value = int(text)
    if not isinstance(value, int):
        raise ValidationError(field, f"expected an integer, got {value!r}")
    if value < minimum:
        raise ValidationError(field, f"must be >= {minimum}, got {value}")
    if value >= 2**63:
        raise ValidationError(field, f"must be < 2**63, got {value}")
    return value


def parse_image_id(value: Any, field: str = "id") -> str:
    """Image ids are UUIDs; return the canonical lower-case hyphenated form."""
    if not isinstance(value, str):
        raise ValidationError(field, f"expected a UUID string, got {value!r}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError(field, f"not a valid UUID: {value[:80]!r}") from None


def parse_datetime(field: str, value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, str):
        try:
            return _utc(dt.datetime.fromisoformat(value))
        except ValueError:
            pass
    raise ValidationError(field, f"expected an ISO 8601 timestamp, got {value!r}")


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _text(field: str, value: Any, max_len: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"expected a string, got {value!r}")
    if len(value) > max_len:
        raise ValidationError(field, f"longer than {max_len} characters")
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # "\ud800" from JSON: no database or header can hold it
            raise ValidationError(field, "is not valid Unicode (a lone surrogate)") from None
    return value


def _optional_text(field: str, max_len: int = MAX_NAME) -> Any:
    def convert(value: Any) -> str | None:
        return None if value is None else _text(field, value, max_len)

    return convert


def _format(field: str, allowed: frozenset[str]) -> Any:
    def convert(value: Any) -> str | None:
        if value is None:
            return None
        if value not in allowed:
            raise ValidationError(field, f"{value!r} is not one of {', '.join(sorted(allowed))}")
        return str(value)

    return convert


def _properties(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("properties", f"expected a mapping, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, val in value.items():
        _text("properties", key, MAX_PROPERTY_KEY)
        if not key:
            raise ValidationError("properties", "property names must not be empty")
        if val is None:
            val = ""
        if isinstance(val, bool | int | float):
            val = str(val).lower() if isinstance(val, bool) else str(val)
        out[key] = _text(f"properties.{key}", val, MAX_PROPERTY_VALUE)
    return out


def _status(value: Any) -> Status:
    try:
        return Status(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise ValidationError("status", f"{value!r} is not one of {allowed}") from None


def _checksum(field: str, length: int) -> Any:
    def convert(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValidationError(field, f"expected a hex string, got {value!r}")
        text = value.strip().lower()
        if len(text) != length or any(c not in "0123456789abcdef" for c in text):
            raise ValidationError(field, f"expected {length} hex digits, got {value[:80]!r}")
        return text

    return convert


def _opt_int(field: str) -> Any:
    def convert(value: Any) -> int | None:
        return None if value is None else parse_int(field, value)

    return convert


def _int(field: str) -> Any:
    return lambda value: parse_int(field, value)


def _bool(field: str) -> Any:
    return lambda value: parse_bool(field, value)


def _dt(field: str) -> Any:
    return lambda value: parse_datetime(field, value)


def _new_id() -> str:
    return str(uuid.uuid4())


def _check_formats(instance: Image, attribute: Any, value: Any) -> None:
    disk, container = instance.disk_format, instance.container_format
    if (disk in AMAZON_FORMATS or container in AMAZON_FORMATS) and disk != container:
        if disk is not None and container is not None:
            raise ValidationError(
                "container_format",
                "when disk_format or container_format is aki, ari or ami, both must be "
                f"the same (got disk_format={disk}, container_format={container})",
            )


@attrs.frozen(kw_only=True)
class Image:
    """One image's metadata. Frozen: change it with :func:`attrs.evolve` or ``Image.update``."""

    id: str = attrs.field(factory=_new_id, converter=parse_image_id)
    name: str | None = attrs.field(default=None, converter=_optional_text("name"))
    disk_format: str | None = attrs.field(
        default=None, converter=_format("disk_format", DISK_FORMATS)
    )
    container_format: str | None = attrs.field(
        default=None,
        converter=_format("container_format", CONTAINER_FORMATS),
        validator=_check_formats,
    )
    size: int | None = attrs.field(default=None, converter=_opt_int("size"))
    checksum: str | None = attrs.field(default=None, converter=_checksum("checksum", 32))
    sha256: str | None = attrs.field(default=None, converter=_checksum("sha256", 64))
    status: Status = attrs.field(default=Status.QUEUED, converter=_status)
    is_public: bool = attrs.field(default=False, converter=_bool("is_public"))
    owner: str | None = attrs.field(default=None, converter=_optional_text("owner"))
    min_ram: int = attrs.field(default=0, converter=_int("min_ram"))
    min_disk: int = attrs.field(default=0, converter=_int("min_disk"))
    protected: bool = attrs.field(default=False, converter=_bool("protected"))
    properties: dict[str, str] = attrs.field(factory=dict, converter=_properties)
    #: Store instance (``[stores.<name>]``) Tank wrote the data to. None while queued and
    #: for data registered by location, which Tank reads but never deletes.
    store: str | None = attrs.field(default=None, converter=_optional_text("store"))
    #: Where the data lives (never contains secrets). Internal: shown only to admins.
    location: str | None = attrs.field(default=None, converter=_optional_text("location", 2048))
    created_at: dt.datetime = attrs.field(factory=utcnow, converter=_dt("created_at"))
    updated_at: dt.datetime = attrs.field(factory=utcnow, converter=_dt("updated_at"))
    deleted_at: dt.datetime | None = attrs.field(default=None, converter=_dt("deleted_at"))
    deleted: bool = attrs.field(default=False, converter=_bool("deleted"))

    @property
    def has_data(self) -> bool:
        """Whether the image has data to download: active, not deleted, with a location."""
        return self.status is Status.ACTIVE and not self.deleted and bool(self.location)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps ISO 8601, status as text)."""
        out = attrs.asdict(self, recurse=False)
        out["status"] = self.status.value
        out["properties"] = dict(self.properties)
        for key in ("created_at", "updated_at", "deleted_at"):
            value = out[key]
            out[key] = value.isoformat() if value is not None else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Image:
        unknown = set(data) - FIELDS
        if unknown:
            raise ValidationError(sorted(unknown)[0], "unknown image field")
        return cls(**data)

    def update(self, changes: Mapping[str, Any], *, purge_props: bool = False) -> Image:
        """Apply user changes; ``properties`` merge unless ``purge_props`` (Glance v1 PUT)."""
        unknown = set(changes) - FIELDS
        if unknown:
            raise ValidationError(sorted(unknown)[0], "unknown image field")
        changes = dict(changes)
        if "properties" in changes and not purge_props:
            changes["properties"] = {**self.properties, **_properties(changes["properties"])}
        elif purge_props and "properties" not in changes:
            changes["properties"] = {}
        if "status" in changes:
            check_transition(self.status, _status(changes["status"]))
        return attrs.evolve(self, **changes, updated_at=utcnow())


FIELDS = frozenset(a.name for a in attrs.fields(Image))
#: Fields a user may set when creating or updating an image.
MUTABLE_FIELDS = frozenset(
    {
        "name",
        "disk_format",
        "container_format",
        "is_public",
        "owner",
        "min_ram",
        "min_disk",
        "protected",
        "properties",
    }
)
#: Fields of the brief listing (Glance v1 ``GET /images``).
BRIEF_FIELDS = ("id", "name", "disk_format", "container_format", "size", "checksum")


@attrs.frozen(kw_only=True)
class Member:
    """An image shared with another tenant (Glance v1 image membership)."""

    image_id: str = attrs.field(converter=parse_image_id)
    member: str = attrs.field(converter=lambda v: _text("member", v, MAX_NAME))
    can_share: bool = attrs.field(default=False, converter=_bool("can_share"))
    created_at: dt.datetime = attrs.field(factory=utcnow, converter=_dt("created_at"))
    updated_at: dt.datetime = attrs.field(factory=utcnow, converter=_dt("updated_at"))

    @member.validator
    def _nonempty(self, attribute: Any, value: str) -> None:
        if not value.strip():
            raise ValidationError("member", "must not be empty")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValidationError("member", "must not contain control characters")
        if value in (".", "..") or "/" in value:
            # a tenant id never is; in a URL path such ids become other paths wherever
            # a proxy or client normalises it (/members/.. is the image itself)
            raise ValidationError("member", "must not be '.' or '..' or contain '/'")


@attrs.frozen(kw_only=True)
class Context:
    """Who is asking. With auth off every caller is an admin (Glance's default)."""

    tenant: str | None = None
    user: str | None = None
    roles: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    is_admin: bool = False

    @classmethod
    def admin(cls) -> Context:
        return cls(is_admin=True)

    def can_modify(self, image: Image) -> bool:
        return self.is_admin or (self.tenant is not None and image.owner == self.tenant)


SORT_KEYS = frozenset(
    {
        "id",
        "name",
        "status",
        "disk_format",
        "container_format",
        "size",
        "created_at",
        "updated_at",
    }
)


def _public_filter(key: str, value: Any) -> bool | None:
    return None if value in (None, "none", "None") else parse_bool(key, value)


#: How each listing filter's value is parsed; the keys are the filters there are.
_FILTERS: dict[str, Callable[[str, Any], Any]] = {
    "name": lambda key, value: _text(key, value, MAX_NAME),
    "disk_format": lambda key, value: _text(key, value, MAX_NAME),
    "container_format": lambda key, value: _text(key, value, MAX_NAME),
    "status": lambda key, value: _status(value),
    "size_min": parse_int,
    "size_max": parse_int,
    "is_public": _public_filter,
    "deleted": parse_bool,
}
#: Every listing filter besides ``property-<name>``.
FILTER_KEYS = frozenset(_FILTERS)
#: Filters only an admin may use (tank-api refuses them from others; registries ignore them).
ADMIN_FILTER_KEYS = frozenset({"deleted"})
MAX_LIMIT = 1000
DEFAULT_LIMIT = 25


def _filters(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError("filters", "expected a mapping")
    out: dict[str, Any] = {}
    for key, val in value.items():
        if key.startswith("property-"):
            if not key[len("property-") :]:
                raise ValidationError(key, "property filter needs a property name")
            out[key] = _text(key, val, MAX_PROPERTY_VALUE)
        elif key in _FILTERS:
            out[key] = _FILTERS[key](key, val)
        else:
            raise ValidationError(key, "unknown filter")
    return out


def _sort_key(value: Any) -> str:
    if value not in SORT_KEYS:
        raise ValidationError("sort_key", f"{value!r} is not one of {', '.join(sorted(SORT_KEYS))}")
    return str(value)


def _sort_dir(value: Any) -> str:
    if value not in ("asc", "desc"):
        raise ValidationError("sort_dir", f"{value!r} is not asc or desc")
    return str(value)


def _limit(value: Any) -> int:
    limit = parse_int("limit", value)
    return min(limit, MAX_LIMIT)


def _marker(value: Any) -> str | None:
    return None if value is None else parse_image_id(value, "marker")


@attrs.frozen(kw_only=True)
class ListQuery:
    """Filters, sort and page of an image listing.

    ``filters`` keys: those of :data:`FILTER_KEYS` and ``property-<name>``.
    Ordering is ``sort_key`` then ``id`` in the same direction, so pages are stable under
    ties. ``marker`` is the id of the last image of the previous page; an unknown or
    invisible marker raises :class:`~tank.errors.NotFound` from the registry.
    """

    filters: dict[str, Any] = attrs.field(factory=dict, converter=_filters)
    sort_key: str = attrs.field(default="created_at", converter=_sort_key)
    sort_dir: str = attrs.field(default="desc", converter=_sort_dir)
    limit: int = attrs.field(default=DEFAULT_LIMIT, converter=_limit)
    marker: str | None = attrs.field(default=None, converter=_marker)
