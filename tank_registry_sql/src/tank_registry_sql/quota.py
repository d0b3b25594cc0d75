"""Quotas in SQL: one project's usage, its lock, and the reservations of images in flight.

A quota-checked write locks the project first, so that no other quota-checked write of
that project (in any process) runs between its count and its write: on PostgreSQL a
transaction-scoped advisory lock on the project's name, on SQLite the database's single
writer (write transactions begin ``IMMEDIATE``). Callers lock the image row, if any,
before the project, always in that order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from tank import quotas
from tank.model import Image, Status
from tank_registry_sql.schema import ImageRow, PropertyRow, ReservationRow

#: First key of the advisory locks of projects (the second is a hash of the name).
LOCK_CLASS = 7354003
_GONE = [s.value for s in quotas.GONE]
_IN_FLIGHT = [s.value for s in quotas.IN_FLIGHT]
_STATUS = {s.value: s for s in Status}


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


def _copying() -> sa.ColumnElement[bool]:
    return ImageRow.id.in_(
        sa.select(PropertyRow.image_id).where(
            PropertyRow.name == quotas.COPYING_PROPERTY, PropertyRow.value != ""
        )
    )


def usage(
    conn: sa.Connection, owner: str | None, resources: Iterable[str] = quotas.RESOURCES
) -> dict[str, int]:
    """The usage of ``owner`` of ``resources`` (others are 0), as
    :func:`tank.quotas.image_usage` counts it. Counts are counted in SQL; sizes need
    each image's locations (JSON), so the images that have a size or a reservation are
    read and summed here, as Glance sums them."""
    wanted = set(resources)
    out = dict.fromkeys(quotas.RESOURCES, 0)
    live = _live(owner)
    if quotas.COUNT_TOTAL in wanted:
        out[quotas.COUNT_TOTAL] = conn.scalar(sa.select(sa.func.count()).where(*live)) or 0
    if quotas.COUNT_UPLOADING in wanted:
        out[quotas.COUNT_UPLOADING] = (
            conn.scalar(
                sa.select(sa.func.count()).where(
                    *live, sa.or_(ImageRow.status.in_(_IN_FLIGHT), _copying())
                )
            )
            or 0
        )
    if wanted & quotas.SIZES:
        reserved: dict[str, dict[str, int]] = {}
        for image_id, resource, amount in conn.execute(
            sa.select(ReservationRow.image_id, ReservationRow.resource, ReservationRow.bytes)
            .join(ImageRow, ImageRow.id == ReservationRow.image_id)
            .where(*live)
        ):
            reserved.setdefault(image_id, {})[resource] = amount
        copying = _copying().label("copying")
        rows = conn.execute(
            sa.select(
                ImageRow.id, ImageRow.status, ImageRow.size, ImageRow.locations, copying
            ).where(
                *live,
                sa.or_(
                    ImageRow.size > 0, ImageRow.id.in_(list(reserved)) if reserved else sa.false()
                ),
            )
        )
        for row in rows:
            counted = quotas.image_usage(
                status=_STATUS[row.status],
                size=row.size,
                locations=len(json.loads(row.locations)) if row.size else 0,
                copying=bool(row.copying),
                reserved=reserved.get(row.id, {}),
            )
            for resource in quotas.SIZES & wanted:
                out[resource] += counted[resource]
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
