"""``GET /v2/images`` query parameters as a :class:`~tank.model.ListQuery`, Glance v2's way.

Filters: the image attributes below (``in:a,b`` lists for id, name, status and the
formats; ``gt:``/``gte:``/``lt:``/``lte:``/``eq:``/``neq:`` timestamps for created_at and
updated_at), ``tag`` (repeatable, all must match), ``size_min``/``size_max``, and any other
name as an extra property. Defaults as Glance: images shared with the caller only once
accepted (``member_status=accepted``), hidden images left out (``os_hidden=false``).
Order: ``sort=k1:asc,k2`` or repeated ``sort_key``/``sort_dir``, never both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tank import errors
from tank.model import IN_FILTER_KEYS, SORT_KEYS, ListQuery, parse_int

DEFAULT_LIMIT = 25
#: Parameters that are not filters.
PAGING = frozenset({"limit", "marker", "sort", "sort_key", "sort_dir"})
#: Filters taken as they are (validated by the model).
PLAIN = frozenset(
    {"owner", "visibility", "member_status", "os_hidden", "protected", "size_min", "size_max"}
)
#: Image attributes that cannot be filtered on (a filter by that name is a 400, not a
#: property filter that never matches).
UNFILTERABLE = frozenset(
    {
        "size",
        "virtual_size",
        "os_hash_algo",
        "min_ram",
        "min_disk",
        "locations",
        "direct_url",
        "stores",
        "self",
        "file",
        "schema",
        "deleted",
        "deleted_at",
        "is_public",
    }
)


def list_query(items: Sequence[tuple[str, str]]) -> ListQuery:
    """The listing a ``GET /v2/images`` query string asks for; ValidationError (400)
    naming the parameter for anything that is not right."""
    filters: dict[str, Any] = {"member_status": "accepted", "os_hidden": "false"}
    tags: list[str] = []
    last = {key: value for key, value in items}
    for key, value in items:
        if key in PAGING:
            continue
        if key == "tag":
            tags.append(value)
        elif key in IN_FILTER_KEYS:
            filters[key] = _maybe_in(value)
        elif key in ("created_at", "updated_at"):
            filters[key] = [_comparison(key, v) for k, v in items if k == key]
        elif key in PLAIN:
            filters[key] = value
        elif key in UNFILTERABLE:
            raise errors.ValidationError(key, "cannot filter images on this attribute")
        else:
            if not key:
                raise errors.ValidationError("query", "a parameter without a name")
            filters[f"property-{key}"] = value
    if tags:
        filters["tags"] = tags
    args: dict[str, Any] = {"filters": filters, "sort": _sort(items)}
    args["limit"] = parse_int("limit", last.get("limit", DEFAULT_LIMIT))
    if "marker" in last:
        args["marker"] = last["marker"]
    return ListQuery(**args)


def _maybe_in(value: str) -> str | list[str]:
    if value.startswith("in:"):
        return _split_list(value[3:])
    return value


def _split_list(text: str) -> list[str]:
    """``a,b,"c,d"``: Glance lets values that hold commas be double-quoted."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise errors.ValidationError("in", f"unbalanced quotes in {text[:80]!r}")
    out.append("".join(current))
    return out


def _comparison(key: str, value: str) -> tuple[str, str]:
    op, sep, when = value.partition(":")
    if sep and op in ("gt", "gte", "lt", "lte", "eq", "neq"):
        return op, when
    if sep and op.isalpha() and len(op) <= 4:
        raise errors.ValidationError(
            key, f"unknown operator {op[:10]!r}: use gt, gte, lt, lte, eq or neq"
        )
    return "eq", value


def _sort(items: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    keys = [v for k, v in items if k == "sort_key"]
    dirs = [v for k, v in items if k == "sort_dir"]
    combined = [v for k, v in items if k == "sort"]
    if combined:
        if keys or dirs:
            raise errors.ValidationError("sort", "give either sort or sort_key/sort_dir, not both")
        pairs = []
        for part in ",".join(combined).split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((_sort_key(key), direction or "desc"))
        return pairs
    if not keys:
        if dirs:
            raise errors.ValidationError("sort_dir", "sort_dir needs a sort_key")
        return [("created_at", "desc")]
    if dirs and len(dirs) != len(keys) and len(dirs) != 1:
        raise errors.ValidationError(
            "sort_dir", f"give one sort_dir, or one per sort_key ({len(keys)}), not {len(dirs)}"
        )
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    return [(_sort_key(k), dirs[i] if dirs else "desc") for i, k in enumerate(keys)]


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        allowed = ", ".join(sorted(SORT_KEYS))
        raise errors.ValidationError("sort_key", f"{key[:80]!r} is not one of {allowed}")
    return key
