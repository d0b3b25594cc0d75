"""A PostgreSQL schema of a test's own on the test server (``TANK_TEST_PG_URL``), for
tank-api processes that share a registry there.

Needs SQLAlchemy and a PostgreSQL driver (``tank-registry-sql[postgresql]``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from tank.testing.api_server import find_script
from tank.testing.environment import require_env


@contextlib.contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """A new, empty schema named ``{prefix}_<random>``: yields the URL whose connections
    use it (for ``[registry] connection``); drops it, with all in it, at the end.
    Skips the test when ``TANK_TEST_PG_URL`` is not set."""
    import sqlalchemy as sa

    url = require_env("TANK_TEST_PG_URL")["TANK_TEST_PG_URL"]
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def db_upgrade(config: Path) -> None:
    """``tank-manage db upgrade --config config`` in a process of its own, as an operator
    runs it before starting tank-api (no ``TANK_*`` variables of the test run)."""
    manage = find_script("tank-manage")
    assert manage is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
    subprocess.run(
        [manage, "db", "upgrade", "--config", str(config)],
        check=True,
        env=env,
        capture_output=True,
    )
