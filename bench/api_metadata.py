"""Metadata speed of tank-api (embedded SQLite registry): creates/s and listing times.

    python bench/api_metadata.py [--threads 4] [--creates 2000] [--big 100000] [--repeat 15]
                                 [--api v1,v2] [--workers 1,2]

Starts tank-api with the embedded defaults on a free loopback port, then:

* creates ``--creates`` images per API version, metadata only (v1: ``POST /v1/images``
  with ``x-image-meta-*`` headers and no body; v2: ``POST /v2/images`` with a JSON body),
  from ``--threads`` threads with one ``requests.Session`` each: creates/s;
* times (median of ``--repeat``, after one warm-up) ``GET /v1/images/detail?limit=1000``
  and ``GET /v2/images?limit=1000``, and a name filter (``?name=image-1234``) on each;
* bulk-inserts more images straight into the same SQLite database (``executemany``,
  as bench/registry_metadata.py does; setup only) up to ``--big`` and times them again.

``--workers 1,2`` runs it all once per worker count (tank-api ``--workers``, a fresh data
dir each; without it, tank-api's default), for creates/s and list times per count; the
CPU is the whole process tree's, and the RSS of each process is shown at the end.

Beside each HTTP time it prints the same query made in-process on the registry, so the
difference is what the API layer (HTTP, JSON) costs. Targets (tank-api issue, SQLite):
>= 500 creates/s, list of 1,000 <= 50 ms, name filter <= 5 ms; real Glance 33 measured
21 creates/s, 661 ms and 18 ms on the same kind of machine.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import requests
from _common import (
    IMAGE_HEADERS,
    TankApi,
    load_average,
    median_ms,
    proc_status_kib,
    verdict,
)
from registry_metadata import FORMATS, bulk_insert

from tank.model import Context, ListQuery
from tank_registry_sql.registry import SqlRegistry

ADMIN = Context.admin()
TARGETS = {"creates": 500, "list": 50.0, "name": 5.0}
NAME = "image-1234"


def create_headers(i: int) -> dict[str, str]:
    return {
        **IMAGE_HEADERS,
        "x-image-meta-name": f"image-{i}",
        "x-image-meta-disk_format": FORMATS[i % 4],
        "x-image-meta-is_public": "true" if i % 10 == 0 else "false",
        "x-image-meta-property-os_distro": ["ubuntu", "debian", "fedora"][i % 3],
        "x-image-meta-property-build": str(i),
    }


def create_body(i: int) -> dict[str, str]:
    return {
        "name": f"image-{i}",
        "disk_format": FORMATS[i % 4],
        "container_format": "bare",
        "visibility": "public" if i % 10 == 0 else "shared",
        "os_distro": ["ubuntu", "debian", "fedora"][i % 3],
        "build": str(i),
    }


def create_concurrently(url: str, count: int, threads: int, api: str = "v1") -> float:
    failures: list[str] = []

    def post(session: requests.Session, i: int) -> requests.Response:
        if api == "v2":
            return session.post(f"{url}/v2/images", json=create_body(i), timeout=30)
        return session.post(f"{url}/v1/images", headers=create_headers(i), timeout=30)

    def work(indexes: range) -> None:
        with requests.Session() as session:
            for i in indexes:
                r = post(session, i)
                if r.status_code != 201:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    return

    workers = [
        threading.Thread(target=work, args=(range(t, count, threads),)) for t in range(threads)
    ]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"create failed: {failures[0]}")
    return count / elapsed


#: Listing path of each API version.
LIST_PATHS = {"v1": "/v1/images/detail", "v2": "/v2/images"}


def measure(
    url: str, registry: SqlRegistry, repeat: int, apis: list[str]
) -> list[tuple[str, float, float, str]]:
    """(label, HTTP ms, in-process registry ms, note) per query and API version."""
    session = requests.Session()
    rows = []
    queries = [
        (api, label, params, query)
        for api in apis
        for label, params, query in [
            (f"{api} list 1000", {"limit": "1000"}, ListQuery(limit=1000)),
            (f"{api} name filter", {"name": NAME}, ListQuery(filters={"name": NAME})),
        ]
    ]
    for api, label, params, query in queries:
        path = LIST_PATHS[api]
        r = session.get(f"{url}{path}", params=params, timeout=60)
        r.raise_for_status()
        note = f"{len(r.json()['images'])} images, {len(r.content) / 1024:.0f} KiB"

        def get(params: dict[str, str] = params, path: str = path) -> None:
            session.get(f"{url}{path}", params=params, timeout=60).raise_for_status()

        http = median_ms(get, repeat)
        direct = median_ms(lambda q=query: registry.list(q, context=ADMIN), repeat)
        rows.append((label, http, direct, note))
    session.close()
    return rows


def report(count: int, rows: list[tuple[str, float, float, str]]) -> None:
    print(f"at {count:,} images ({load_average()})")
    print(f"  {'':22}{'HTTP ms':>9}{'registry ms':>13}  target")
    for label, http, direct, note in rows:
        target = TARGETS["list"] if "list" in label else TARGETS["name"]
        print(f"  {label:22}{http:9.2f}{direct:13.2f}  <= {target:g}: "
              f"{verdict(http <= target)}   ({note})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--api", default="v1,v2", help="API versions to measure, e.g. v2")
    parser.add_argument(
        "--workers", default="", help="tank-api --workers counts to compare, e.g. 1,2"
    )
    args = parser.parse_args()
    apis = [a.strip() for a in args.api.split(",") if a.strip()]
    if not apis or set(apis) - set(LIST_PATHS):
        parser.error("--api takes v1, v2 or v1,v2")
    workers = [int(w) for w in args.workers.split(",") if w.strip()] or [None]
    print(load_average())
    for count in workers:
        if len(workers) > 1 or count is not None:
            print(f"\n=== tank-api --workers {count} ===")
        run(args, apis, count)


def run(args: argparse.Namespace, apis: list[str], workers: int | None) -> None:
    with tempfile.TemporaryDirectory(prefix="tank-bench-meta-") as tmp:
        with TankApi(Path(tmp) / "data", workers=workers) as api:
            registry = SqlRegistry(SqlRegistry.Config(), data_dir=api.data_dir)
            idle = rss_line(api)
            for version in apis:
                before = api.cpu_seconds()
                rate = create_concurrently(api.url, args.creates, args.threads, version)
                cpu_ms = (api.cpu_seconds() - before) * 1000 / args.creates
                print(f"{version} creates/s ({args.threads} threads, {args.creates:,} images): "
                      f"{rate:,.0f}  (target >= {TARGETS['creates']}: "
                      f"{verdict(rate >= TARGETS['creates'])}; "
                      f"tank-api CPU {cpu_ms:.2f} ms per create)")  # fmt: skip
            total = args.creates * len(apis)
            report(total, measure(api.url, registry, args.repeat, apis))
            if args.big > total:
                started = time.perf_counter()
                bulk_insert(registry, total, args.big)
                print(f"(bulk-inserted {args.big - total:,} more in "
                      f"{time.perf_counter() - started:.1f} s)")  # fmt: skip
                report(args.big, measure(api.url, registry, args.repeat, apis))
            print(f"RSS MiB at idle (supervisor, workers...): {idle}")
            print(f"RSS MiB now: {rss_line(api)}; peak of the largest "
                  f"{api.peak_rss_kib() / 1024:.1f}")  # fmt: skip
            registry.close()


def rss_line(api: TankApi) -> str:
    """VmRSS of each of tank-api's processes (PSS in brackets: shared pages split)."""
    parts = []
    for pid in api.pids():
        rss = proc_status_kib(pid, "VmRSS") / 1024
        parts.append(f"{rss:.1f} [{pss_kib(pid) / 1024:.1f}]")
    return ", ".join(parts)


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main()
