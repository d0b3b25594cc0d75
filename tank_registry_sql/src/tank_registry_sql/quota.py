"""Quotas in SQL: one project's usage, its lock, and the reservations of images in flight.

A quota-checked write locks the project first, so that no other quota-checked write of
that project (in any process) runs between its count and its write: on PostgreSQL a
transaction-scoped advisory lock on the project's name, on SQLite the database's single
writer (write transactions begin ``IMMEDIATE``). Callers lock the image row, if any,
before the project, always in that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm

from tank import quotas
from tank.model import Image
from tank_registry_sql.schema import ImageRow, PropertyRow, ReservationRow

#: First key of the advisory locks of projects (the second is a hash of the name).
LOCK_CLASS = 7354003
_GONE = [s.value for s in quotas.GONE]
_IN_FLIGHT = [s.value for s in quotas.IN_FLIGHT]
_STAGED = [s.value for s in quotas.STAGED]


def lock_owner(conn: sa.Connection, owner: str | None) -> None:
    """Hold the quota lock of ``owner`` until the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.select(sa.func.pg_advisory_xact_lock(LOCK_CLASS, sa.func.hashtext(owner or "")))
        )
    # SQLite: the transaction began IMMEDIATE, it is the only writer of the database


def _live(owner: str | None) -> list[sa.ColumnElement[bool]]:
    owned = ImageRow.owner.is_(None) if owner is None else ImageRow.owner == owner
    return [owned, ImageRow.deleted == sa.false(), ImageRow.status.not_in(_GONE)]


def _larger(a: sa.ColumnElement[int], b: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    return sa.case((a > b, a), else_=b)


def usage(
    conn: sa.Connection, owner: str | None, resources: Iterable[str] = quotas.RESOURCES
) -> dict[str, int]:
    """The usage of ``owner`` of ``resources`` (the others are 0), as
    :func:`tank.quotas.image_usage` counts it, in one scan of the owner's images in SQL.
    Sizes cost more (each image's locations and reservations): asked for only when
    they are limited."""
    if not quotas.SIZES & set(resources):
        return _counts(conn, owner)
    size_res = sa.orm.aliased(ReservationRow)
    stage_res = sa.orm.aliased(ReservationRow)
    copying_prop = sa.orm.aliased(PropertyRow)
    locations: Any = ImageRow.locations  # a column, cast to JSON on PostgreSQL
    if conn.dialect.name == "postgresql":
        locations = sa.cast(locations, sa.JSON)
    count = sa.func.json_array_length(locations)
    size = sa.func.coalesce(ImageRow.size, 0)
    copying = copying_prop.image_id.is_not(None)
    in_flight = sa.or_(ImageRow.status.in_(_IN_FLIGHT), copying)
    staged = sa.case(
        (sa.or_(ImageRow.status.in_(_STAGED), copying), size),
        else_=0,
    )
    stored = sa.case((size > 0, size * count), else_=0)
    reserved_size = sa.func.coalesce(size_res.bytes, 0)
    reserved_stage = sa.func.coalesce(stage_res.bytes, 0)
    stmt = (
        sa.select(
            sa.func.count(),
            sa.func.sum(sa.case((in_flight, 1), else_=0)),
            sa.func.sum(_larger(stored, reserved_size)),
            sa.func.sum(_larger(staged, reserved_stage)),
        )
        .select_from(ImageRow)
        .outerjoin(
            size_res,
            sa.and_(size_res.image_id == ImageRow.id, size_res.resource == quotas.SIZE_TOTAL),
        )
        .outerjoin(
            stage_res,
            sa.and_(stage_res.image_id == ImageRow.id, stage_res.resource == quotas.STAGE_TOTAL),
        )
        .outerjoin(
            copying_prop,
            sa.and_(
                copying_prop.image_id == ImageRow.id,
                copying_prop.name == quotas.COPYING_PROPERTY,
                copying_prop.value != "",
            ),
        )
        .where(*_live(owner))
    )
    row = conn.execute(stmt).one()
    total, uploading, stored_total, staged_total = (int(v or 0) for v in row)
    return {
        quotas.SIZE_TOTAL: stored_total,
        quotas.STAGE_TOTAL: staged_total,
        quotas.COUNT_TOTAL: total,
        quotas.COUNT_UPLOADING: uploading,
    }


def _counts(conn: sa.Connection, owner: str | None) -> dict[str, int]:
    copying = ImageRow.id.in_(
        sa.select(PropertyRow.image_id).where(
            PropertyRow.name == quotas.COPYING_PROPERTY, PropertyRow.value != ""
        )
    )
    in_flight = sa.or_(ImageRow.status.in_(_IN_FLIGHT), copying)
    stmt = sa.select(sa.func.count(), sa.func.sum(sa.case((in_flight, 1), else_=0))).where(
        *_live(owner)
    )
    total, uploading = (int(v or 0) for v in conn.execute(stmt).one())
    out = dict.fromkeys(quotas.RESOURCES, 0)
    out.update({quotas.COUNT_TOTAL: total, quotas.COUNT_UPLOADING: uploading})
    return out


def contribution(image: Image | None, reserved: Mapping[str, int]) -> dict[str, int]:
    """What ``image`` (None: no image) counts for each quota, as :func:`usage` counts it."""
    if image is None or image.deleted:
        return dict.fromkeys(quotas.RESOURCES, 0)
    return quotas.image_usage(
        status=image.status,
        size=image.size,
        locations=len(image.locations),
        copying=bool(image.properties.get(quotas.COPYING_PROPERTY)),
        reserved=reserved,
    )


def reservations(conn: sa.Connection, image_id: str) -> dict[str, int]:
    stmt = sa.select(ReservationRow.resource, ReservationRow.bytes).where(
        ReservationRow.image_id == image_id
    )
    return {resource: amount for resource, amount in conn.execute(stmt)}


def clear(conn: sa.Connection, image_id: str) -> None:
    conn.execute(sa.delete(ReservationRow).where(ReservationRow.image_id == image_id))


def set_reserved(conn: sa.Connection, image_id: str, amounts: Mapping[str, int]) -> None:
    """Set the image's reservation of each resource named (0 removes it)."""
    for resource, amount in amounts.items():
        conn.execute(
            sa.delete(ReservationRow).where(
                ReservationRow.image_id == image_id, ReservationRow.resource == resource
            )
        )
        if amount > 0:
            conn.execute(
                sa.insert(ReservationRow),
                [{"image_id": image_id, "resource": resource, "bytes": amount}],
            )
