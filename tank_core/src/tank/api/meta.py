"""Glance v1 image metadata on the wire: ``x-image-meta-*`` headers and JSON objects.

Which fields a client may send, how booleans and timestamps look, and which internal
fields (store, location) are never shown: all here, for every endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from tank import errors
from tank.locations import redact
from tank.model import BRIEF_FIELDS, Image, Visibility, parse_bool
from tank.upload_lease import HEARTBEAT
from tank.v1_headers import META_PREFIX, PROPERTY_PREFIX, SETTABLE_FIELDS
from tank.web.headers import to_wire

META = META_PREFIX
PROPERTY = PROPERTY_PREFIX

#: Fields a client may set in headers, plus ``id`` on create (``is_public``: see
#: :func:`visibility_of`).
USER_FIELDS = SETTABLE_FIELDS
DATA_FIELDS = frozenset({"size", "checksum", "store", "location"})
#: Read-only fields clients echo back from a HEAD (python-glanceclient does): accepted
#: and ignored, as Glance v1 did.
IGNORED_FIELDS = frozenset(
    {
        "status",
        "created_at",
        "updated_at",
        "deleted_at",
        "deleted",
        "os_hash_algo",
        "os_hash_value",
        "sha256",
    }
)

#: Order of the detail fields, as Glance v1 returns them.
_SHOWN = (
    "id",
    "name",
    "disk_format",
    "container_format",
    "size",
    "checksum",
    "status",
    "is_public",
    "owner",
    "min_ram",
    "min_disk",
    "protected",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
)


#: Boolean fields python-glanceclient (v1) sends as ``None`` when the user gave no value.
UNSET_AS_NONE = frozenset({"is_public", "protected"})


@attrs.frozen
class RequestMeta:
    """What the ``x-image-meta-*`` headers of a POST or PUT asked for."""

    fields: dict[str, Any]
    data: dict[str, str]


def parse_headers(headers: Mapping[str, str], *, allow_id: bool) -> RequestMeta:
    """Split request headers into user fields (with ``properties``) and data fields."""
    fields: dict[str, Any] = {}
    data: dict[str, str] = {}
    properties: dict[str, str] = {}
    for name, value in headers.items():
        if name.startswith(PROPERTY):
            # WSGI cannot tell ``-`` from ``_`` in header names; like Glance, use ``_``.
            key = name[len(PROPERTY) :].replace("-", "_")
            if not key:
                raise errors.ValidationError("properties", "property header without a name")
            properties[key] = value
        elif name.startswith(META):
            field = name[len(META) :].replace("-", "_")
            if field in UNSET_AS_NONE and value.strip().lower() == "none":
                continue  # python-glanceclient's "not given"; Glance read it as false
            if field in USER_FIELDS or (allow_id and field == "id"):
                fields[field] = value
            elif field in DATA_FIELDS:
                data[field] = value.strip()
            elif field not in IGNORED_FIELDS:
                raise errors.ValidationError(field, f"unknown or read-only field ({name})")
    if properties:
        fields["properties"] = properties
    if "owner" in fields and fields["owner"] == "":
        fields["owner"] = None
    return RequestMeta(fields=fields, data=data)


def model_fields(fields: Mapping[str, Any], current: Image | None = None) -> dict[str, Any]:
    """v1 fields as the model's: ``is_public`` becomes ``visibility``. True is public;
    false keeps a private or shared image as it is and makes others shared (Glance's
    v1 mapping: members still see a non-public image)."""
    out = dict(fields)
    if "is_public" in out:
        public = parse_bool("is_public", out.pop("is_public"))
        if public:
            out["visibility"] = Visibility.PUBLIC
        elif current is not None and current.visibility in (
            Visibility.PRIVATE,
            Visibility.SHARED,
        ):
            out["visibility"] = current.visibility
        else:
            out["visibility"] = Visibility.SHARED
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


#: A header name is a token (RFC 9110): ASCII letters, digits and ``!#$%&'*+-.^_`|~``.
#: v2 allows any property name ("trait:X", "a b", "ü"); v1 leaves a property whose name
#: is not a token out of its headers rather than send a line strict clients refuse, and
#: a v1 PUT keeps it (:func:`hidden_from_v1`), since no v1 client could have sent it back.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def header_name_safe(key: str) -> bool:
    return _HEADER_NAME.fullmatch(key) is not None


def hidden_from_v1(properties: Mapping[str, str]) -> dict[str, str]:
    """The properties v1's headers leave out (their names are not tokens)."""
    return {k: v for k, v in properties.items() if not header_name_safe(k)}


def image_headers(image: Image) -> list[tuple[str, str]]:
    """``x-image-meta-*`` headers for HEAD and GET (Glance style: ``True``/``False``).

    Unset fields are left out rather than sent as ``None`` (Glance) or empty."""
    values = [(field, getattr(image, field)) for field in _SHOWN]
    out = [(META + field, to_wire(_text(value))) for field, value in values if value is not None]
    if image.os_hash_value and image.os_hash_algo:
        out += [
            (META + "os_hash_algo", image.os_hash_algo),
            (META + "os_hash_value", image.os_hash_value),
        ]
    out += [
        (to_wire(PROPERTY + key), to_wire(value))
        for key, value in sorted(image.properties.items())
        if key != HEARTBEAT and header_name_safe(key)
    ]
    if image.checksum:
        out.append(("ETag", image.checksum))
    return out


def image_json(image: Image, *, location: str | None = None) -> dict[str, Any]:
    """One image as Glance v1 JSON, plus the multihash fields Glance added later."""
    full = image.to_dict()
    out = {field: full[field] if field in full else getattr(image, field) for field in _SHOWN}
    out["properties"] = {k: v for k, v in full["properties"].items() if k != HEARTBEAT}
    out["os_hash_algo"] = image.os_hash_algo
    out["os_hash_value"] = image.os_hash_value
    if location:
        out["location"] = redact(location)
    return out


def brief_json(image: Image) -> dict[str, Any]:
    return {field: getattr(image, field) for field in BRIEF_FIELDS}
