"""Alembic, driven from Python: the migrations ship inside this package.

No ``alembic.ini`` is involved; :func:`upgrade` passes an open connection to
``migrations/env.py``. Alembic is imported lazily: only the first use of a registry
and ``tank-manage db upgrade`` need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tank_registry_sql.schema import VERSION_TABLE

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SCRIPT_LOCATION = "tank_registry_sql:migrations"


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
    """The revision the database is at; None for a database without Tank's tables."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: Connection) -> None:
    """Apply every migration the database lacks (a no-op when it is at :func:`head`)."""
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")
