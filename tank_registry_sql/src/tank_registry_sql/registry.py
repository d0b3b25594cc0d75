"""``SqlRegistry``: Tank's registry in SQLite (embedded default) or PostgreSQL.

Every method is one short transaction on a pooled connection. Read-modify-write
methods lock the image row first (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE``
on SQLite), so checks such as ``expected_status`` and the lifecycle hold under
concurrent requests. The schema is checked on first use: an embedded SQLite database
is migrated then and there; a server database must be migrated by the operator
(``tank-manage db upgrade``) unless ``auto_upgrade`` says otherwise.

Quota-checked writes (:mod:`tank.quotas`) also lock the image's project
(:mod:`tank_registry_sql.quota`) and count its usage before they write.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from tank import errors, quotas
from tank.config import not_negative, one_of, positive
from tank.model import (
    Context,
    Image,
    ListQuery,
    Member,
    MemberStatus,
    Status,
    parse_image_id,
    parse_member_status,
    utcnow,
)
from tank.quotas import QuotaCheck
from tank.registry import Registry
from tank_registry_sql import database, migrate, planning, queries
from tank_registry_sql import quota as quota_sql
from tank_registry_sql.schema import ImageRow, LeaseRow, MemberRow, PropertyRow, TagRow

MEMBER_COLUMNS = tuple(MemberRow.__table__.c)


def _database_url(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        database.parse_url(value)


class SqlRegistry(Registry):
    """Image metadata and memberships in an SQL database (SQLAlchemy 2)."""

    kind = "sql"

    @attrs.frozen(kw_only=True)
    class Config:
        #: SQLAlchemy URL; default ``sqlite:///<data_dir>/registry.sqlite``. PostgreSQL:
        #: ``postgresql+psycopg://user@host/db`` (password from the environment via
        #: ``{ env = "..." }`` in the config file, never in logs or messages).
        connection: str | None = attrs.field(default=None, validator=_database_url)
        #: Migrate the schema on first use. Default: yes for SQLite, no otherwise
        #: (servers are migrated by ``tank-manage db upgrade``).
        auto_upgrade: bool | None = None
        #: Connections kept open.
        pool_size: int = attrs.field(default=5, validator=positive)
        #: Extra connections allowed under load, closed when returned.
        max_overflow: int = attrs.field(default=10, validator=not_negative)
        #: Seconds a request waits for a free connection before StoreUnavailable.
        pool_timeout: float = attrs.field(default=30.0, validator=positive)
        #: Seconds to wait for a database server to accept a connection.
        connect_timeout: int = attrs.field(default=10, validator=positive)
        #: SQLite: seconds a writer waits for another writer before StoreUnavailable.
        busy_timeout: float = attrs.field(default=30.0, validator=positive)
        #: SQLite ``PRAGMA synchronous``: ``full`` survives power loss; ``normal`` (in
        #: WAL mode) may lose the last commits on power loss, never on a crash.
        sqlite_synchronous: str = attrs.field(default="full", validator=one_of("full", "normal"))

    def __init__(self, config: Config, *, data_dir: Path) -> None:
        super().__init__(config, data_dir=Path(data_dir))
        self.url = database.resolve_url(config.connection, data_dir)
        #: The database, safe to show (no password).
        self.where = database.redacted(self.url)
        self.embedded = config.connection is None
        self._sqlite = self.url.get_backend_name() == "sqlite"
        self._auto_upgrade = self._sqlite if config.auto_upgrade is None else config.auto_upgrade
        self._secret = self.url.password if isinstance(self.url.password, str) else None
        self._engine = database.create_engine(
            self.url,
            pool_size=config.pool_size,
            max_overflow=config.max_overflow,
            pool_timeout=config.pool_timeout,
            connect_timeout=config.connect_timeout,
            busy_timeout=config.busy_timeout,
            sqlite_synchronous=config.sqlite_synchronous,
        )
        self._writer_engine = self._engine.execution_options(tank_write=True)
        self._dialect = self._engine.dialect.name
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SqlRegistry {self.where}>"

    # --- schema ----------------------------------------------------------------------

    def upgrade(self) -> str:
        """Create or migrate the schema to the newest revision (idempotent)."""
        self._make_data_dir()
        with self._errors(), self._writer_engine.begin() as connection:
            if self._dialect == "postgresql":  # two upgrades at once: the second waits
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(7354002)"))
            before = migrate.current(connection)
            migrate.upgrade(connection)
        self._schema_ready = True
        head = migrate.HEAD
        if before is None:
            return f"created the schema (revision {head})"
        if before == head:
            return f"nothing to do: the schema is at the newest revision ({head})"
        return f"migrated the schema from revision {before} to {head}"

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            self._make_data_dir()
            with self._errors(), self._engine.connect() as connection:
                current = migrate.current(connection)
            head = migrate.HEAD
            if current != head:
                if not self._auto_upgrade or current not in migrate.known_revisions() | {None}:
                    raise self._schema_error(current, head)
                self.upgrade()
            self._schema_ready = True

    def _schema_error(self, current: str | None, head: str) -> errors.TankError:
        if current is None:
            return errors.StoreUnavailable(
                f"registry database {self.where} has no Tank schema: run `tank-manage db upgrade`"
            )
        if current not in migrate.known_revisions():
            return errors.StoreUnavailable(
                f"registry database {self.where} is at schema revision {current}, newer "
                f"than this tank-registry-sql knows (up to {head}): upgrade tank-registry-sql"
            )
        return errors.StoreUnavailable(
            f"registry database {self.where} is at schema revision {current}, this "
            f"tank-registry-sql needs {head}: run `tank-manage db upgrade`"
        )

    def _make_data_dir(self) -> None:
        if self.embedded:
            try:
                self.data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise errors.StoreUnavailable(
                    f"cannot create the data directory {self.data_dir}: {exc.strerror}"
                ) from None

    # --- transactions ------------------------------------------------------------------

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return database.translated_errors(self.where, secret=self._secret)

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        """One connection, one transaction, per operation: committed if the block succeeds.

        Core statements on a connection rather than an ORM session: rows become attrs
        values anyway, and a session nearly doubled the CPU cost of a create.
        """
        self._ensure_schema()
        with self._errors(), (self._writer_engine if write else self._engine).begin() as conn:
            yield conn

    def close(self) -> None:
        self._engine.dispose()

    # --- images --------------------------------------------------------------------

    def create(self, image: Image, *, quota: QuotaCheck | None = None) -> Image:
        with self._transaction(write=True) as conn:
            before = self._usage_before(conn, image.owner, quota)
            try:
                conn.execute(sa.insert(ImageRow), [queries.image_values(image)])
            except sa_exc.IntegrityError:
                raise errors.Duplicate(f"image {image.id} already exists") from None
            if image.properties:
                conn.execute(
                    sa.insert(PropertyRow),
                    [
                        {"image_id": image.id, "name": name, "value": value}
                        for name, value in image.properties.items()
                    ],
                )
            if image.tags:
                conn.execute(
                    sa.insert(TagRow), [{"image_id": image.id, "tag": tag} for tag in image.tags]
                )
            self._check_quota(conn, None, {}, image, quota, before)
        return image

    def get(self, image_id: str, *, context: Context) -> Image:
        image_id = _known_id(image_id)
        with self._transaction(write=False) as conn:
            return self._load(conn, image_id, context)

    def update(
        self,
        image_id: str,
        changes: Mapping[str, Any],
        *,
        context: Context,
        purge_props: bool = False,
        expected_status: Status | None = None,
        quota: QuotaCheck | None = None,
    ) -> Image:
        image_id = _known_id(image_id)
        if "id" in changes and changes["id"] != image_id:
            raise errors.ValidationError("id", "an image's id cannot be changed")
        with self._transaction(write=True) as conn:
            current = self._load(conn, image_id, context, lock=True)
            _check_modify(current, context)
            if expected_status is not None and current.status != expected_status:
                raise errors.Conflict(
                    f"image {image_id} is {current.status}, not {Status(expected_status)}"
                )
            new = current.update(changes, purge_props=purge_props)
            before = self._usage_before(conn, new.owner, quota)
            held = quota_sql.reservations(conn, image_id) if before is not None else {}
            self._store_changes(conn, current, new)
            self._check_quota(conn, current, held, new, quota, before)
        return new

    def delete(self, image_id: str, *, context: Context) -> Image:
        image_id = _known_id(image_id)
        with self._transaction(write=True) as conn:
            current = self._load(conn, image_id, context, lock=True)
            _check_modify(current, context)
            if current.deleted:
                raise errors.NotFound(f"image {image_id} is already deleted")
            new = current.update(
                {"status": Status.DELETED, "deleted": True, "deleted_at": utcnow()}
            )
            self._store_changes(conn, current, new)
            conn.execute(sa.delete(MemberRow).where(MemberRow.image_id == image_id))
        return new

    def list(self, query: ListQuery, *, context: Context) -> builtins.list[Image]:
        with self._transaction(write=False) as conn:
            marker = None
            if query.marker is not None:
                marker = conn.execute(queries.select_visible(query.marker, context)).first()
                if marker is None:
                    raise errors.NotFound(f"marker image {query.marker} not found")
            plan = None
            if self._dialect == "sqlite":
                plan = planning.plan(conn, query.filters, query.limit)
            stmt = queries.list_statement(query, context, marker, dialect=self._dialect, plan=plan)
            return queries.load_images(conn, conn.execute(stmt).all())

    def _load(
        self, conn: sa.Connection, image_id: str, context: Context, lock: bool = False
    ) -> Image:
        stmt = queries.select_visible(image_id, context)
        if lock:
            stmt = stmt.with_for_update(of=ImageRow)
        row = conn.execute(stmt).first()
        if row is None:
            raise errors.NotFound(f"image {image_id} not found")
        return queries.load_images(conn, [row])[0]

    # --- quotas --------------------------------------------------------------------

    def usage(self, owner: str) -> dict[str, int]:
        with self._transaction(write=False) as conn:
            return quota_sql.usage(conn, owner)

    def reserve(
        self,
        image_id: str,
        resource: str,
        wanted: int,
        *,
        minimum: int | None = None,
        limit: int | None = None,
    ) -> int:
        image_id = _known_id(image_id)
        if quotas.check_resource(resource) not in quotas.SIZES:
            raise errors.ValidationError(
                "resource", f"{resource} is not a size: nothing to reserve"
            )
        minimum = wanted if minimum is None else min(minimum, wanted)
        if minimum < 0:
            raise errors.ValidationError("wanted", "bytes to reserve must be >= 0")
        with self._transaction(write=True) as conn:
            image = self._load(conn, image_id, Context.admin(), lock=True)
            if image.deleted:
                raise errors.NotFound(f"image {image_id} not found")
            current = quota_sql.reservations(conn, image_id).get(resource, 0)
            if wanted > current and limit is not None:
                quota_sql.lock_owner(conn, image.owner)
                in_use = quota_sql.usage(conn, image.owner, [resource])[resource]
                actual = quota_sql.contribution(image, {})[resource]
                others = in_use - max(actual, current)
                fits = limit - others
                if fits < minimum and others + max(actual, minimum) > in_use:
                    raise quotas.exceeded(
                        resource, image.owner, limit, in_use, minimum - max(actual, current)
                    )
                if fits < wanted:  # half the room left: streams racing for it all get some
                    wanted = max(minimum, (minimum + fits) // 2)
            quota_sql.set_reserved(conn, image_id, {resource: wanted})
        return wanted

    def _usage_before(
        self, conn: sa.Connection, owner: str | None, quota: QuotaCheck | None
    ) -> dict[str, int] | None:
        """With a quota to check: lock ``owner`` and count its usage before the write."""
        if quota is None or not quota.limits:
            return None
        quota_sql.lock_owner(conn, owner)
        return quota_sql.usage(conn, owner, quota.limits)

    def _check_quota(
        self,
        conn: sa.Connection,
        old: Image | None,
        held: Mapping[str, int],
        image: Image,
        quota: QuotaCheck | None,
        before: Mapping[str, int] | None,
    ) -> None:
        """Set the reservations ``quota`` asks for, then refuse (raising: the transaction
        rolls back) if a limited usage grew above its limit.

        Only ``image`` changed since ``before`` was counted (its owner is locked), so
        the usage after is ``before`` plus the change of what it counts for (``old``
        with the reservations it ``held``, or None: just created)."""
        if quota is None:
            return
        if quota.reserve:
            quota_sql.set_reserved(conn, image.id, quota.reserve)
        if before is None:
            return
        if old is not None and old.owner != image.owner:
            after = quota_sql.usage(conn, image.owner, quota.limits)  # moved: count anew
        else:
            kept = {} if old is None or old.status != image.status else dict(held)
            reserved = {k: v for k, v in {**kept, **quota.reserve}.items() if v > 0}
            new = quota_sql.contribution(image, reserved)
            was = quota_sql.contribution(old, held)
            after = {name: before[name] + new[name] - was[name] for name in before}
        quotas.check(quota.limits, before, after, image.owner)

    def _store_changes(self, conn: sa.Connection, old: Image, new: Image) -> None:
        if old.status != new.status:
            quota_sql.clear(conn, new.id)  # an upload or import ended (or began): all anew
        old_values = queries.image_values(old)
        changed = {k: v for k, v in queries.image_values(new).items() if old_values[k] != v}
        if changed:
            conn.execute(sa.update(ImageRow).where(ImageRow.id == new.id).values(changed))
        before, after = old.properties, new.properties
        stale = [name for name, value in before.items() if after.get(name) != value]
        if stale:
            conn.execute(
                sa.delete(PropertyRow).where(
                    PropertyRow.image_id == new.id, PropertyRow.name.in_(stale)
                )
            )
        rows = [
            {"image_id": new.id, "name": name, "value": value}
            for name, value in after.items()
            if before.get(name) != value
        ]
        if rows:
            conn.execute(sa.insert(PropertyRow), rows)
        if old.tags != new.tags:
            gone = set(old.tags) - set(new.tags)
            if gone:
                conn.execute(
                    sa.delete(TagRow).where(TagRow.image_id == new.id, TagRow.tag.in_(gone))
                )
            added = set(new.tags) - set(old.tags)
            if added:
                conn.execute(
                    sa.insert(TagRow), [{"image_id": new.id, "tag": tag} for tag in sorted(added)]
                )

    # --- leases --------------------------------------------------------------------

    def hold_lease(self, name: str, holder: str, seconds: float) -> bool:
        _check_lease_args(name, holder)
        now = utcnow()
        with self._transaction(write=True) as conn:
            # the row exists from then on; FOR UPDATE makes the check-and-set atomic
            insert = _dialect_insert(self._dialect)(LeaseRow)
            conn.execute(
                insert.values(name=name, holder="", expires_at=now).on_conflict_do_nothing(
                    index_elements=["name"]
                )
            )
            row = conn.execute(
                sa.select(LeaseRow.holder, LeaseRow.expires_at)
                .where(LeaseRow.name == name)
                .with_for_update()
            ).one()
            if row.holder not in ("", holder) and row.expires_at > now:
                return False
            conn.execute(
                sa.update(LeaseRow)
                .where(LeaseRow.name == name)
                .values(holder=holder, expires_at=now + dt.timedelta(seconds=seconds))
            )
            return True

    def release_lease(self, name: str, holder: str) -> None:
        _check_lease_args(name, holder)
        with self._transaction(write=True) as conn:
            conn.execute(
                sa.update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.holder == holder)
                .values(holder="", expires_at=utcnow())
            )

    # --- members -------------------------------------------------------------------

    def list_members(self, image_id: str, *, context: Context) -> builtins.list[Member]:
        """All members for the owner and admins; a member sees only its own entry."""
        image_id = _known_id(image_id)
        with self._transaction(write=False) as conn:
            owner = self._shared_image(conn, image_id, context)
            stmt = (
                sa.select(*MEMBER_COLUMNS)
                .where(MemberRow.image_id == image_id)
                .order_by(MemberRow.member)
            )
            if not _owns(owner, context):
                stmt = stmt.where(
                    MemberRow.member == context.tenant if context.tenant else sa.false()
                )
            return [_member(row) for row in conn.execute(stmt)]

    def add_member(
        self, image_id: str, member: str, *, can_share: bool = False, context: Context
    ) -> Member:
        image_id = _known_id(image_id)
        wanted = Member(image_id=image_id, member=member, can_share=can_share)
        with self._transaction(write=True) as conn:
            owner = self._shared_image(conn, image_id, context, lock=True)
            self._check_share(conn, image_id, owner, context, adding=True)
            existing = self._members(conn, image_id).get(wanted.member)
            return self._put_member(conn, wanted, existing)

    def remove_member(self, image_id: str, member: str, *, context: Context) -> None:
        image_id = _known_id(image_id)
        with self._transaction(write=True) as conn:
            owner = self._shared_image(conn, image_id, context, lock=True)
            self._check_share(conn, image_id, owner, context, adding=False)
            result = conn.execute(
                sa.delete(MemberRow).where(
                    MemberRow.image_id == image_id, MemberRow.member == member
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.NotFound(f"{member[:255]!r} is not a member of image {image_id}")

    def replace_members(
        self, image_id: str, members: Iterable[tuple[str, bool]], *, context: Context
    ) -> builtins.list[Member]:
        image_id = _known_id(image_id)
        wanted = {
            m.member: m
            for m in (Member(image_id=image_id, member=n, can_share=c) for n, c in members)
        }
        with self._transaction(write=True) as conn:
            owner = self._shared_image(conn, image_id, context, lock=True)
            self._check_share(conn, image_id, owner, context, adding=False)
            existing = self._members(conn, image_id)
            gone = existing.keys() - wanted.keys()
            if gone:
                conn.execute(
                    sa.delete(MemberRow).where(
                        MemberRow.image_id == image_id, MemberRow.member.in_(gone)
                    )
                )
            return [
                self._put_member(conn, wanted[name], existing.get(name)) for name in sorted(wanted)
            ]

    def set_member_status(
        self, image_id: str, member: str, status: MemberStatus | str, *, context: Context
    ) -> Member:
        """The member's answer (v2): only the member itself or an admin gives it."""
        image_id = _known_id(image_id)
        status = parse_member_status(status)
        with self._transaction(write=True) as conn:
            self._shared_image(conn, image_id, context, lock=True)
            existing = self._members(conn, image_id).get(member)
            if existing is None:
                raise errors.NotFound(f"{member[:255]!r} is not a member of image {image_id}")
            if not context.is_admin and context.tenant != member:
                raise errors.Forbidden(
                    f"only the member {member[:255]!r} itself may accept or reject image {image_id}"
                )
            if existing.status == status:
                return existing
            updated = attrs.evolve(existing, status=status, updated_at=utcnow())
            conn.execute(
                sa.update(MemberRow)
                .where(MemberRow.image_id == image_id, MemberRow.member == member)
                .values(status=status.value, updated_at=updated.updated_at)
            )
            return updated

    def shared_with(self, member: str, *, context: Context) -> builtins.list[Member]:
        """Admins and ``member`` itself see all its memberships; an owner sees those
        on its own images."""
        stmt = (
            sa.select(*MEMBER_COLUMNS)
            .join(ImageRow, ImageRow.id == MemberRow.image_id)
            .where(MemberRow.member == member, ImageRow.deleted == sa.false())
            .order_by(MemberRow.image_id)
        )
        if not context.is_admin:
            if context.tenant is None:
                return []
            if context.tenant != member:
                stmt = stmt.where(ImageRow.owner == context.tenant)
        with self._transaction(write=False) as conn:
            return [_member(row) for row in conn.execute(stmt)]

    def _shared_image(
        self, conn: sa.Connection, image_id: str, context: Context, lock: bool = False
    ) -> str | None:
        """The owner of a visible, not deleted image (NotFound otherwise)."""
        stmt = sa.select(ImageRow.owner).where(
            ImageRow.id == image_id, queries.visible(context, with_deleted=False)
        )
        if lock:
            stmt = stmt.with_for_update(of=ImageRow)
        row = conn.execute(stmt).first()
        if row is None:
            raise errors.NotFound(f"image {image_id} not found")
        return row.owner

    def _check_share(
        self,
        conn: sa.Connection,
        image_id: str,
        owner: str | None,
        context: Context,
        *,
        adding: bool,
    ) -> None:
        """Owner and admins change members; a member with ``can_share`` may add some."""
        if _owns(owner, context):
            return
        if adding and context.tenant is not None:
            can_share = conn.scalar(
                sa.select(MemberRow.can_share).where(
                    MemberRow.image_id == image_id, MemberRow.member == context.tenant
                )
            )
            if can_share:
                return
        raise errors.Forbidden(f"only the owner of image {image_id} may change its members")

    @staticmethod
    def _members(conn: sa.Connection, image_id: str) -> dict[str, Member]:
        stmt = sa.select(*MEMBER_COLUMNS).where(MemberRow.image_id == image_id)
        return {row.member: _member(row) for row in conn.execute(stmt)}

    @staticmethod
    def _put_member(conn: sa.Connection, wanted: Member, existing: Member | None) -> Member:
        """Insert ``wanted``, or update ``existing`` to it (keeping ``created_at``)."""
        if existing is None:
            conn.execute(sa.insert(MemberRow), [_member_values(wanted)])
            return wanted
        if existing.can_share == wanted.can_share:
            return existing
        updated = attrs.evolve(existing, can_share=wanted.can_share, updated_at=utcnow())
        conn.execute(
            sa.update(MemberRow)
            .where(MemberRow.image_id == wanted.image_id, MemberRow.member == wanted.member)
            .values(can_share=updated.can_share, updated_at=updated.updated_at)
        )
        return updated


def _member(row: sa.Row[Any]) -> Member:
    return Member(**row._mapping)


def _member_values(member: Member) -> dict[str, Any]:
    values = attrs.asdict(member)
    values["status"] = member.status.value
    return values


def _known_id(image_id: str) -> str:
    """The canonical form of ``image_id``; NotFound if it cannot be an image id."""
    try:
        return parse_image_id(image_id)
    except errors.ValidationError:
        raise errors.NotFound(f"image {str(image_id)[:80]!r} not found") from None


def _owns(owner: str | None, context: Context) -> bool:
    return context.is_admin or (context.tenant is not None and owner == context.tenant)


def _check_modify(image: Image, context: Context) -> None:
    if not context.can_modify(image):
        raise errors.Forbidden(f"image {image.id} belongs to another tenant")


def _dialect_insert(dialect: str) -> Any:
    """The INSERT with ``on_conflict_do_nothing`` of SQLite or PostgreSQL."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def _check_lease_args(name: str, holder: str) -> None:
    for key, value in (("name", name), ("holder", holder)):
        if not isinstance(value, str) or not 0 < len(value) <= 255:
            raise errors.ValidationError(key, "a lease needs a text of 1 to 255 characters")
