"""The Glance v1 wire format, both directions: ``x-image-meta-*`` headers and JSON bodies.

Values travel as UTF-8 in headers (as python-glanceclient sends them); HTTP libraries
hand header values over as Latin-1 text, so they are re-decoded here. Unknown fields a
newer server may send are ignored, so an old client keeps working.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from tank.errors import ValidationError
from tank.model import FIELDS, Image, Member, parse_bool, parse_image_id
from tank.v1_headers import META_PREFIX, PROPERTY_PREFIX, SETTABLE_FIELDS
from tank.web.headers import from_wire

PURGE_PROPS_HEADER = "x-glance-registry-purge-props"

#: Fields the client may send when creating an image (besides data, size, checksum...):
#: Glance v1's, where ``is_public`` stands for ``visibility``.
CREATE_FIELDS = SETTABLE_FIELDS | {"id", "properties"}
UPDATE_FIELDS = CREATE_FIELDS - {"id"}

#: RFC 9110 token: what a header name may contain.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
#: Optional image fields whose empty header value means "not set".
_NULLABLE = {"size", "checksum", "os_hash_algo", "os_hash_value", "deleted_at", "owner"}
#: v1 fields that are not the model's, read into it by :func:`_v1_fields`.
_V1_ONLY = {"is_public", "location"}


@attrs.frozen(kw_only=True)
class BriefImage:
    """One row of the brief listing (``GET /v1/images``): the fields Glance v1 shows there."""

    id: str = attrs.field(converter=parse_image_id)
    name: str | None = None
    disk_format: str | None = None
    container_format: str | None = None
    size: int | None = None
    checksum: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def header_value(field: str, value: Any) -> bytes:
    """Encode one value for a header; refuse what a header cannot carry."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int):
        text = str(value)
    else:
        raise ValidationError(field, f"expected a string, integer or boolean, got {value!r}")
    if any(c in text for c in "\r\n\x00"):
        raise ValidationError(field, "must not contain line breaks or NUL characters")
    if text != text.strip(" \t"):
        raise ValidationError(field, "leading or trailing blanks would be lost in an HTTP header")
    return text.encode("utf-8")


def meta_headers(fields: Mapping[str, Any], *, allowed: frozenset[str]) -> dict[str, bytes]:
    """``x-image-meta-*`` headers for image fields (``properties`` a mapping of strings)."""
    headers: dict[str, bytes] = {}
    for field, value in fields.items():
        if field not in allowed:
            raise ValidationError(field, "unknown image field or not settable by a client")
        if field == "properties":
            if not isinstance(value, Mapping):
                raise ValidationError("properties", "expected a mapping of names to values")
            for key, val in value.items():
                if not isinstance(key, str) or not _TOKEN.match(key):
                    raise ValidationError(
                        "properties",
                        f"property name {key!r} cannot be sent in an HTTP header "
                        "(use letters, digits and -_.~ only)",
                    )
                headers[PROPERTY_PREFIX + key] = header_value(f"properties.{key}", val)
        elif value is not None:
            headers[META_PREFIX + field] = header_value(field, value)
    return headers


def image_from_headers(headers: Mapping[str, str]) -> Image:
    """Parse the metadata headers of HEAD/GET ``/v1/images/<id>`` into an Image."""
    fields: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(PROPERTY_PREFIX):
            properties[from_wire(name[len(PROPERTY_PREFIX) :])] = from_wire(value)
        elif lower.startswith(META_PREFIX):
            field = lower[len(META_PREFIX) :]
            if (field in FIELDS or field in _V1_ONLY) and field != "properties":
                text = from_wire(value)
                fields[field] = None if (text in ("", "None") and field in _NULLABLE) else text
    fields["properties"] = properties
    return Image(**_v1_fields(fields))


def _v1_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """v1's ``is_public`` as ``visibility`` (v1 cannot tell private from shared: shared)
    and its admin-only ``location`` as the one location."""
    if "is_public" in fields:
        public = parse_bool("is_public", fields.pop("is_public"))
        fields["visibility"] = "public" if public else "shared"
    location = fields.pop("location", None)
    if location:
        fields["locations"] = [{"url": location}]
    return fields


def image_from_json(data: Any) -> Image:
    """Parse one image object of a JSON body (``{"image": {...}}`` or a listing row)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an image object, got {type(data).__name__}")
    fields = {k: v for k, v in data.items() if k in FIELDS or k in _V1_ONLY}
    return Image(**_v1_fields(fields))


def brief_from_json(data: Any) -> BriefImage:
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an image object, got {type(data).__name__}")
    names = {a.name for a in attrs.fields(BriefImage)}
    return BriefImage(**{k: v for k, v in data.items() if k in names})


def member_from_json(
    data: Any, *, image_id: str | None = None, member: str | None = None
) -> Member:
    """Parse a Glance v1 membership: ``{"member_id", "can_share"}`` in an image's member
    list, ``{"image_id", "can_share"}`` in a member's shared-images list."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a membership object, got {type(data).__name__}")
    fields: dict[str, Any] = {
        "image_id": data.get("image_id", image_id),
        "member": data.get("member_id", data.get("member", member)),
        "can_share": data.get("can_share", False),
    }
    for key in ("created_at", "updated_at"):
        if data.get(key):
            fields[key] = data[key]
    return Member(**fields)


def query_params(filters: Mapping[str, Any] | None) -> dict[str, str]:
    """Listing filters as query parameters. ``properties={"os": "x"}`` becomes
    ``property-os=x``; ``is_public=None`` asks for public and private images alike."""
    params: dict[str, str] = {}
    for key, value in (filters or {}).items():
        if key == "properties":
            for name, val in value.items():
                params[f"property-{name}"] = _param(val)
        elif value is None:
            if key == "is_public":
                params[key] = "none"
        else:
            params[key] = _param(value)
    return params


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
