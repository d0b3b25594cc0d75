"""What is particular to the SQL registry: config, URLs, errors, SQLite tuning, queries."""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from tank import errors
from tank.config import build, load
from tank.model import Context, Image, ListQuery
from tank.plugins import make_plugin_manager
from tank.service import open_registry
from tank_registry_sql import database
from tank_registry_sql.registry import SqlRegistry

from .conftest import Schemas, make_registry

ADMIN = Context.admin()
WHERE = "tank.toml [registry]"


# --- configuration --------------------------------------------------------------------


def test_config_defaults() -> None:
    config = build(SqlRegistry.Config, {}, where=WHERE)
    assert config.connection is None and config.auto_upgrade is None
    assert config.sqlite_synchronous == "full"


@pytest.mark.parametrize(
    "section,key",
    [
        ({"pool_size": 0}, "pool_size"),
        ({"busy_timeout": -1}, "busy_timeout"),
        ({"sqlite_synchronous": "off"}, "sqlite_synchronous"),
        ({"auto_upgrade": "yes"}, "auto_upgrade"),
        ({"url": "sqlite://"}, "url"),
    ],
)
def test_bad_config_names_the_key(section: dict[str, object], key: str) -> None:
    with pytest.raises(errors.ConfigError, match=key):
        build(SqlRegistry.Config, section, where=WHERE)


def test_embedded_default_url(tmp_path: Path) -> None:
    registry = make_registry(tmp_path)
    assert registry.url.database == str(tmp_path / "registry.sqlite")
    assert registry.embedded


@pytest.mark.parametrize(
    "connection,message",
    [
        ("not a url", f"^{re.escape(WHERE)} connection: not an SQLAlchemy database URL"),
        ("pg://tank:hunter2@db:port/tank", "connection: not an SQLAlchemy database URL"),
        ("sqlite://", f"^{re.escape(WHERE)} connection: an in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("postgresql+pg8000://tank@db/tank", "no usable driver"),
        ("nosuchdb://x/y", "no usable driver"),
    ],
)
def test_bad_connection(tmp_path: Path, connection: str, message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message) as info:
        config = build(SqlRegistry.Config, {"connection": connection}, where=WHERE)
        SqlRegistry(config, data_dir=tmp_path)
    assert "hunter2" not in str(info.value)


def test_errors_found_on_connecting_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tank.toml"
    path.write_text('[registry]\nconnection = "nosuchdb://x/y"\n')
    config = load(path, data_dir=tmp_path, environ={})
    with pytest.raises(errors.ConfigError) as info:
        open_registry(config, make_plugin_manager(environ={}))
    assert str(info.value).startswith(f"{path} [registry] connection: no usable driver")


def test_postgresql_means_psycopg3(tmp_path: Path) -> None:
    registry = make_registry(tmp_path, connection="postgresql://tank@db.example/tank")
    assert registry.url.drivername == "postgresql+psycopg"
    registry.close()


def test_redacted_urls_hold_no_secrets() -> None:
    url = sa.make_url("postgresql+psycopg://tank:s3cret@db/tank?sslpassword=k3y&sslmode=require")
    text = database.redacted(url)
    assert "s3cret" not in text and "k3y" not in text
    assert "tank:***@db" in text and "sslmode=require" in text


# --- errors -------------------------------------------------------------------------


def test_unreachable_postgres_is_unavailable_without_the_password(tmp_path: Path) -> None:
    registry = make_registry(
        tmp_path,
        connection="postgresql+psycopg://tank:s3cret@127.0.0.1:1/tank",
        connect_timeout=2,
    )
    with pytest.raises(errors.StoreUnavailable, match="is unavailable") as info:
        registry.list(ListQuery(), context=ADMIN)
    assert "s3cret" not in str(info.value)
    assert "tank:***@127.0.0.1:1" in str(info.value)
    with pytest.raises(errors.StoreUnavailable):
        registry.upgrade()
    registry.close()


def test_unopenable_sqlite_is_unavailable(tmp_path: Path) -> None:
    registry = make_registry(tmp_path, connection=f"sqlite:///{tmp_path}/missing/dir/r.sqlite")
    with pytest.raises(errors.StoreUnavailable, match="unable to open"):
        registry.create(Image())
    registry.close()


def test_a_busy_sqlite_writer_times_out_while_readers_go_on(tmp_path: Path) -> None:
    registry = make_registry(tmp_path, busy_timeout=0.3)
    image = registry.create(Image(name="before"))
    blocker = sqlite3.connect(tmp_path / "registry.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert registry.get(image.id, context=ADMIN) == image  # WAL: readers never wait
        with pytest.raises(errors.StoreUnavailable, match="busy"):
            registry.create(Image())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    registry.create(Image())
    registry.close()


def test_a_writer_waits_for_the_lock_and_writes_once_it_is_released(tmp_path: Path) -> None:
    """The lock is held when the writer asks for it, and released only after: the write
    succeeds, so it waited (with no busy_timeout it fails with 'busy' at once)."""
    registry = make_registry(tmp_path, busy_timeout=60)
    registry.create(Image(name="before"))
    asking = threading.Event()

    def trace(statement: str) -> None:
        if statement.startswith("BEGIN IMMEDIATE"):
            asking.set()

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.set_trace_callback(trace)

    sa.event.listen(registry._engine, "checkout", on_checkout)
    blocker = sqlite3.connect(tmp_path / "registry.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    outcome: list[object] = []

    finished = threading.Event()

    def write() -> None:
        try:
            outcome.append(registry.create(Image(name="waited")))
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)
        finally:
            finished.set()

    writer = threading.Thread(target=write)
    try:
        writer.start()
        assert asking.wait(30), "the writer never asked for the lock"
        # Still waiting a while later, lock held: a writer that gives up at once (no busy
        # timeout) has failed by then; a slow machine cannot make a waiting writer fail this.
        assert not finished.wait(0.5), outcome
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        writer.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], Image), outcome
    assert outcome[0].name == "waited"
    assert registry.get(outcome[0].id, context=ADMIN).name == "waited"
    registry.close()


