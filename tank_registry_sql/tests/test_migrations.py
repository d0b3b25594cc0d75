"""Schema migrations: applied from the package, idempotent, automatic only for SQLite."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tank import errors
from tank.model import Context, Image, ListQuery
from tank_registry_sql import migrate
from tank_registry_sql.registry import SqlRegistry
from tank_registry_sql.schema import DIALECT_ONLY, VERSION_TABLE, Base

from .conftest import Schemas, make_registry

ADMIN = Context.admin()
TABLES = {"images", "image_properties", "image_members", VERSION_TABLE}


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return migrate.current(conn)
    finally:
        engine.dispose()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def test_migrations_ship_in_the_package() -> None:
    assert migrate.head() == migrate.HEAD == "0001"  # HEAD: the scripts' head, kept in code
    assert migrate.known_revisions() == {"0001"}


def test_a_registry_at_head_is_used_without_importing_alembic(tmp_path: Path) -> None:
    # Alembic costs ~8 MiB per process: only migrating may import it
    data_dir = tmp_path / "data"
    registry = make_registry(data_dir)
    registry.upgrade()
    registry.close()
    code = (
        "import sys\n"
        "from tank.model import Image\n"
        "from tank_registry_sql import SqlRegistry\n"
        f"registry = SqlRegistry(SqlRegistry.Config(), data_dir={str(data_dir)!r})\n"
        "registry.create(Image(name='x'))\n"
        "registry.close()\n"
        "assert 'alembic' not in sys.modules, 'alembic was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_embedded_sqlite_is_created_and_migrated_on_first_use(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet"
    registry = make_registry(data_dir)
    assert not data_dir.exists()  # nothing happens before first use
    image = registry.create(Image(name="first"))
    assert registry.get(image.id, context=ADMIN) == image
    registry.close()
    url = sqlite_url(data_dir / "registry.sqlite")
    assert tables(url) == TABLES
    assert revision(url) == migrate.head()


def test_first_use_from_many_threads_migrates_once(tmp_path: Path) -> None:
    registries = [make_registry(tmp_path) for _ in range(2)]  # like two worker processes
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def first_use(i: int) -> None:
        barrier.wait()
        try:
            results.append(registries[i % 2].list(ListQuery(), context=ADMIN))
        except Exception as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[]] * 8
    for registry in registries:
        registry.close()


def test_upgrade_from_empty_then_again(tmp_path: Path) -> None:
    path = tmp_path / "explicit.sqlite"
    registry = make_registry(tmp_path, connection=sqlite_url(path), auto_upgrade=False)
    with pytest.raises(errors.StoreUnavailable, match="run `tank-manage db upgrade`"):
        registry.list(ListQuery(), context=ADMIN)
    registry.upgrade()
    image = registry.create(Image(name="kept"))
    registry.upgrade()  # idempotent, and keeps data
    assert registry.get(image.id, context=ADMIN) == image
    assert revision(sqlite_url(path)) == migrate.head()
    registry.close()


def test_auto_upgrade_can_be_turned_off_for_sqlite(tmp_path: Path) -> None:
    registry = make_registry(tmp_path, auto_upgrade=False)
    with pytest.raises(errors.StoreUnavailable, match="no Tank schema"):
        registry.create(Image())
    registry.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    registry = make_registry(tmp_path)
    registry.upgrade()
    registry.close()
    engine = sa.create_engine(sqlite_url(tmp_path / "registry.sqlite"))
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    registry = make_registry(tmp_path)
    with pytest.raises(errors.StoreUnavailable, match="newer than this tank-registry-sql"):
        registry.list(ListQuery(), context=ADMIN)
    registry.close()


def test_postgres_without_schema_says_to_upgrade(pg_schemas: Schemas, tmp_path: Path) -> None:
    url = pg_schemas.new()
    registry = make_registry(tmp_path, connection=url)
    with pytest.raises(errors.StoreUnavailable, match="run `tank-manage db upgrade`") as info:
        registry.create(Image())
    assert "has no Tank schema" in str(info.value)
    assert tables(url) == set()  # no automatic migration of a server database
    registry.upgrade()
    registry.upgrade()
    assert tables(url) == TABLES
    image = registry.create(Image(name="after upgrade"))
    assert registry.get(image.id, context=ADMIN) == image
    registry.close()


def test_postgres_auto_upgrade_when_asked(pg_schemas: Schemas, tmp_path: Path) -> None:
    url = pg_schemas.new()
    registry = make_registry(tmp_path, connection=url, auto_upgrade=True)
    assert registry.list(ListQuery(), context=ADMIN) == []
    assert revision(url) == migrate.head()
    registry.close()


def _schema_diff(url: str) -> list[Any]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    dialect = engine.dialect.name

    def include(obj: Any, name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
        return DIALECT_ONLY.get(obj, dialect) == dialect

    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "version_table": VERSION_TABLE,
                    "compare_type": True,
                    "include_object": include,
                },
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    registry = make_registry(tmp_path)
    registry.upgrade()
    registry.close()
    assert _schema_diff(sqlite_url(tmp_path / "registry.sqlite")) == []


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrations_match_the_models_on_postgres(pg_migrated_url: str) -> None:
    assert _schema_diff(pg_migrated_url) == []


def test_upgrade_is_what_tank_manage_calls(tmp_path: Path) -> None:
    """``tank-manage db upgrade`` builds the registry from config and calls upgrade()."""
    from tank.config import load
    from tank.plugins import make_plugin_manager
    from tank.service import open_registry

    registry = open_registry(load(data_dir=tmp_path, environ={}), make_plugin_manager(environ={}))
    assert isinstance(registry, SqlRegistry)
    registry.upgrade()
    registry.close()
    assert revision(sqlite_url(tmp_path / "registry.sqlite")) == migrate.head()
