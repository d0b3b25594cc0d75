"""SQL for visibility, listings and keyset pagination, and rows <-> :class:`Image`.

Pages are keyset-paginated: the marker's sort value and id become a ``WHERE`` that
starts right after it, written so that the ``(sort_key, id)`` index can seek there
instead of counting rows from the start. NULLs sort first in ascending order (SQLite's
rule, asked for explicitly on PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tank.model import FIELDS, Context, Image, ListQuery, Location, Status, Visibility
from tank_registry_sql.schema import (
    VISIBLE_TO_ALL,
    ImageRow,
    MemberRow,
    PropertyRow,
    TagRow,
    property_value_is,
)

if TYPE_CHECKING:
    from tank_registry_sql.planning import Plan

IMAGE_COLUMNS = tuple(ImageRow.__table__.c)
COLUMN_NAMES = tuple(c.name for c in IMAGE_COLUMNS)
if set(COLUMN_NAMES) != FIELDS - {"properties"}:
    raise ImportError("tank_registry_sql.schema and tank.model.Image have different fields")
#: Columns that may hold NULL (they sort first ascending, last descending).
NULLABLE = frozenset(c.name for c in IMAGE_COLUMNS if c.nullable)


# --- rows <-> images -----------------------------------------------------------------


def image_values(image: Image) -> dict[str, Any]:
    """Column values of ``image`` (properties live in their own table)."""
    values = {name: getattr(image, name) for name in COLUMN_NAMES}
    values["status"] = image.status.value
    values["visibility"] = image.visibility.value
    values["locations"] = (
        json.dumps([loc.to_dict() for loc in image.locations], separators=(",", ":"))
        if image.locations
        else _EMPTY
    )
    values["tags"] = json.dumps(list(image.tags), separators=(",", ":")) if image.tags else _EMPTY
    return values


_new = object.__new__
_set = object.__setattr__
_EMPTY = "[]"
_STATUS = {s.value: s for s in Status}
_VISIBILITY = {v.value: v for v in Visibility}


def _location(data: dict[str, Any]) -> Location:
    location = _new(Location)
    for name in ("url", "store", "owned", "metadata"):
        _set(location, name, data[name])
    return location


def to_image(row: sa.Row[Any], properties: dict[str, str] | None) -> Image:
    """The image of a row of :data:`IMAGE_COLUMNS` and its properties.

    Rows hold only values that passed the model's converters on their way in (and
    :class:`~tank_registry_sql.schema.UTCDateTime` restores the time zone), so the
    fields are set directly: running every converter again costs ~30 µs per image,
    most of the time of a 1,000-image listing. Enums and locations are rebuilt.
    """
    image = _new(Image)
    for name, value in zip(COLUMN_NAMES, row, strict=True):
        _set(image, name, value)
    _set(image, "status", _STATUS[row.status])
    _set(image, "visibility", _VISIBILITY[row.visibility])
    raw = row.locations
    _set(image, "locations", () if raw == _EMPTY else tuple(map(_location, json.loads(raw))))
    raw = row.tags
    _set(image, "tags", () if raw == _EMPTY else tuple(json.loads(raw)))
    _set(image, "properties", properties if properties is not None else {})
    return image


def load_properties(conn: sa.Connection, ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Properties of the images ``ids`` in one query: ``{image_id: {name: value}}``."""
    out: dict[str, dict[str, str]] = {}
    if not ids:
        return out
    stmt = sa.select(PropertyRow.image_id, PropertyRow.name, PropertyRow.value).where(
        PropertyRow.image_id.in_(ids)
    )
    for image_id, name, value in conn.execute(stmt):
        out.setdefault(image_id, {})[name] = value
    return out


