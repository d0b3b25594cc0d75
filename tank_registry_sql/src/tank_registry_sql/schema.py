"""The registry's tables, as typed SQLAlchemy 2 declarative models.

This module is the readable schema; the Alembic migrations in ``migrations/versions``
are what creates it (a test checks that both agree). Columns mirror
:class:`tank.model.Image`; properties, tags and members are rows of their own so that
list queries can filter on them with indexes; locations are one JSON column, and so
are the tags again (read with the row).

Indexes follow the list queries: every sort key has a ``(key, id)`` index (``id`` is the
tie-breaker of every ordering, so one index serves both the sort and keyset
pagination). On PostgreSQL the nullable sort keys are indexed ``NULLS FIRST`` so that
NULLs order as on SQLite (smallest) and the index still serves the sort. Property
values are up to 64 KiB, more than a PostgreSQL btree entry can hold, so the
``(name, value)`` index covers a fixed-length prefix of the value
(:data:`VALUE_PREFIX`); filters compare the prefix first, then the whole value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Characters of a property value covered by the ``(name, value)`` index.
VALUE_PREFIX = 200
#: Name of Alembic's revision table (not ``alembic_version``, so a database shared with
#: another Alembic-managed application does not clash).
VERSION_TABLE = "tank_registry_version"


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timestamps stored as naive UTC on every database, returned timezone-aware.

    A plain ``DateTime`` would let PostgreSQL shift aware values by the session time
    zone and would drop the zone on SQLite; naive UTC behaves the same everywhere and
    sorts correctly as text on SQLite.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    pass


def value_prefix(column: Any) -> sa.ColumnElement[str]:
    """``substr(value, 1, VALUE_PREFIX)`` with literal arguments, so that both SQLite
    and PostgreSQL match it against the expression index."""
    return sa.func.substr(column, sa.literal_column("1"), sa.literal_column(str(VALUE_PREFIX)))


def property_value_is(value: str) -> list[sa.ColumnElement[bool]]:
    """``PropertyRow.value == value``, in a form the ``(name, value prefix)`` index serves.

    A value shorter than the indexed prefix is equal exactly when the prefix is. Longer
    ones need the full comparison too (SQLite then propagates ``value = ?`` into the
    prefix expression and uses the index for the name only; fine for rare long values).
    """
    prefix = value_prefix(PropertyRow.value)
    if len(value) < VALUE_PREFIX:
        return [prefix == value]
    return [prefix == value[:VALUE_PREFIX], PropertyRow.value == value]


class ImageRow(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    disk_format: Mapped[str | None] = mapped_column(sa.String(20))
    container_format: Mapped[str | None] = mapped_column(sa.String(20))
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    checksum: Mapped[str | None] = mapped_column(sa.String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(sa.String(64))
    os_hash_value: Mapped[str | None] = mapped_column(sa.String(256))
    status: Mapped[str] = mapped_column(sa.String(20))
    visibility: Mapped[str] = mapped_column(sa.String(20))
    os_hidden: Mapped[bool] = mapped_column(sa.Boolean)
    owner: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    min_ram: Mapped[int] = mapped_column(sa.BigInteger)
    min_disk: Mapped[int] = mapped_column(sa.BigInteger)
    protected: Mapped[bool] = mapped_column(sa.Boolean)
    #: JSON list of :class:`tank.model.Location` dicts: read with the image, never
    #: filtered on, and changed in the same row as the status.
    locations: Mapped[str] = mapped_column(sa.Text)
    #: JSON list of the tags, read with the image; ``image_tags`` holds them again, one
    #: row each, for filters (a second query per listing cost more than the JSON).
    tags: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deleted: Mapped[bool] = mapped_column(sa.Boolean)


def _partial(column: Any) -> dict[str, Any]:
    """Index only the rows where the boolean ``column`` is true.

    A full index on a boolean misleads SQLite, which has no statistics by default:
    it takes ``deleted = 0`` (nearly every row) for a selective condition, picks that
    index over the sort index and sorts the whole table. A partial index cannot be
    used for ``= 0``; it still finds the few deleted (or public) images at once.
    """
    return {"sqlite_where": column == sa.true(), "postgresql_where": column == sa.true()}


sa.Index("ix_images_deleted", ImageRow.deleted, **_partial(ImageRow.deleted))
sa.Index("ix_images_os_hidden", ImageRow.os_hidden, **_partial(ImageRow.os_hidden))
#: Images every tenant may see: found at once, however few among many private ones.
VISIBLE_TO_ALL = ("public", "community")
sa.Index(
    "ix_images_visibility",
    ImageRow.visibility,
    sqlite_where=ImageRow.visibility.in_(VISIBLE_TO_ALL),
    postgresql_where=ImageRow.visibility.in_(VISIBLE_TO_ALL),
)


#: Sort keys whose column may be NULL (indexed NULLS FIRST on PostgreSQL).
NULLABLE_SORT_KEYS = ("name", "disk_format", "container_format", "size")
NOT_NULL_SORT_KEYS = ("status", "created_at", "updated_at")


#: Indexes that exist on one kind of database only, and which one.
DIALECT_ONLY: dict[sa.Index, str] = {}


def _sort_indexes() -> list[sa.Index]:
    table = ImageRow.__table__
    out = []
    for key in NOT_NULL_SORT_KEYS:
        out.append(sa.Index(f"ix_images_{key}_id", table.c[key], table.c.id))
    for key in NULLABLE_SORT_KEYS:
        name = f"ix_images_{key}_id"
        sqlite = sa.Index(name, table.c[key], table.c.id)
        postgres = sa.Index(name, table.c[key].nulls_first(), table.c.id)
        DIALECT_ONLY.update({sqlite: "sqlite", postgres: "postgresql"})
        out += [sqlite.ddl_if(dialect="sqlite"), postgres.ddl_if(dialect="postgresql")]
    return out


SORT_INDEXES = _sort_indexes()


class PropertyRow(Base):
    __tablename__ = "image_properties"

    image_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


sa.Index(
    "ix_image_properties_name_value",
    PropertyRow.name,
    value_prefix(PropertyRow.value),
)


class TagRow(Base):
    __tablename__ = "image_tags"

    image_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)


class MemberRow(Base):
    __tablename__ = "image_members"

    image_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    member: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)
    can_share: Mapped[bool] = mapped_column(sa.Boolean)
    status: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LeaseRow(Base):
    """Named leases (``Registry.hold_lease``): which process holds one, until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(255))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ReservationRow(Base):
    """Bytes an image in flight holds against a size quota (:mod:`tank.quotas`); gone
    when the image's status changes."""

    __tablename__ = "quota_reservations"

    image_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    bytes: Mapped[int] = mapped_column(sa.BigInteger)
