"""Registries for the tests: SQLite in ``tmp_path``, and PostgreSQL in throwaway schemas.

PostgreSQL tests need ``TANK_TEST_PG_URL`` (``tests/servers/postgres.sh env`` prints
it) and skip without it. Each schema is private to this test run (a random name, used
through ``search_path``) and dropped at the end, so parallel runs never meet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tank.testing import require_env
from tank_registry_sql.registry import SqlRegistry


def make_registry(data_dir: Path, **config: object) -> SqlRegistry:
    return SqlRegistry(SqlRegistry.Config(**config), data_dir=data_dir)  # type: ignore[arg-type]


@pytest.fixture
def sqlite_registry(tmp_path: Path) -> Iterator[SqlRegistry]:
    registry = make_registry(tmp_path / "data")
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    """An engine on the test database, for creating and dropping schemas."""
    url = require_env("TANK_TEST_PG_URL")["TANK_TEST_PG_URL"]
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    yield engine
    engine.dispose()


class Schemas:
    """Creates empty schemas; drops them all at :meth:`drop_all`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.names: list[str] = []

    def new(self) -> str:
        """A URL whose connections use a new, empty schema."""
        name = f"tank_test_{uuid.uuid4().hex[:16]}"
        with self.engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        self.names.append(name)
        url = self.engine.url.update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.engine.begin() as conn:
            for name in self.names:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="session")
def pg_schemas(pg_admin: sa.Engine) -> Iterator[Schemas]:
    schemas = Schemas(pg_admin)
    yield schemas
    schemas.drop_all()


@pytest.fixture(scope="session")
def pg_migrated_url(pg_schemas: Schemas, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One schema migrated once for the whole run; tests empty it instead of re-migrating."""
    url = pg_schemas.new()
    registry = make_registry(tmp_path_factory.mktemp("pg"), connection=url)
    registry.upgrade()
    registry.close()
    return url


@pytest.fixture
def pg_registry(pg_migrated_url: str, tmp_path: Path) -> Iterator[SqlRegistry]:
    engine = sa.create_engine(pg_migrated_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "TRUNCATE images, image_properties, image_tags, image_members, quota_reservations"
            )
        )
    engine.dispose()
    registry = make_registry(tmp_path, connection=pg_migrated_url)
    yield registry
    registry.close()
