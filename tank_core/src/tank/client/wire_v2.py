"""The Glance v2 wire format, both directions: image JSON, JSON patches, listing queries.

A v2 image is one flat JSON object: base attributes (``schema-image.json``) and custom
properties side by side, so every key that is not a base attribute or a view link is a
property. Values are checked with the model's own parsers before anything is sent, so a
bad value fails here with the same :class:`~tank.errors.ValidationError` as in-process.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tank.errors import ValidationError
from tank.model import (
    RESERVED_PREFIX,
    Image,
    Location,
    Member,
    parse_bool,
    parse_image_id,
    parse_int,
    parse_tag,
    parse_visibility,
)

PATCH_MEDIA_TYPE = "application/openstack-images-v2.1-json-patch"
#: Import state the server keeps in reserved properties.
IMPORT_TASK = "os_glance_import_task"
IMPORTING_TO_STORES = "os_glance_importing_to_stores"
FAILED_IMPORT = "os_glance_failed_import"

#: Base attributes of a v2 image, as the model names them.
BASE_FIELDS = frozenset(
    {
        "id",
        "name",
        "disk_format",
        "container_format",
        "size",
        "virtual_size",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "status",
        "visibility",
        "os_hidden",
        "owner",
        "min_ram",
        "min_disk",
        "protected",
        "tags",
        "locations",
        "created_at",
        "updated_at",
    }
)
#: Keys of the v2 view that are neither attributes nor properties.
_VIEW_KEYS = frozenset({"self", "file", "schema", "direct_url", "stores"})
#: What a client may set when creating (``properties`` become top-level keys).
_SETTABLE = {
    "id": lambda v: parse_image_id(v),
    "name": lambda v: v,
    "disk_format": lambda v: v,
    "container_format": lambda v: v,
    "visibility": lambda v: parse_visibility(v).value,
    "os_hidden": lambda v: parse_bool("os_hidden", v),
    "owner": lambda v: v,
    "min_ram": lambda v: parse_int("min_ram", v),
    "min_disk": lambda v: parse_int("min_disk", v),
    "protected": lambda v: parse_bool("protected", v),
    "tags": lambda v: _tags(v),
}


# --- reading -------------------------------------------------------------------------


def image_from_v2(data: Any) -> Image:
    """An image object of a v2 body (``GET /v2/images/<id>`` or a listing row)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected an image object, got {type(data).__name__}")
    fields: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for key, value in data.items():
        if key in _VIEW_KEYS:
            continue
        if key == "locations":
            fields["locations"] = [
                _location(loc) for loc in value or () if isinstance(loc, Mapping)
            ]
        elif key in BASE_FIELDS:
            fields[key] = value
        else:
            properties[key] = _property_text(value)
    fields["properties"] = properties
    return Image(**fields)


def stores_from_v2(data: Any) -> tuple[str, ...]:
    """The stores holding an image's data, from its v2 view: multi-store Glance (and
    Tank) show them to every reader as ``stores`` ("a,b"), locations only to admins."""
    if not isinstance(data, Mapping):
        return ()
    text = data.get("stores")
    if isinstance(text, str) and text:
        return store_list(text)
    return image_from_v2(data).stores


def _location(data: Mapping[str, Any]) -> Location:
    metadata = data.get("metadata") if isinstance(data.get("metadata"), Mapping) else {}
    store = data.get("store", metadata.get("store") if metadata else None)
    return Location(
        url=data["url"], store=store if isinstance(store, str) else None, metadata=metadata
    )


def _property_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def member_from_v2(data: Any, *, image_id: str) -> Member:
    """``{"member_id", "image_id", "status", "created_at", "updated_at"}``."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a member object, got {type(data).__name__}")
    fields: dict[str, Any] = {
        "image_id": data.get("image_id", image_id),
        "member": data.get("member_id", data.get("member")),
    }
    if data.get("status"):
        fields["status"] = data["status"]
    for key in ("created_at", "updated_at"):
        if data.get(key):
            fields[key] = data[key]
    return Member(**fields)


def store_list(value: str | None) -> tuple[str, ...]:
    """A comma-separated list of store names (``os_glance_failed_import``...)."""
    if not value:
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


@attrs.frozen(kw_only=True)
class StoreInfo:
    """One store of ``GET /v2/info/stores``."""

    id: str
    description: str = ""
    default: bool = False
    read_only: bool = False

    @classmethod
    def from_json(cls, data: Any) -> StoreInfo:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise ValueError(f"expected a store object with an id, got {data!r:.80}")
        return cls(
            id=data["id"],
            description=str(data.get("description") or ""),
            default=parse_bool("default", data.get("default", False)),
            read_only=parse_bool("read-only", data.get("read-only", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


# --- writing -------------------------------------------------------------------------


def image_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON of ``POST /v2/images``: fields, with ``properties`` as top-level keys
    and v1's ``is_public`` as ``visibility`` (false is ``shared``, as v1 meant it)."""
    body: dict[str, Any] = {}
    for key, value in _v2_fields(fields).items():
        if key == "properties":
            continue
        if value is not None:
            body[key] = _SETTABLE[key](value)
    for key, value in _properties(fields.get("properties")).items():
        body[key] = value
    return body


