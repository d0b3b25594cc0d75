"""SQL for visibility, listings and keyset pagination, and rows <-> :class:`Image`.

Pages are keyset-paginated: the marker's sort value and id become a ``WHERE`` that
starts right after it, written so that the ``(sort_key, id)`` index can seek there
instead of counting rows from the start. NULLs sort first in ascending order (SQLite's
rule, asked for explicitly on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tank.model import FIELDS, Context, Image, ListQuery, Status
from tank_registry_sql.schema import (
    NULLABLE_SORT_KEYS,
    VALUE_PREFIX,
    ImageRow,
    MemberRow,
    PropertyRow,
    value_prefix,
)

IMAGE_COLUMNS = tuple(ImageRow.__table__.c)
COLUMN_NAMES = tuple(c.name for c in IMAGE_COLUMNS)
if set(COLUMN_NAMES) != FIELDS - {"properties"}:
    raise ImportError("tank_registry_sql.schema and tank.model.Image have different fields")


# --- rows <-> images -----------------------------------------------------------------


def image_values(image: Image) -> dict[str, Any]:
    """Column values of ``image`` (properties live in their own table)."""
    values = {name: getattr(image, name) for name in COLUMN_NAMES}
    values["status"] = image.status.value
    return values


_new = object.__new__
_set = object.__setattr__


def to_image(row: sa.Row[Any], properties: dict[str, str] | None) -> Image:
    """The image of a row of :data:`IMAGE_COLUMNS` and its properties.

    Rows hold only values that passed the model's converters on their way in (and
    :class:`~tank_registry_sql.schema.UTCDateTime` restores the time zone), so the
    fields are set directly: running every converter again costs ~30 µs per image,
    most of the time of a 1,000-image listing. ``status`` is the one value to rebuild.
    """
    image = _new(Image)
    for name, value in zip(COLUMN_NAMES, row, strict=True):
        _set(image, name, value)
    _set(image, "status", Status(row.status))
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


# --- visibility ----------------------------------------------------------------------


def visible(context: Context, *, with_deleted: bool) -> sa.ColumnElement[bool]:
    """Images ``context`` may see. Deleted images only for admins with ``with_deleted``."""
    if context.is_admin:
        return sa.true() if with_deleted else ImageRow.deleted == sa.false()
    shown: list[sa.ColumnElement[bool]] = [ImageRow.is_public == sa.true()]
    if context.tenant is not None:
        shown.append(ImageRow.owner == context.tenant)
        shown.append(
            ImageRow.id.in_(sa.select(MemberRow.image_id).where(MemberRow.member == context.tenant))
        )
    return sa.and_(ImageRow.deleted == sa.false(), sa.or_(*shown))


def select_visible(image_id: str, context: Context) -> sa.Select[Any]:
    """The image row if ``context`` can see it (admins also see deleted images)."""
    return sa.select(*IMAGE_COLUMNS).where(
        ImageRow.id == image_id, visible(context, with_deleted=True)
    )


# --- listings ------------------------------------------------------------------------


def list_statement(
    query: ListQuery, context: Context, marker: sa.Row[Any] | None, *, dialect: str
) -> sa.Select[Any]:
    filters = dict(query.filters)
    with_deleted = bool(filters.pop("deleted", False)) and context.is_admin
    where: list[sa.ColumnElement[bool]] = [visible(context, with_deleted=with_deleted)]
    where.extend(_filter_conditions(filters))
    column = ImageRow.__table__.c[query.sort_key]
    nullable = query.sort_key in NULLABLE_SORT_KEYS
    ascending = query.sort_dir == "asc"
    if marker is not None:
        where.append(
            _after(column, marker._mapping[query.sort_key], marker.id, ascending, nullable)
        )
    return (
        sa.select(*IMAGE_COLUMNS)
        .where(*where)
        .order_by(*_ordering(column, ascending, nullable and dialect == "postgresql"))
        .limit(query.limit)
    )


def _filter_conditions(filters: Mapping[str, Any]) -> Iterable[sa.ColumnElement[bool]]:
    for key, value in filters.items():
        if key in ("name", "disk_format", "container_format"):
            yield ImageRow.__table__.c[key] == value
        elif key == "status":
            yield ImageRow.status == value.value
        elif key == "size_min":
            yield ImageRow.size >= value
        elif key == "size_max":
            yield ImageRow.size <= value
        elif key == "is_public":
            if value is not None:
                yield ImageRow.is_public == (sa.true() if value else sa.false())
        elif key.startswith("property-"):
            name = key[len("property-") :]
            yield ImageRow.id.in_(
                sa.select(PropertyRow.image_id).where(PropertyRow.name == name, *_equals(value))
            )
        else:  # ListQuery validated the keys; a new one must be handled here
            raise AssertionError(f"unhandled list filter {key!r}")


def _equals(value: str) -> list[sa.ColumnElement[bool]]:
    """``PropertyRow.value == value``, in a form the ``(name, value prefix)`` index serves.

    A value shorter than the indexed prefix is equal exactly when the prefix is. Longer
    ones need the full comparison too (SQLite then propagates ``value = ?`` into the
    prefix expression and uses the index for the name only; fine for rare long values).
    """
    prefix = value_prefix(PropertyRow.value)
    if len(value) < VALUE_PREFIX:
        return [prefix == value]
    return [prefix == value[:VALUE_PREFIX], PropertyRow.value == value]


def _ordering(column: Any, ascending: bool, explicit_nulls: bool) -> list[Any]:
    if column is ImageRow.__table__.c.id:
        return [column.asc() if ascending else column.desc()]
    if ascending:
        first = column.asc().nulls_first() if explicit_nulls else column.asc()
        return [first, ImageRow.id.asc()]
    first = column.desc().nulls_last() if explicit_nulls else column.desc()
    return [first, ImageRow.id.desc()]


def _after(
    column: Any, value: Any, marker_id: str, ascending: bool, nullable: bool
) -> sa.ColumnElement[bool]:
    """Rows after the marker ``(value, marker_id)`` in the listing's order.

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
