"""The domain model: an image as Glance defines it (v1 and v2), and the request context.

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

from tank.errors import InvalidTransition, OverLimit, ValidationError


class Status(enum.StrEnum):
    QUEUED = "queued"
    SAVING = "saving"
    ACTIVE = "active"
    KILLED = "killed"
    DELETED = "deleted"
    PENDING_DELETE = "pending_delete"
    #: v2: data staged for an import (``PUT /v2/images/<id>/stage``)
    UPLOADING = "uploading"
    #: v2: an import is running
    IMPORTING = "importing"
    #: v2: data kept but not downloadable by non-admins
    DEACTIVATED = "deactivated"

    def __str__(self) -> str:
        return self.value


class Visibility(enum.StrEnum):
    """Who sees an image (Glance v2). v1's ``is_public`` is ``PUBLIC`` or not."""

    PUBLIC = "public"
    PRIVATE = "private"
    SHARED = "shared"
    COMMUNITY = "community"

    def __str__(self) -> str:
        return self.value


class MemberStatus(enum.StrEnum):
    """A member's answer to an image shared with it (set by the member, v2)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return self.value


DISK_FORMATS = frozenset(
    {"raw", "vhd", "vhdx", "vmdk", "vdi", "iso", "ploop", "qcow2", "aki", "ari", "ami"}
)
CONTAINER_FORMATS = frozenset({"bare", "ovf", "ova", "docker", "compressed", "aki", "ari", "ami"})
AMAZON_FORMATS = frozenset({"aki", "ari", "ami"})

#: The lifecycle, in one place. Keys are the current status, values the allowed next ones.
#: ``saving -> queued`` and ``importing -> queued`` are v2's way back after a failed
#: upload or import (the image can be tried again); v1 kills instead.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset(
        {
            Status.SAVING,
            Status.UPLOADING,
            Status.IMPORTING,
            Status.ACTIVE,
            Status.KILLED,
            Status.DELETED,
        }
    ),
    Status.SAVING: frozenset({Status.ACTIVE, Status.KILLED, Status.QUEUED, Status.DELETED}),
    Status.UPLOADING: frozenset({Status.IMPORTING, Status.QUEUED, Status.KILLED, Status.DELETED}),
    Status.IMPORTING: frozenset({Status.ACTIVE, Status.QUEUED, Status.KILLED, Status.DELETED}),
    Status.ACTIVE: frozenset({Status.DEACTIVATED, Status.DELETED, Status.PENDING_DELETE}),
    Status.DEACTIVATED: frozenset({Status.ACTIVE, Status.DELETED, Status.PENDING_DELETE}),
    Status.KILLED: frozenset({Status.DELETED}),
    # -> active: ``tank-manage restore`` (glance-scrubber --restore)
    Status.PENDING_DELETE: frozenset({Status.DELETED, Status.ACTIVE}),
    # -> pending_delete: only a scrub pass, undoing its own claim when a store failed
    # (tank.scrubber.delayed); users never set a status
    Status.DELETED: frozenset({Status.PENDING_DELETE}),
}

MAX_NAME = 255
MAX_PROPERTY_KEY = 255
MAX_PROPERTY_VALUE = 65535
#: Glance's default quotas (image_tag_quota, image_property_quota, image_member_quota).
MAX_TAGS = 128
MAX_PROPERTIES = 128
MAX_MEMBERS = 128
MAX_LOCATION = 2048
#: Properties in this namespace are Tank's own (import state); users cannot set them.
RESERVED_PREFIX = "os_glance_"


def check_transition(old: Status, new: Status) -> None:
    """Raise :class:`InvalidTransition` unless the lifecycle allows ``old -> new``."""
    if old == new and old in (Status.QUEUED, Status.ACTIVE, Status.IMPORTING):
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


def has_control(text: str) -> bool:
    """Whether ``text`` holds an ASCII control character (a line break, a tab, NUL, DEL):
    refused in tags, members, store names and property names, which end up in headers
    and on single lines."""
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


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


def parse_visibility(value: Any, field: str = "visibility") -> Visibility:
    try:
        return Visibility(value)
    except ValueError:
        allowed = ", ".join(v.value for v in Visibility)
        raise ValidationError(field, f"{str(value)[:80]!r} is not one of {allowed}") from None


def parse_member_status(value: Any, field: str = "status") -> MemberStatus:
    try:
        return MemberStatus(value)
    except ValueError:
        allowed = ", ".join(v.value for v in MemberStatus)
        raise ValidationError(field, f"{str(value)[:80]!r} is not one of {allowed}") from None


def parse_tag(value: Any, field: str = "tags") -> str:
    tag = _text(field, value, MAX_NAME)
    if not tag.strip():
        raise ValidationError(field, "a tag must not be empty")
    if has_control(tag):
        raise ValidationError(field, f"a tag must not contain control characters: {tag[:80]!r}")
    return tag


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError("tags", f"expected a list of strings, got {value!r:.80}")
    tags = tuple(sorted({parse_tag(tag) for tag in value}))
    if len(tags) > MAX_TAGS:
        raise OverLimit(f"an image has at most {MAX_TAGS} tags (attempted: {len(tags)})")
    return tags


def _json_value(field: str, value: Any, depth: int = 0) -> Any:
    """A JSON value (location metadata), checked for type and depth."""
    if depth > 8:
        raise ValidationError(field, "nested too deeply")
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _text(field, value, MAX_PROPERTY_VALUE)
    if isinstance(value, list | tuple):
        return [_json_value(field, v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        return {
            _text(field, k, MAX_PROPERTY_KEY): _json_value(field, v, depth + 1)
            for k, v in value.items()
        }
    raise ValidationError(field, f"not a JSON value: {type(value).__name__}")


@attrs.frozen(kw_only=True)
class Location:
    """Where one copy of an image's data lives.

    ``store`` is the ``[stores.<name>]`` instance that reads it (None: the store whose
    scheme the URL has, for locations registered with v1). ``owned``: Tank deletes
    this data with the image (it wrote it, or a service handed it over through the v2
    locations API); a location registered with v1 ``x-image-meta-location`` is not
    owned, since it may back other images or belong to someone else. ``url`` never
    holds secrets (stores keep credentials in their config).
    """

    url: str = attrs.field(converter=lambda v: _text("locations.url", v, MAX_LOCATION))
    store: str | None = attrs.field(default=None, converter=_optional_text("locations.store"))
    owned: bool = attrs.field(default=True, converter=lambda v: parse_bool("locations.owned", v))
    metadata: dict[str, Any] = attrs.field(
        factory=dict, converter=lambda v: _json_value("locations.metadata", v or {})
    )

    @url.validator
    def _nonempty(self, attribute: Any, value: str) -> None:
        if not value:
            raise ValidationError("locations.url", "must not be empty")

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "store": self.store,
            "owned": self.owned,
            "metadata": self.metadata,
        }


def _locations(value: Any) -> tuple[Location, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValidationError("locations", f"expected a list, got {type(value).__name__}")
    out = []
    for item in value:
        if isinstance(item, Location):
            out.append(item)
        elif isinstance(item, Mapping):
            unknown = set(item) - {"url", "store", "owned", "metadata"}
            if unknown:
                raise ValidationError("locations", f"unknown location key {sorted(unknown)[0]!r}")
            out.append(Location(**item))
        else:
            raise ValidationError("locations", f"expected objects, got {type(item).__name__}")
    return tuple(out)


def _hash_algo(value: Any) -> str | None:
    if value is None:
        return None
    algo = _text("os_hash_algo", value, 64)
    if not algo or not all(c.isalnum() or c in "_-" for c in algo):
        raise ValidationError("os_hash_algo", f"not a hash algorithm name: {value[:80]!r}")
    return algo


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


def _hex(field: str, *, max_len: int) -> Any:
    def convert(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValidationError(field, f"expected a hex string, got {value!r:.80}")
        text = value.strip().lower()
        if not text or len(text) > max_len or any(c not in "0123456789abcdef" for c in text):
            raise ValidationError(field, f"expected up to {max_len} hex digits, got {value[:80]!r}")
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
    virtual_size: int | None = attrs.field(default=None, converter=_opt_int("virtual_size"))
    checksum: str | None = attrs.field(default=None, converter=_checksum("checksum", 32))
    #: The multihash (Glance's ``os_hash_algo``/``os_hash_value``): any hashlib algorithm,
    #: computed in the same pass as the MD5 ``checksum``.
    os_hash_algo: str | None = attrs.field(default=None, converter=_hash_algo)
    os_hash_value: str | None = attrs.field(
        default=None, converter=_hex("os_hash_value", max_len=256)
    )
    status: Status = attrs.field(default=Status.QUEUED, converter=_status)
    visibility: Visibility = attrs.field(default=Visibility.SHARED, converter=parse_visibility)
    os_hidden: bool = attrs.field(default=False, converter=_bool("os_hidden"))
    owner: str | None = attrs.field(default=None, converter=_optional_text("owner"))
    min_ram: int = attrs.field(default=0, converter=_int("min_ram"))
    min_disk: int = attrs.field(default=0, converter=_int("min_disk"))
    protected: bool = attrs.field(default=False, converter=_bool("protected"))
    properties: dict[str, str] = attrs.field(factory=dict, converter=_properties)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    #: Where the data lives, one location per store, read in this order. Internal:
    #: shown only to admins and services.
    locations: tuple[Location, ...] = attrs.field(default=(), converter=_locations)
    created_at: dt.datetime = attrs.field(factory=utcnow, converter=_dt("created_at"))
    updated_at: dt.datetime = attrs.field(factory=utcnow, converter=_dt("updated_at"))
    deleted_at: dt.datetime | None = attrs.field(default=None, converter=_dt("deleted_at"))
    deleted: bool = attrs.field(default=False, converter=_bool("deleted"))

    @property
    def is_public(self) -> bool:
        """Glance v1's view of :attr:`visibility`."""
        return self.visibility is Visibility.PUBLIC

    @property
    def location(self) -> str | None:
        """The first location's URL (where downloads read first)."""
        return self.locations[0].url if self.locations else None

    @property
    def store(self) -> str | None:
        """The store of the first location."""
        return self.locations[0].store if self.locations else None

    @property
    def stores(self) -> tuple[str, ...]:
        """Names of the stores holding the data (locations whose store is known)."""
        return tuple(loc.store for loc in self.locations if loc.store is not None)

    @property
    def has_data(self) -> bool:
        """Whether the image has data: active (or deactivated, whose data admins may
        still read), not deleted, with a location."""
        return (
            self.status in (Status.ACTIVE, Status.DEACTIVATED)
            and not self.deleted
            and bool(self.locations)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps ISO 8601, enums as text, tuples as lists)."""
        out = attrs.asdict(self, recurse=False)
        out["status"] = self.status.value
        out["visibility"] = self.visibility.value
        out["properties"] = dict(self.properties)
        out["tags"] = list(self.tags)
        out["locations"] = [loc.to_dict() for loc in self.locations]
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
        "visibility",
        "os_hidden",
        "owner",
        "min_ram",
        "min_disk",
        "protected",
        "properties",
        "tags",
    }
)
#: Fields of the brief listing (Glance v1 ``GET /images``).
BRIEF_FIELDS = ("id", "name", "disk_format", "container_format", "size", "checksum")


@attrs.frozen(kw_only=True)
class Member:
    """An image shared with another tenant. ``can_share`` is v1's (the member may share
    further); ``status`` is v2's, set by the member itself."""

    image_id: str = attrs.field(converter=parse_image_id)
    member: str = attrs.field(converter=lambda v: _text("member", v, MAX_NAME))
    can_share: bool = attrs.field(default=False, converter=_bool("can_share"))
    status: MemberStatus = attrs.field(default=MemberStatus.PENDING, converter=parse_member_status)
    created_at: dt.datetime = attrs.field(factory=utcnow, converter=_dt("created_at"))
    updated_at: dt.datetime = attrs.field(factory=utcnow, converter=_dt("updated_at"))

    @member.validator
    def _nonempty(self, attribute: Any, value: str) -> None:
        if not value.strip():
            raise ValidationError("member", "must not be empty")
        if has_control(value):
            raise ValidationError("member", "must not contain control characters")
        if value in (".", "..") or "/" in value:
            # a tenant id never is; in a URL path such ids become other paths wherever
            # a proxy or client normalises it (/members/.. is the image itself)
            raise ValidationError("member", "must not be '.' or '..' or contain '/'")