# --- rows and images -----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def any_registry(request: pytest.FixtureRequest) -> SqlRegistry:
    return request.getfixturevalue(
        f"{'pg' if request.param == 'postgresql' else 'sqlite'}_registry"
    )


def test_images_read_back_exactly_as_the_model_builds_them(any_registry: SqlRegistry) -> None:
    """Rows become images without the model's converters; they must not be needed."""
    image = any_registry.create(
        Image(name="n", size=5, visibility="public", protected=True, status="active",
              disk_format="raw", container_format="bare", properties={"a": "1"},
              tags=["x"], locations=[{"url": "file:///a", "store": "fs", "metadata": {"k": 1}}])
    )  # fmt: skip
    any_registry.delete(image.id, context=ADMIN)
    for got in (
        any_registry.get(image.id, context=ADMIN),
        any_registry.list(ListQuery(filters={"deleted": True}), context=ADMIN)[0],
    ):
        rebuilt = Image(**attrs.asdict(got, recurse=False))
        assert got == rebuilt
        for field in attrs.fields(Image):
            value, expected = getattr(got, field.name), getattr(rebuilt, field.name)
            assert type(value) is type(expected), field.name
            if isinstance(value, dt.datetime):
                assert value.tzinfo is dt.UTC, field.name


# --- SQLite tuning and queries -------------------------------------------------------


def test_sqlite_connections_are_tuned(sqlite_registry: SqlRegistry) -> None:
    sqlite_registry.list(ListQuery(), context=ADMIN)
    with sqlite_registry._engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000,
                      "synchronous": 2}  # fmt: skip


def test_a_listing_loads_properties_in_one_query(
    sqlite_registry: SqlRegistry,
) -> None:
    for i in range(30):
        sqlite_registry.create(Image(name=f"n{i}", properties={"a": str(i), "b": "x"}))
    statements: list[str] = []
    sa.event.listen(
        sqlite_registry._engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *args: statements.append(statement),
    )
    images = sqlite_registry.list(ListQuery(limit=100), context=ADMIN)
    assert len(images) == 30 and all(i.properties["b"] == "x" for i in images)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects  # images, then the properties of them all


@pytest.mark.parametrize(
    "query,index",
    [
        (ListQuery(), "ix_images_created_at_id"),
        (ListQuery(filters={"name": "x"}), "ix_images_name_id"),
        (ListQuery.of(sort_key="size", sort_dir="asc"), "ix_images_size_id"),
        (ListQuery(filters={"property-os": "linux"}), "ix_image_properties_name_value"),
    ],
)
def test_listings_use_indexes(sqlite_registry: SqlRegistry, query: ListQuery, index: str) -> None:
    from tank_registry_sql import queries

    sqlite_registry.list(ListQuery(), context=ADMIN)  # migrate
    stmt = queries.list_statement(query, ADMIN, None, dialect="sqlite")
    compiled = stmt.compile(sqlite_registry._engine)
    with sqlite_registry._engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())
        ).all()
    assert index in " ".join(row[-1] for row in plan), plan


def _bulk_images(registry: SqlRegistry, count: int) -> None:
    """``count`` images in one executemany: one in 500 ``killed`` and tagged ``rare``,
    the rest ``active``; every one tagged ``common``."""
    from tank_registry_sql.schema import ImageRow, TagRow

    registry.list(ListQuery(), context=ADMIN)  # migrate
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    rows, tags = [], []
    for i in range(count):
        image = Image(name=f"bulk-{i:05d}", created_at=base + dt.timedelta(seconds=i))
        rare = i % 500 == 7
        row = attrs.asdict(image, recurse=False)
        row.pop("properties")
        row.update(status="killed" if rare else "active", visibility="private", locations="[]")
        row["tags"] = '["common","rare"]' if rare else '["common"]'
        rows.append(row)
        tags += [{"image_id": image.id, "tag": "common"}]
        tags += [{"image_id": image.id, "tag": "rare"}] if rare else []
    with registry._engine.begin() as conn:
        conn.execute(sa.insert(ImageRow), rows)
        conn.execute(sa.insert(TagRow), tags)


