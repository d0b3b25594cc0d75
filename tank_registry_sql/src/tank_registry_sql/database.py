"""Engines for SQLite and PostgreSQL, and the one place database errors are translated.

SQLite is set up for a threaded server: WAL (readers never wait for the writer),
``busy_timeout`` (writers queue instead of failing at once), foreign keys on, and write
transactions opened with ``BEGIN IMMEDIATE`` so that a read-then-write transaction takes
the write lock up front instead of failing with "database is locked" when it upgrades
(SQLite does not apply the busy timeout to that upgrade). Connections carrying the
execution option ``tank_write=True`` begin that way.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine

from tank import errors

log = logging.getLogger(__name__)

DEFAULT_FILE = "registry.sqlite"
_SECRET_QUERY_KEYS = ("password", "secret", "token")


def resolve_url(connection: str | None, data_dir: Path) -> URL:
    """The URL to connect to: ``connection``, or SQLite in ``data_dir``.

    ``postgresql://`` means psycopg 3 (the driver this package's extra installs).
    """
    if connection is None:
        return URL.create("sqlite", database=str(Path(data_dir).absolute() / DEFAULT_FILE))
    try:
        url = parse_url(connection)
    except ValueError as exc:
        raise errors.ConfigError(f"[registry] connection: {exc}") from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url


def parse_url(connection: str) -> URL:
    """``connection`` as a URL Tank can use; ValueError (never showing it) if not."""
    try:
        url = sa.make_url(connection)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is no number
        raise ValueError(
            "not an SQLAlchemy database URL (e.g. sqlite:////var/lib/tank/registry.sqlite "
            "or postgresql+psycopg://tank@db/tank)"
        ) from None
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError(
            "an in-memory SQLite database is private to one connection and cannot serve "
            "several threads; give a file path"
        )
    return url


def redacted(url: URL) -> str:
    """``url`` safe to log and to put in error messages (no password, no secrets)."""
    secret = {k: "***" for k in url.query if any(s in k.lower() for s in _SECRET_QUERY_KEYS)}
    if secret:
        url = url.update_query_dict(secret)
    return url.render_as_string(hide_password=True)


def create_engine(
    url: URL,
    *,
    pool_size: int,
    max_overflow: int,
    pool_timeout: float,
    connect_timeout: int,
    busy_timeout: float,
    sqlite_synchronous: str,
) -> Engine:
    """An engine with a connection pool suited to ``url``'s database."""
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": pool_timeout,
    }
    if backend == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout}
    else:
        kwargs["pool_pre_ping"] = True  # survive a database restart
        if backend == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": connect_timeout}
    try:
        engine = sa.create_engine(url, **kwargs)
    except (ImportError, sa_exc.NoSuchModuleError) as exc:
        hint = (
            "pip install 'tank-registry-sql[postgresql]'"
            if backend == "postgresql"
            else "install its driver"
        )
        raise errors.ConfigError(
            f"[registry] connection: no usable driver for {url.drivername} ({exc}); {hint}"
        ) from None
    except (TypeError, sa_exc.ArgumentError) as exc:
        raise errors.ConfigError(f"[registry] connection: {exc}") from None
    if backend == "sqlite":
        _tune_sqlite(engine, busy_timeout=busy_timeout, synchronous=sqlite_synchronous)
    return engine


def _tune_sqlite(engine: Engine, *, busy_timeout: float, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        try:
            mode = _use_wal(cursor, busy_timeout)
            if mode != "wal":
                log.warning("SQLite registry cannot use WAL (journal_mode is %s)", mode)
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get("tank_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _use_wal(cursor: Any, busy_timeout: float) -> str:
    """Switch the database to WAL (it stays so, in the file); the journal mode now.

    Switching needs an exclusive lock, and SQLite answers "database is locked" at once,
    without its busy handler, when another connection is switching or creating the same
    new database: two processes opening a fresh registry failed now and then. Retried
    here within ``busy_timeout``, as any other lock would be waited for."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            return str(cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


# --- errors -------------------------------------------------------------------------


@contextlib.contextmanager
def translated_errors(where: str, *, secret: str | None = None) -> Iterator[None]:
    """Turn SQLAlchemy/driver exceptions into :mod:`tank.errors`.

    ``where`` names the database (a redacted URL); ``secret`` (the password) is
    scrubbed from driver messages should one ever quote it.
    """
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        raise translate(exc, where, secret=secret) from None


def translate(exc: sa_exc.SQLAlchemyError, where: str, *, secret: str | None = None) -> Exception:
    reason = _reason(exc, secret)
    lowered = reason.lower()
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(exc, sa_exc.TimeoutError):
        return errors.StoreUnavailable(
            f"registry database {where}: no free connection in the pool ({reason})"
        )
    if isinstance(exc, sa_exc.IntegrityError):
        return errors.Conflict(f"registry database {where}: {reason}")
    if "no such table" in lowered or sqlstate == "42P01":
        return errors.StoreUnavailable(
            f"registry database {where} has no Tank schema: run `tank-manage db upgrade`"
        )
    if "database is locked" in lowered or "database is busy" in lowered:
        return errors.StoreUnavailable(
            f"registry database {where} is busy: another writer held it longer than busy_timeout"
        )
    if "database or disk is full" in lowered or sqlstate == "53100":
        return errors.RegistryFull(f"registry database {where}: {reason}")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    ):
        return errors.StoreUnavailable(f"registry database {where} is unavailable: {reason}")
    return errors.StoreError(f"registry database {where} failed: {reason}")


def _reason(exc: sa_exc.SQLAlchemyError, secret: str | None) -> str:
    """The driver's own first line, without the SQL statement SQLAlchemy appends."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    return text
