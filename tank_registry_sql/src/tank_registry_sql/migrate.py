"""Alembic, driven from Python: the migrations ship inside this package.

No ``alembic.ini`` is involved; :func:`upgrade` passes an open connection to
``migrations/env.py``. Alembic (with Mako) costs about 8 MiB of every process that
imports it, so it is imported only to migrate or to list the scripts: a registry whose
database is already at :data:`HEAD` is checked with one plain SELECT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tank_registry_sql.schema import VERSION_TABLE

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SCRIPT_LOCATION = "tank_registry_sql:migrations"
#: The newest revision of ``migrations/versions`` (a test checks it against the scripts).
HEAD = "0004"


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this version of tank-registry-sql knows."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert revision is not None
    return revision


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def current(connection: Connection) -> str | None:
    """The revision the database is at; None for a database without Tank's tables.

    Read as Alembic's ``MigrationContext.get_current_revision`` reads it, without
    importing Alembic. Tank's history is linear: more than one row is an error."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    if len(rows) > 1:
        found = ", ".join(sorted(str(row[0]) for row in rows))
        raise ValueError(f"{VERSION_TABLE} lists several revisions ({found}); expected one")
    return str(rows[0][0]) if rows else None


def upgrade(connection: Connection) -> None:
    """Apply every migration the database lacks (a no-op when it is at :func:`head`)."""
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")
