"""Alembic environment, run only through :mod:`tank_registry_sql.migrate`.

The caller hands over an open connection in ``config.attributes["connection"]``, so no
``alembic.ini`` and no URL are needed at runtime (``tank-manage db upgrade`` and the
automatic upgrade of an embedded SQLite database both come through here).
"""

from __future__ import annotations

from alembic import context

from tank_registry_sql.schema import VERSION_TABLE, Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "tank-registry-sql migrations run through tank_registry_sql.migrate "
        "(tank-manage db upgrade), not the alembic command line"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
)
with context.begin_transaction():
    context.run_migrations()