def _every_page(registry: SqlRegistry, filters: dict[str, Any]) -> list[Image]:
    images: list[Image] = []
    marker = None
    while True:
        page = registry.list(ListQuery(filters=filters, limit=100, marker=marker), context=ADMIN)
        images += page
        if len(page) < 100:
            return images
        marker = page[-1].id


@pytest.mark.parametrize(
    "filters,index",
    [
        # matches everywhere: walk the sort order, the page fills at once
        ({"status": "active"}, "SCAN images USING INDEX ix_images_created_at_id"),
        ({"tags": ("common",)}, "SCAN images USING INDEX ix_images_created_at_id"),
        # matches a few: start from the filter's index, sort the few
        ({"status": "killed"}, "USING INDEX ix_images_status_id (status=?)"),
        ({"status": "saving"}, "USING INDEX ix_images_status_id (status=?)"),
        ({"tags": ("rare",)}, "USING INDEX ix_image_tags_tag (tag=?)"),
        ({"status": "active", "tags": ("rare",)}, "USING INDEX ix_image_tags_tag (tag=?)"),
        ({"status": "killed", "tags": ("common",)}, "USING INDEX ix_images_status_id"),
    ],
)
def test_sqlite_listings_start_from_a_rare_filter_and_walk_the_order_for_a_common_one(
    sqlite_registry: SqlRegistry, filters: dict[str, Any], index: str
) -> None:
    """SQLite has no statistics to tell a filter that matches most images from one that
    matches a few (tank_registry_sql.planning); either way the page is the same."""
    from tank_registry_sql import planning, queries

    _bulk_images(sqlite_registry, 5000)
    query = ListQuery(filters=filters, limit=25)
    with sqlite_registry._engine.connect() as conn:
        plan = planning.plan(conn, query.filters, query.limit)
        stmt = queries.list_statement(query, ADMIN, None, dialect="sqlite", plan=plan)
        compiled = stmt.compile(sqlite_registry._engine)
        steps = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())
        ).all()
    assert index in " | ".join(row[-1] for row in steps), steps
    # the same images as a filter over every image, in the same order, page after page
    wanted = [
        i.id
        for i in _every_page(sqlite_registry, {})
        if ("status" not in filters or i.status.value == filters["status"])
        and set(filters.get("tags", ())) <= set(i.tags)
    ]
    got = [i.id for i in _every_page(sqlite_registry, filters)]
    assert got == wanted


def test_timestamps_survive_a_non_utc_postgres_session(
    pg_migrated_url: str, tmp_path: Path
) -> None:
    url = pg_migrated_url.replace("options=", "options=-ctimezone%3DAsia%2FTokyo%20")
    registry = make_registry(tmp_path, connection=url)
    with registry._engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW timezone").scalar() == "Asia/Tokyo"
    when = dt.datetime(2024, 3, 4, 23, 30, 1, 5, tzinfo=dt.UTC)
    image = registry.create(Image(created_at=when, updated_at=when))
    assert registry.get(image.id, context=ADMIN).created_at == when
    registry.close()


def test_postgres_pool_serves_many_threads(pg_schemas: Schemas, tmp_path: Path) -> None:
    """More threads than pooled connections: requests queue for a connection."""
    from tank.testing.registry_contract import run_concurrently

    registry = make_registry(
        tmp_path, connection=pg_schemas.new(), auto_upgrade=True, pool_size=2, max_overflow=1
    )
    results = run_concurrently(12, lambda i: registry.create(Image(name=f"t{i}")))
    assert all(isinstance(r, Image) for r in results), results
    assert len(registry.list(ListQuery(limit=100), context=ADMIN)) == 12
    registry.close()


# --- plugin --------------------------------------------------------------------------


def test_found_through_its_entry_point() -> None:
    assert make_plugin_manager(environ={}).registry_types()["sql"] is SqlRegistry


def test_loading_the_plugin_does_not_import_sqlalchemy() -> None:
    code = "import sys, tank_registry_sql.plugin; print('sqlalchemy' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"


def test_a_full_registry_database_is_507_not_413() -> None:
    """A full disk under the registry meets a DELETE or a PATCH too: 507 Insufficient
    Storage (the server's room), not 413 (a request too large)."""
    from sqlalchemy import exc as sa_exc

    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA max_page_count = 2")
    conn.execute("CREATE TABLE t (x TEXT)")
    with pytest.raises(sqlite3.OperationalError) as full:
        for _ in range(100):
            conn.execute("INSERT INTO t VALUES (?)", ("x" * 4000,))
    assert "full" in str(full.value)
    error = database.translate(sa_exc.OperationalError("INSERT", {}, full.value), "test.db")
    assert isinstance(error, errors.RegistryFull) and isinstance(error, errors.StorageFull)
    assert error.http_status == 507
    assert str(error).startswith("registry database test.db: database or disk is full")