#: Roles that may change images (besides admin), when a caller also has ``reader``.
WRITER_ROLES = frozenset({"member", "_member_", "admin"})


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

    @property
    def read_only(self) -> bool:
        """A ``reader`` without ``member`` (Keystone's default roles): may look, never
        change anything (Glance's default policies)."""
        return not self.is_admin and "reader" in self.roles and not (self.roles & WRITER_ROLES)

    def can_modify(self, image: Image) -> bool:
        if self.read_only:
            return False
        return self.is_admin or (self.tenant is not None and image.owner == self.tenant)


#: Keys an image listing sorts by (``id`` also ends every ordering, as tie-breaker).
SORT_KEYS = frozenset(
    {
        "id",
        "name",
        "status",
        "disk_format",
        "container_format",
        "size",
        "virtual_size",
        "min_disk",
        "min_ram",
        "owner",
        "visibility",
        "protected",
        "os_hidden",
        "created_at",
        "updated_at",
    }
)
MAX_SORT_KEYS = 8
#: Comparison operators of ``created_at``/``updated_at`` filters (Glance v2's).
COMPARISONS = frozenset({"gt", "gte", "lt", "lte", "eq", "neq"})
#: Filters that take one value or a list of them (v2's ``in:`` operator).
IN_FILTER_KEYS = frozenset(
    {"id", "name", "status", "disk_format", "container_format", "checksum", "os_hash_value"}
)


