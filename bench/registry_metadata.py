"""Metadata speed of the SQL registry (SQLite, in-process): creates/s and listing times.

    python bench/registry_metadata.py [--connection URL] [--threads 4] [--big 100000]

Creates 2,000 images (a few properties each) through ``SqlRegistry.create`` from
``--threads`` threads, then times (median of ``--repeat`` runs) a 1,000-image detailed
listing and a name filter. Then it bulk-inserts more images (executemany, for setup speed
only) up to ``--big`` and times the same queries again, plus a tenant's listing, a
property filter and a deep page. Targets from the tank-api issue (SQLite): >= 500
creates/s, list of 1,000 <= 50 ms, name filter <= 5 ms; real Glance 33 measured 21
creates/s, 661 ms and 18 ms on the same kind of machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from _common import median_ms

from tank.model import Context, Image, ListQuery
from tank_registry_sql.registry import SqlRegistry
from tank_registry_sql.schema import ImageRow, PropertyRow

ADMIN = Context.admin()
TENANTS = [f"tenant-{i}" for i in range(50)]
FORMATS = ["qcow2", "raw", "vmdk", "iso"]


def image(i: int) -> Image:
    return Image(
        name=f"image-{i}",
        disk_format=FORMATS[i % 4],
        container_format="bare",
        size=1_000_000 + i,
        owner=TENANTS[i % len(TENANTS)],
        visibility="public" if i % 10 == 0 else "shared",
        properties={"os_distro": ["ubuntu", "debian", "fedora"][i % 3], "build": str(i)},
    )


def create_concurrently(registry: SqlRegistry, count: int, threads: int) -> float:
    images = [image(i) for i in range(count)]
    chunks = [images[t::threads] for t in range(threads)]
    failures: list[Exception] = []

    def work(chunk: list[Image]) -> None:
        try:
            for one in chunk:
                registry.create(one)
        except Exception as exc:  # noqa: BLE001 - re-raised in the main thread
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return count / elapsed


def bulk_insert(registry: SqlRegistry, start: int, stop: int) -> None:
    """Add images ``start..stop`` with executemany (setup only, not what is measured)."""
    engine = sa.create_engine(registry.url)
    base = dt.datetime(2020, 1, 1)
    batch = 10_000
    with engine.begin() as conn:
        for first in range(start, stop, batch):
            rows, props = [], []
            for i in range(first, min(first + batch, stop)):
                one = image(i)
                image_id = str(uuid.uuid4())
                stamp = base + dt.timedelta(seconds=i)
                rows.append(
                    {
                        "id": image_id,
                        "name": one.name,
                        "disk_format": one.disk_format,
                        "container_format": one.container_format,
                        "size": one.size,
                        "checksum": None,
                        "os_hash_algo": None,
                        "os_hash_value": None,
                        "virtual_size": None,
                        "status": "active",
                        "visibility": one.visibility.value,
                        "os_hidden": False,
                        "tags": "[]",
                        "owner": one.owner,
                        "min_ram": 0,
                        "min_disk": 0,
                        "protected": False,
                        "locations": json.dumps(
                            [
                                {
                                    "url": f"file:///var/lib/tank/images/{image_id}",
                                    "store": "file",
                                    "owned": True,
                                    "metadata": {},
                                }
                            ]
                        ),
                        "created_at": stamp,
                        "updated_at": stamp,
                        "deleted_at": None,
                        "deleted": False,
                    }
                )
                props += [
                    {"image_id": image_id, "name": k, "value": v} for k, v in one.properties.items()
                ]
            conn.execute(sa.insert(ImageRow), rows)
            conn.execute(sa.insert(PropertyRow), props)
    if engine.dialect.name == "postgresql":  # what autovacuum would do after such a load
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE images, image_properties"))
    engine.dispose()


def measure(registry: SqlRegistry, repeat: int, *, extra: bool) -> dict[str, float]:
    tenant = Context(tenant=TENANTS[7])
    out = {
        "list 1000 (detail) ms": median_ms(
            lambda: registry.list(ListQuery(limit=1000), context=ADMIN), repeat
        ),
        "name filter ms": median_ms(
            lambda: registry.list(ListQuery(filters={"name": "image-1234"}), context=ADMIN),
            repeat,
        ),
    }
    if extra:
        page = registry.list(
            ListQuery.of(limit=1000, sort_key="name", sort_dir="asc"), context=ADMIN
        )
        marker = page[-1].id
        out |= {
            "tenant list 1000 ms": median_ms(
                lambda: registry.list(ListQuery(limit=1000), context=tenant), repeat
            ),
            "property filter (25) ms": median_ms(
                lambda: registry.list(
                    ListQuery(filters={"property-os_distro": "debian"}), context=ADMIN
                ),
                repeat,
            ),
            "page 2 by name (1000) ms": median_ms(
                lambda: registry.list(
                    ListQuery.of(limit=1000, sort_key="name", sort_dir="asc", marker=marker),
                    context=ADMIN,
                ),
                repeat,
            ),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connection", help="SQLAlchemy URL (default: SQLite in a temp dir)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tank-bench-") as tmp:
        config = SqlRegistry.Config(connection=args.connection, auto_upgrade=True)
        registry = SqlRegistry(config, data_dir=Path(tmp))
        registry.upgrade()
        print(f"registry: {registry.where}")
        rate = create_concurrently(registry, args.creates, args.threads)
        print(f"creates/s ({args.threads} threads, {args.creates} images): {rate:,.0f}"
              "   (target >= 500)")  # fmt: skip
        for name, ms in measure(registry, args.repeat, extra=False).items():
            print(f"  at {args.creates:,} images  {name:28s} {ms:8.2f}")
        started = time.perf_counter()
        bulk_insert(registry, args.creates, args.big)
        print(f"(bulk-inserted {args.big - args.creates:,} more in "
              f"{time.perf_counter() - started:.1f} s)")  # fmt: skip
        for name, ms in measure(registry, args.repeat, extra=True).items():
            print(f"  at {args.big:,} images {name:28s} {ms:8.2f}")
        print("targets: list 1000 <= 50 ms, name filter <= 5 ms")
        registry.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
