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
TABLES = {
    "images",
    "image_properties",
    "image_members",
    "image_tags",
    "leases",
    "quota_reservations",
    VERSION_TABLE,
}


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
    assert migrate.head() == migrate.HEAD == "0004"  # HEAD: the scripts' head, kept in code
    assert migrate.known_revisions() == {"0001", "0002", "0003", "0004"}


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
    assert registry.upgrade() == f"created the schema (revision {migrate.head()})"
    image = registry.create(Image(name="kept"))
    said = registry.upgrade()  # idempotent, and keeps data
    assert said == f"nothing to do: the schema is at the newest revision ({migrate.head()})"
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


def _upgrade_from_0001(url: str, rows: list[dict[str, Any]]) -> None:
    """A database at revision 0001 holding ``rows`` (v1-era images), then migrated."""
    from alembic import command

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate._alembic_config(conn), "0001")
            conn.execute(
                sa.text(
                    "INSERT INTO images (id, name, status, is_public, min_ram, min_disk, "
                    "protected, deleted, created_at, updated_at, sha256, store, location) "
                    "VALUES (:id, :name, 'active', :is_public, 0, 0, false, false, "
                    "'2024-01-01 00:00:00', '2024-01-01 00:00:00', :sha256, :store, :location)"
                ),
                rows,
            )
            conn.execute(
                sa.text(
                    "INSERT INTO image_members (image_id, member, can_share, created_at, "
                    "updated_at) VALUES (:id, 't2', true, '2024-01-01 00:00:00', "
                    "'2024-01-01 00:00:00')"
                ),
                rows[:1],
            )
        with engine.begin() as conn:
            migrate.upgrade(conn)
    finally:
        engine.dispose()


V1_ROWS = [
    {"id": "00000000-0000-4000-8000-000000000001", "name": "written", "is_public": True,
     "sha256": "ab" * 32, "store": "fs", "location": "file:///data/images/1"},
    {"id": "00000000-0000-4000-8000-000000000002", "name": "registered", "is_public": False,
     "sha256": None, "store": None, "location": "https://example.com/cirros.img"},
    {"id": "00000000-0000-4000-8000-000000000003", "name": "queued", "is_public": False,
     "sha256": None, "store": None, "location": None},
]  # fmt: skip


def _check_migrated(registry: SqlRegistry) -> None:
    written, registered, queued = (registry.get(row["id"], context=ADMIN) for row in V1_ROWS)
    assert (written.visibility.value, written.os_hash_algo, written.os_hash_value) == (
        "public",
        "sha256",
        "ab" * 32,
    )
    assert [loc.to_dict() for loc in written.locations] == [
        {"url": "file:///data/images/1", "store": "fs", "owned": True, "metadata": {}}
    ]
    # v1's "not public" keeps members seeing the image: shared, not private
    assert (registered.visibility.value, registered.os_hash_algo) == ("shared", None)
    assert [loc.to_dict() for loc in registered.locations] == [
        {"url": "https://example.com/cirros.img", "store": None, "owned": False, "metadata": {}}
    ]
    assert (queued.locations, queued.tags, queued.os_hidden) == ((), (), False)
    [member] = registry.list_members(written.id, context=ADMIN)
    assert (member.member, member.can_share, member.status.value) == ("t2", True, "pending")
    shared = registry.list(ListQuery(), context=Context(tenant="t2"))
    assert {i.id for i in shared} == {written.id}  # public; the others have no members


def test_v1_era_data_is_migrated_to_v2_on_sqlite(tmp_path: Path) -> None:
    _upgrade_from_0001(sqlite_url(tmp_path / "registry.sqlite"), V1_ROWS)
    registry = make_registry(tmp_path)
    _check_migrated(registry)
    registry.close()


def test_v1_era_data_is_migrated_to_v2_on_postgres(pg_schemas: Schemas, tmp_path: Path) -> None:
    url = pg_schemas.new()
    _upgrade_from_0001(url, V1_ROWS)
    registry = make_registry(tmp_path, connection=url)
    _check_migrated(registry)
    registry.close()