def _public_filter(key: str, value: Any) -> bool | None:
    return None if value in (None, "none", "None") else parse_bool(key, value)


def _one_or_many(parse: Callable[[Any], Any]) -> Callable[[str, Any], Any]:
    def convert(key: str, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if not value:
                raise ValidationError(key, "an 'in:' list needs at least one value")
            return tuple(parse(v) for v in value)
        return parse(value)

    return convert


def _all_or(parse: Callable[[Any], Any]) -> Callable[[str, Any], Any]:
    return lambda key, value: "all" if value == "all" else parse(value)


def _comparisons(key: str, value: Any) -> tuple[tuple[str, dt.datetime], ...]:
    """``[(op, timestamp), ...]`` for created_at/updated_at; also Glance's text form
    ``op:timestamp`` (one comparison; a bare timestamp is ``eq``)."""
    if isinstance(value, str):
        op, sep, text = value.partition(":")
        value = [(op, text)] if sep and op in COMPARISONS else [("eq", value)]
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError(key, "expected a list of (operator, timestamp) pairs")
    out: list[tuple[str, dt.datetime]] = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2 or pair[0] not in COMPARISONS:
            ops = ", ".join(sorted(COMPARISONS))
            raise ValidationError(key, f"expected (operator, timestamp) with operator in {ops}")
        when = parse_datetime(key, pair[1])
        assert when is not None
        out.append((str(pair[0]), when))
    return tuple(out)


def _tag_filter(key: str, value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list | tuple) else [value]
    return tuple(sorted({parse_tag(v, key) for v in values}))


#: How each listing filter's value is parsed; the keys are the filters there are.
_FILTERS: dict[str, Callable[[str, Any], Any]] = {
    "id": _one_or_many(lambda v: parse_image_id(v, "id")),
    "name": _one_or_many(lambda v: _text("name", v, MAX_NAME)),
    "disk_format": _one_or_many(lambda v: _text("disk_format", v, MAX_NAME)),
    "container_format": _one_or_many(lambda v: _text("container_format", v, MAX_NAME)),
    "status": _one_or_many(_status),
    "owner": lambda key, value: _text(key, value, MAX_NAME),
    "checksum": _one_or_many(lambda v: _text("checksum", v, 32).lower()),
    "os_hash_value": _one_or_many(lambda v: _text("os_hash_value", v, 256).lower()),
    "visibility": _all_or(parse_visibility),
    "member_status": _all_or(lambda v: parse_member_status(v, "member_status")),
    "tags": _tag_filter,
    "os_hidden": parse_bool,
    "protected": parse_bool,
    "created_at": _comparisons,
    "updated_at": _comparisons,
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
        keys = ", ".join(sorted(SORT_KEYS))
        raise ValidationError("sort_key", f"{str(value)[:80]!r} is not one of {keys}")
    return str(value)


def _sort_dir(value: Any) -> str:
    if value not in ("asc", "desc"):
        raise ValidationError("sort_dir", f"{str(value)[:80]!r} is not asc or desc")
    return str(value)


def _sort(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise ValidationError("sort", "expected a non-empty list of (key, direction) pairs")
    out: list[tuple[str, str]] = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValidationError("sort", "expected (key, direction) pairs")
        key, direction = _sort_key(pair[0]), _sort_dir(pair[1])
        if any(key == k for k, _ in out):
            raise ValidationError("sort", f"sort key {key!r} given twice")
        out.append((key, direction))
    if len(out) > MAX_SORT_KEYS:
        raise ValidationError("sort", f"at most {MAX_SORT_KEYS} sort keys")
    if out[-1][0] != "id" and "id" in (k for k, _ in out):
        raise ValidationError("sort", "id orders uniquely: it can only be the last sort key")
    return tuple(out)


def _limit(value: Any) -> int:
    limit = parse_int("limit", value)
    return min(limit, MAX_LIMIT)


def _marker(value: Any) -> str | None:
    return None if value is None else parse_image_id(value, "marker")


@attrs.frozen(kw_only=True)
class ListQuery:
    """Filters, sort and page of an image listing.

    ``filters`` keys: those of :data:`FILTER_KEYS` and ``property-<name>``. Values of
    :data:`IN_FILTER_KEYS` are one value or a tuple (any of them matches); ``tags`` all
    must match; ``created_at``/``updated_at`` are ``(operator, timestamp)`` pairs;
    ``visibility`` and ``member_status`` may be ``"all"``. Without ``visibility``,
    community images are left out unless the caller owns them; without
    ``member_status`` images shared with the caller show whatever its answer (v1).

    ``sort`` is ``(key, "asc"|"desc")`` pairs, then ``id`` in the direction of the last
    one, so pages are stable under ties. ``marker`` is the id of the last image of the
    previous page; an unknown or invisible marker raises :class:`~tank.errors.NotFound`
    from the registry.
    """

    filters: dict[str, Any] = attrs.field(factory=dict, converter=_filters)
    sort: tuple[tuple[str, str], ...] = attrs.field(
        default=(("created_at", "desc"),), converter=_sort
    )
    limit: int = attrs.field(default=DEFAULT_LIMIT, converter=_limit)
    marker: str | None = attrs.field(default=None, converter=_marker)

    @classmethod
    def of(
        cls,
        *,
        sort_key: str = "created_at",
        sort_dir: str = "desc",
        **kwargs: Any,
    ) -> ListQuery:
        """One sort key, as v1 and the registry API's ``sort_key``/``sort_dir`` give it."""
        return cls(sort=((sort_key, sort_dir),), **kwargs)

    @property
    def sort_key(self) -> str:
        return self.sort[0][0]

    @property
    def sort_dir(self) -> str:
        return self.sort[0][1]