def load_images(conn: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[Image]:
    properties = load_properties(conn, [row.id for row in rows])
    return [to_image(row, properties.get(row.id)) for row in rows]


# --- visibility ----------------------------------------------------------------------


def _shared_with(tenant: str, member_status: Any) -> sa.ColumnElement[bool]:
    members = sa.select(MemberRow.image_id).where(MemberRow.member == tenant)
    if member_status not in (None, "all"):
        members = members.where(MemberRow.status == str(member_status))
    return sa.and_(ImageRow.visibility == Visibility.SHARED.value, ImageRow.id.in_(members))


def visible(context: Context, *, with_deleted: bool) -> sa.ColumnElement[bool]:
    """Images ``context`` may get by id: public and community ones, its own, and shared
    ones it is a member of (whatever its answer). Deleted ones only for admins with
    ``with_deleted``."""
    if context.is_admin:
        return sa.true() if with_deleted else ImageRow.deleted == sa.false()
    shown: list[sa.ColumnElement[bool]] = [ImageRow.visibility.in_(VISIBLE_TO_ALL)]
    if context.tenant is not None:
        shown.append(ImageRow.owner == context.tenant)
        shown.append(_shared_with(context.tenant, None))
    return sa.and_(ImageRow.deleted == sa.false(), sa.or_(*shown))


def listed(
    context: Context, *, with_deleted: bool, visibility: Any, member_status: Any
) -> sa.ColumnElement[bool]:
    """Images a listing shows ``context`` (Glance v2's rule): public ones, its own,
    those shared with it (with ``member_status`` if given), and community ones only
    when ``visibility`` asks for them (``community`` or ``all``)."""
    if context.is_admin:
        return sa.true() if with_deleted else ImageRow.deleted == sa.false()
    community = visibility in (Visibility.COMMUNITY, "all")
    shown: list[sa.ColumnElement[bool]] = [
        ImageRow.visibility.in_(VISIBLE_TO_ALL)
        if community
        else ImageRow.visibility == Visibility.PUBLIC.value
    ]
    if context.tenant is not None:
        shown.append(ImageRow.owner == context.tenant)
        shown.append(_shared_with(context.tenant, member_status))
    return sa.and_(ImageRow.deleted == sa.false(), sa.or_(*shown))


def select_visible(image_id: str, context: Context) -> sa.Select[Any]:
    """The image row if ``context`` can see it (admins also see deleted images)."""
    return sa.select(*IMAGE_COLUMNS).where(
        ImageRow.id == image_id, visible(context, with_deleted=True)
    )


# --- listings ------------------------------------------------------------------------


def list_statement(
    query: ListQuery,
    context: Context,
    marker: sa.Row[Any] | None,
    *,
    dialect: str,
    plan: Plan | None = None,
) -> sa.Select[Any]:
    """The listing's SELECT; ``plan``: which filter leads (:mod:`.planning`, SQLite)."""
    filters = dict(query.filters)
    with_deleted = bool(filters.pop("deleted", False)) and context.is_admin
    member_status = filters.pop("member_status", None)
    where: list[sa.ColumnElement[bool]] = [
        listed(
            context,
            with_deleted=with_deleted,
            visibility=filters.get("visibility"),
            member_status=member_status,
        )
    ]
    where.extend(_filter_conditions(filters, plan))
    table = ImageRow.__table__
    sort = [(table.c[key], direction == "asc", key in NULLABLE) for key, direction in query.sort]
    if marker is not None:
        where.append(_after_marker(sort, marker))
    explicit_nulls = dialect == "postgresql"
    return (
        sa.select(*IMAGE_COLUMNS)
        .where(*where)
        .order_by(*_ordering(sort, explicit_nulls))
        .limit(query.limit)
    )


def column_filter(column: Any, value: Any) -> sa.ColumnElement[bool]:
    """``column`` equal to ``value``, or to any of a tuple of values."""
    if isinstance(value, tuple):
        return column.in_([str(v) for v in value])
    return column == str(value)


_COMPARE = {
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "eq": lambda c, v: c == v,
    "neq": lambda c, v: c != v,
}


def _filter_conditions(
    filters: Mapping[str, Any], plan: Plan | None
) -> Iterable[sa.ColumnElement[bool]]:
    table = ImageRow.__table__
    for key, value in filters.items():
        if key in ("disk_format", "container_format", "status", "owner"):
            condition = column_filter(table.c[key], value)
            yield plan.wrap(key, condition) if plan else condition
        elif key in ("id", "name", "checksum", "os_hash_value"):
            yield column_filter(table.c[key], value)
        elif key == "visibility":
            if value != "all":
                yield ImageRow.visibility == value.value
        elif key in ("os_hidden", "protected"):
            yield table.c[key] == (sa.true() if value else sa.false())
        elif key in ("created_at", "updated_at"):
            for op, when in value:
                yield _COMPARE[op](table.c[key], when)
        elif key == "tags":
            for tag in value:
                yield _has(TagRow, tag_match(tag), f"tags:{tag}", plan)
        elif key == "size_min":
            yield ImageRow.size >= value
        elif key == "size_max":
            yield ImageRow.size <= value
        elif key == "is_public":
            if value is not None:
                public = ImageRow.visibility == Visibility.PUBLIC.value
                yield public if value else sa.not_(public)
        elif key.startswith("property-"):
            yield _has(PropertyRow, property_match(key, value), key, plan)
        else:  # ListQuery validated the keys; a new one must be handled here
            raise AssertionError(f"unhandled list filter {key!r}")


def tag_match(tag: str) -> list[sa.ColumnElement[bool]]:
    """The ``image_tags`` rows of ``tag``."""
    return [TagRow.tag == tag]


def property_match(key: str, value: str) -> list[sa.ColumnElement[bool]]:
    """The ``image_properties`` rows a ``property-<name>`` filter ``key`` matches."""
    return [PropertyRow.name == key[len("property-") :], *property_value_is(value)]


def _has(
    row: Any, match: list[sa.ColumnElement[bool]], name: str, plan: Plan | None
) -> sa.ColumnElement[bool]:
    """Images with a ``row`` (tag, property) that ``match``es: as ``id IN (list)`` where
    the filter leads (or nothing was planned), else correlated, looked up per image by
    the row table's ``(image_id, ...)`` key instead of listing every match first."""
    if plan is None or plan.leads(name):
        condition = ImageRow.id.in_(sa.select(row.image_id).where(*match))
        return plan.wrap(name, condition) if plan else condition
    correlated = sa.exists().where(row.image_id == ImageRow.id, *match)
    return plan.wrap(name, correlated)


_SortKey = tuple[Any, bool, bool]  # (column, ascending, nullable)


def _ordering(sort: Sequence[_SortKey], explicit_nulls: bool) -> list[Any]:
    """ORDER BY the sort keys, then ``id`` in the last key's direction. NULLs first
    ascending and last descending (SQLite's own rule; said explicitly on PostgreSQL)."""
    out: list[Any] = []
    for column, ascending, nullable in sort:
        if column is ImageRow.__table__.c.id:
            return [*out, column.asc() if ascending else column.desc()]
        if ascending:
            out.append(column.asc().nulls_first() if explicit_nulls and nullable else column.asc())
        else:
            out.append(column.desc().nulls_last() if explicit_nulls and nullable else column.desc())
    last_ascending = sort[-1][1]
    return [*out, ImageRow.id.asc() if last_ascending else ImageRow.id.desc()]


def _after_marker(sort: Sequence[_SortKey], marker: sa.Row[Any]) -> sa.ColumnElement[bool]:
    # booleans as bound values: SQLAlchemy allows only = and != with Python's True/False
    values = {
        k: sa.literal(v, sa.Boolean) if isinstance(v, bool) else v
        for k, v in marker._mapping.items()
    }
    if len(sort) == 1:
        column, ascending, nullable = sort[0]
        return _after(column, values[column.name], marker.id, ascending, nullable)
    return _after_keys(sort, values, marker.id)


def _after(
    column: Any, value: Any, marker_id: str, ascending: bool, nullable: bool
) -> sa.ColumnElement[bool]:
    """Rows after the marker ``(value, marker_id)`` in a one-key listing's order.

    The redundant ``column >= value`` (or ``<=``) lets the index seek to the marker.
    """
    image_id = ImageRow.id
    if column is ImageRow.__table__.c.id:
        return image_id > marker_id if ascending else image_id < marker_id
    if ascending:  # NULLs first, then values
        if value is None:
            return sa.or_(sa.and_(column.is_(None), image_id > marker_id), column.is_not(None))
        return sa.and_(column >= value, sa.or_(column > value, image_id > marker_id))
    # descending: values, then NULLs
    if value is None:
        return sa.and_(column.is_(None), image_id < marker_id)
    after = sa.and_(column <= value, sa.or_(column < value, image_id < marker_id))
    return sa.or_(after, column.is_(None)) if nullable else after


def _after_keys(
    sort: Sequence[_SortKey], values: Mapping[str, Any], marker_id: str
) -> sa.ColumnElement[bool]:
    """Rows after the marker in a several-key order: for some key i, equal on the keys
    before it and strictly after on key i (or equal on all and after on ``id``)."""
    table = ImageRow.__table__
    keys = list(sort)
    if keys[-1][0] is not table.c.id:
        keys.append((table.c.id, keys[-1][1], False))
    branches = []
    equal: list[sa.ColumnElement[bool]] = []
    for column, ascending, nullable in keys:
        value = marker_id if column is table.c.id else values[column.name]
        branches.append(sa.and_(*equal, _strictly_after(column, value, ascending, nullable)))
        equal.append(column.is_(None) if value is None else column == value)
    return sa.or_(*branches)


def _strictly_after(
    column: Any, value: Any, ascending: bool, nullable: bool
) -> sa.ColumnElement[bool]:
    if ascending:  # NULLs first
        if value is None:
            return column.is_not(None)
        return column > value
    if value is None:  # descending: NULLs last, nothing after them
        return sa.false()
    return sa.or_(column < value, column.is_(None)) if nullable else column < value