def patch_ops(fields: Mapping[str, Any], current: Image | None) -> list[dict[str, Any]]:
    """A JSON patch (RFC 6902, Glance's ``openstack-images-v2.1-json-patch``) setting
    ``fields``. ``current`` is given to purge: properties it has that ``fields`` do not
    name are removed (never the server's own ``os_glance_*``)."""
    ops: list[dict[str, Any]] = []
    fields = _v2_fields(fields)
    for key, value in fields.items():
        if key == "properties":
            continue
        if key == "id":
            raise ValidationError("id", "an image's id cannot change")
        if value is None and key in ("name", "disk_format", "container_format", "owner"):
            ops.append({"op": "replace", "path": _pointer(key), "value": None})
        elif value is not None:
            ops.append({"op": "replace", "path": _pointer(key), "value": _SETTABLE[key](value)})
    props = _properties(fields.get("properties"))
    for key, value in props.items():
        ops.append({"op": "add", "path": _pointer(key), "value": value})
    if current is not None:
        for key in sorted(current.properties):
            if key not in props and not key.startswith(RESERVED_PREFIX):
                ops.append({"op": "remove", "path": _pointer(key)})
    return ops


def _v2_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "is_public" in out:
        public = parse_bool("is_public", out.pop("is_public"))
        if "visibility" in out:
            raise ValidationError("is_public", "give either is_public or visibility, not both")
        out["visibility"] = "public" if public else "shared"
    for key in out:
        if key != "properties" and key not in _SETTABLE:
            raise ValidationError(key, "unknown image field or not settable by a client")
    return out


def _tags(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ValidationError("tags", f"expected a list of strings, got {value!r:.80}")
    return sorted({parse_tag(tag) for tag in value})


def _properties(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("properties", "expected a mapping of names to values")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError("properties", f"property names are non-empty strings: {key!r}")
        if key in BASE_FIELDS or key in _VIEW_KEYS:
            raise ValidationError(
                f"properties.{key}", "is an image attribute in v2, not a custom property"
            )
        if isinstance(val, bool):
            val = "true" if val else "false"
        elif isinstance(val, int | float):
            val = str(val)
        if not isinstance(val, str):
            raise ValidationError(f"properties.{key}", f"expected a string, got {val!r:.80}")
        out[key] = val
    return out


def _pointer(key: str) -> str:
    """A JSON pointer to a top-level key (``~`` and ``/`` escaped, RFC 6901)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


# --- listing -------------------------------------------------------------------------


def list_params(
    filters: Mapping[str, Any] | None,
    sort_key: str | None,
    sort_dir: str | None,
    sort: Sequence[tuple[str, str]] | None,
    limit: int | None,
    marker: str | None,
) -> list[tuple[str, str]]:
    """The query of ``GET /v2/images``, as a list of pairs (some keys repeat).

    ``filters`` as for v1 (``property-KEY`` or ``properties={...}`` become Glance's bare
    ``KEY=``), plus v2's: a tuple value is an ``in:`` list, ``tags`` one ``tag=`` each,
    ``created_at``/``updated_at`` a ``"gte:<time>"`` text or ``(op, datetime)`` pairs.
    v1's ``is_public``: None means every visibility, true public.
    """
    params: list[tuple[str, str]] = []
    for key, value in (filters or {}).items():
        if key == "properties":
            params += [(name, _param(val)) for name, val in _properties(value).items()]
        elif key.startswith("property-") and len(key) > len("property-"):
            params.append((key[len("property-") :], _param(value)))
        elif key in ("tags", "tag"):
            values = [value] if isinstance(value, str) else list(value)
            params += [("tag", parse_tag(v)) for v in values]
        elif key == "is_public":
            if value is None or value in ("none", "None"):
                params.append(("visibility", "all"))
            elif parse_bool("is_public", value):
                params.append(("visibility", "public"))
            else:
                raise ValidationError(
                    "is_public", "v2 has no 'not public' filter: use visibility=private|shared"
                )
        elif key in ("created_at", "updated_at") and isinstance(value, list | tuple):
            for op, when in value:
                text = when.isoformat() if isinstance(when, dt.datetime) else str(when)
                params.append((key, f"{op}:{text}"))
        elif isinstance(value, tuple):
            params.append((key, "in:" + ",".join(_quoted(_param(v)) for v in value)))
        elif value is not None:
            params.append((key, _param(value)))
    if sort:
        if sort_key is not None or sort_dir is not None:
            raise ValidationError("sort", "give either sort or sort_key/sort_dir, not both")
        params.append(("sort", ",".join(f"{key}:{direction}" for key, direction in sort)))
    else:
        if sort_key is not None:
            params.append(("sort_key", sort_key))
        if sort_dir is not None:
            params.append(("sort_dir", sort_dir))
    if limit is not None:
        params.append(("limit", str(limit)))
    if marker is not None:
        params.append(("marker", parse_image_id(marker, "marker")))
    return params


def _quoted(text: str) -> str:
    """One value of an ``in:`` list: quoted when it holds a comma or a quote (Glance)."""
    if "," in text or '"' in text:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
