"""Upload and download through tank-api with a network store vs its client library alone.

    python bench/store_throughput.py --store s3|chase|rbd [--size 1G] [--runs 1] [--tank-only]

Needs the test servers (``eval "$(bash tests/servers/ceph.sh env)"`` and
``... swift.sh env``): ``s3`` uses Ceph RGW's S3 API (``TANK_TEST_RGW_S3_*``),
``chase`` the loopback Swift (``TANK_TEST_SWIFT_AUTH/_USER/_KEY``), ``rbd`` the Ceph
cluster (``CEPH_CONF``, ``TANK_TEST_RBD_POOL``).

One tank-api with only that store (fresh bucket / container; the test pool) gets
``curl -X POST -T FILE`` uploads and ``curl -o /dev/null`` downloads; the same bytes then
go up and down with the client library alone, against the same server:

* s3: boto3 ``upload_fileobj`` / ``download_fileobj`` (default transfer settings);
* chase: swiftclient ``put_object`` of the whole file (one PUT, as Tank does below its
  5 GiB ``large_object_size``) / ``get_object`` in 1 MiB chunks;
* rbd: create a format-2 layering image, ``write`` 8 MiB chunks, snapshot + protect
  (what any Glance-style store does) / ``read`` the snapshot in 8 MiB chunks.

Every object or image is deleted right after it is read (Ceph runs on memstore; RGW
would free deleted data only when its garbage collector runs, hours later, so the s3 run
asks for a collection with ``radosgw-admin gc process`` after each delete); a Ceph-backed
run stops before writing if the cluster would pass 60 % full. The registry is migrated
(``tank-manage db upgrade``) before tank-api starts, as on a server: a fresh SQLite
registry would otherwise be migrated by the first request, whose Alembic import stays in
the process (~10 MiB) and is no part of the store's cost. Prints MiB/s, the
ratios Tank / library (target >= 0.8), MD5-alone for scale (Tank computes MD5 of every
byte unless the store's server reports it, as Swift does for one-PUT objects, and SHA-256
always; the libraries hash nothing or, for S3, sign with SHA-256), the CPU seconds the
whole machine was busy in each run (near 100 % of the cores, the ratio is set by total
CPU, servers included, not by Tank's pipeline) and tank-api's peak RSS, overall and per
phase, against the target of at most 100 MiB per tank-api process whatever the image size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    GiB,
    MiB,
    TankApi,
    human,
    load_average,
    machine_cpu_seconds,
    make_file,
    md5_seconds,
    parse_size,
    verdict,
    warm,
)

TARGET = 0.8
#: Peak RSS (VmHWM) allowed for a tank-api process with one store, in MiB.
RSS_TARGET = 100
CHUNK = 8 * MiB
CEPH_FULL_LIMIT = 0.6


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: eval \"$(bash tests/servers/ceph.sh env)\" "
                 "and the same for swift.sh")  # fmt: skip
    return value


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


# --- Ceph space guard ----------------------------------------------------------------------


def ceph_usage() -> tuple[int, int]:
    """(used, total) raw bytes of the test cluster."""
    done = subprocess.run(
        ["ceph", "-c", env("CEPH_CONF"), "df", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        sys.exit(f"ceph df failed: {done.stderr.strip()}")
    stats = json.loads(done.stdout)["stats"]
    return int(stats["total_used_raw_bytes"]), int(stats["total_bytes"])


def ceph_room_for(size: int) -> None:
    used, total = ceph_usage()
    if used + size > CEPH_FULL_LIMIT * total:
        sys.exit(
            f"Ceph is {used / total:.0%} full ({used / GiB:.1f} of {total / GiB:.1f} GiB): "
            f"writing {human(size)} more would pass {CEPH_FULL_LIMIT:.0%}. RGW frees deleted "
            "data only when its garbage collector runs (try `radosgw-admin gc process "
            "--include-all`); ask the lead before restarting Ceph."
        )


def ceph_line() -> str:
    used, total = ceph_usage()
    return f"Ceph raw used {used / GiB:.2f} of {total / GiB:.0f} GiB ({used / total:.0%})"


# --- one class per store: tank-api config, library upload/download/delete, cleanup -----------


class S3:
    name, uses_ceph = "s3", True

    def __init__(self) -> None:
        import boto3
        from botocore.config import Config

        self.endpoint = env("TANK_TEST_RGW_S3_ENDPOINT")
        self.access, self.secret = (
            env("TANK_TEST_RGW_S3_ACCESS_KEY"),
            env("TANK_TEST_RGW_S3_SECRET_KEY"),
        )
        self.bucket = f"tank-bench-{uuid.uuid4().hex[:12]}"
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        self.client.create_bucket(Bucket=self.bucket)

    def config(self) -> str:
        return f"""default_store = "s3"
[stores.s3]
endpoint = {toml_str(self.endpoint)}
access_key = {toml_str(self.access)}
secret_key = {toml_str(self.secret)}
bucket = {toml_str(self.bucket)}
addressing_style = "path"
"""

    def upload(self, source: Path, key: str) -> None:
        with open(source, "rb") as f:
            self.client.upload_fileobj(f, self.bucket, key)

    def download(self, key: str) -> None:
        with open(os.devnull, "wb") as f:
            self.client.download_fileobj(self.bucket, key, f)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def collect_garbage(self) -> None:
        """Have RGW free deleted objects now (its GC would wait hours): repeated runs
        then fit in the test cluster's memstore. Best effort."""
        try:
            subprocess.run(
                ["radosgw-admin", "-c", env("CEPH_CONF"), "gc", "process", "--include-all"],
                capture_output=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            pass

    def cleanup(self) -> None:
        for upload in self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for obj in self.client.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])
        self.client.delete_bucket(Bucket=self.bucket)


class Chase:
    name, uses_ceph = "chase", False

    def __init__(self) -> None:
        from swiftclient.client import Connection

        self.auth = env("TANK_TEST_SWIFT_AUTH")
        self.user, self.key = env("TANK_TEST_SWIFT_USER"), env("TANK_TEST_SWIFT_KEY")
        self.container = f"tank-bench-{uuid.uuid4().hex[:12]}"
        self.conn = Connection(authurl=self.auth, user=self.user, key=self.key, auth_version="1")
        self.conn.put_container(self.container)

    def config(self) -> str:
        return f"""default_store = "chase"
[stores.chase]
auth_address = {toml_str(self.auth)}
user = {toml_str(self.user)}
key = {toml_str(self.key)}
container = {toml_str(self.container)}
"""

    def upload(self, source: Path, key: str) -> None:
        with open(source, "rb") as f:
            self.conn.put_object(
                self.container,
                key,
                contents=f,
                content_length=source.stat().st_size,
                chunk_size=MiB,
            )

    def download(self, key: str) -> None:
        _, body = self.conn.get_object(self.container, key, resp_chunk_size=MiB)
        with open(os.devnull, "wb") as null:
            for chunk in body:
                null.write(chunk)

    def delete(self, key: str) -> None:
        self.conn.delete_object(self.container, key)

    def collect_garbage(self) -> None:
        pass

    def cleanup(self) -> None:
        from swiftclient.exceptions import ClientException

        for container in (self.container, self.container + "_segments"):
            try:
                _, objects = self.conn.get_container(container, full_listing=True)
            except ClientException:
                continue
            for obj in objects:
                self.conn.delete_object(container, obj["name"])
            self.conn.delete_container(container)
        self.conn.close()


class Rbd:
    name, uses_ceph = "rbd", True

    def __init__(self) -> None:
        import rados

        self.conf, self.pool = env("CEPH_CONF"), env("TANK_TEST_RBD_POOL")
        self.cluster = rados.Rados(conffile=self.conf)
        self.cluster.connect(timeout=10)
        self.ioctx = self.cluster.open_ioctx(self.pool)

    def config(self) -> str:
        return f"""default_store = "rbd"
[stores.rbd]
ceph_conf = {toml_str(self.conf)}
pool = {toml_str(self.pool)}
"""

    def upload(self, source: Path, key: str) -> None:
        import rbd

        size = source.stat().st_size
        rbd.RBD().create(
            self.ioctx, key, size, order=23, old_format=False, features=rbd.RBD_FEATURE_LAYERING
        )
        with rbd.Image(self.ioctx, key) as image, open(source, "rb", buffering=0) as f:
            offset = 0
            while chunk := f.read(CHUNK):
                image.write(chunk, offset)
                offset += len(chunk)
            image.flush()
            image.create_snap("snap")
            image.protect_snap("snap")

    def download(self, key: str) -> None:
        import rbd

        with rbd.Image(self.ioctx, key, snapshot="snap", read_only=True) as image:
            size, offset = image.size(), 0
            while offset < size:
                offset += len(image.read(offset, min(CHUNK, size - offset)))

    def delete(self, key: str) -> None:
        import rbd

        with rbd.Image(self.ioctx, key) as image:
            image.unprotect_snap("snap")
            image.remove_snap("snap")
        rbd.RBD().remove(self.ioctx, key)

    def collect_garbage(self) -> None:
        pass

    def cleanup(self) -> None:
        self.ioctx.close()
        self.cluster.shutdown()


STORES: dict[str, Callable[[], Any]] = {"s3": S3, "chase": Chase, "rbd": Rbd}


def migrate_registry(data_dir: Path) -> None:
    """``tank-manage db upgrade`` on the registry tank-api will use (its default, in
    ``data_dir``), as a deployment does before starting its servers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "tank-manage"
    done = subprocess.run(
        [str(exe), "db", "upgrade", "--data-dir", str(data_dir)], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"tank-manage db upgrade failed: {done.stderr.strip()}")


def timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, choices=sorted(STORES))
    parser.add_argument("--size", type=parse_size, default=GiB, help="image size (1G)")
    parser.add_argument("--runs", type=int, default=1, help="best of this many runs (1)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory parent (TMPDIR)")
    parser.add_argument(
        "--tank-only",
        action="store_true",
        help="skip the library runs: tank-api's speed and memory only (a 4 GiB image then "
        "fits the test cluster, which would otherwise hold it twice while Ceph frees it)",
    )
    args = parser.parse_args()
    size, mib = args.size, args.size / MiB
    store = STORES[args.store]()
    work = Path(tempfile.mkdtemp(prefix=f"tank-bench-{store.name}-", dir=args.dir))
    print(f"store {store.name}, {human(size)}, best of {args.runs}, {load_average()}")
    if store.uses_ceph:
        print(f"before: {ceph_line()}")
    times: dict[str, list[float]] = {k: [] for k in ("up", "down", "lib_up", "lib_down", "md5")}
    cpu: dict[str, list[float]] = {"up": [], "down": []}
    peaks: dict[str, list[float]] = {"up": [], "down": []}
    #: CPU seconds the whole machine (servers, curl, tank-api or the library) spent per phase
    busy: dict[str, list[float]] = {k: [] for k in ("up", "down", "lib_up", "lib_down")}
    peak = 0.0
    try:
        source = work / "source.img"
        digest = make_file(source, size)
        warm(source)
        migrate_registry(work / "tank")
        with TankApi(work / "tank", store.config()) as api:
            for _ in range(args.runs):
                times["md5"].append(md5_seconds(source))
                if store.uses_ceph:
                    ceph_room_for(size)
                phases = api.reset_peak_rss()
                before, machine = api.cpu_seconds(), machine_cpu_seconds()
                seconds, image = api.upload(source, "bench")
                times["up"].append(seconds)
                cpu["up"].append(api.cpu_seconds() - before)
                busy["up"].append(machine_cpu_seconds() - machine)
                peaks["up"].append(api.peak_rss_kib() / 1024)
                try:
                    if image["checksum"] != digest or image["size"] != size:
                        sys.exit(f"tank-api stored {image['size']} B, MD5 {image['checksum']}")
                    peak_so_far = api.peak_rss_kib() / 1024
                    phases = phases and api.reset_peak_rss()
                    before, machine = api.cpu_seconds(), machine_cpu_seconds()
                    times["down"].append(api.download(image["id"]))
                    cpu["down"].append(api.cpu_seconds() - before)
                    busy["down"].append(machine_cpu_seconds() - machine)
                    peaks["down"].append(api.peak_rss_kib() / 1024)
                    peak = max(peak, peak_so_far)
                finally:
                    api.delete(image["id"])
                store.collect_garbage()
                if args.tank_only:
                    continue
                if store.uses_ceph:
                    ceph_room_for(size)
                key = f"bench-{uuid.uuid4()}"
                machine = machine_cpu_seconds()
                times["lib_up"].append(timed(store.upload, source, key))
                busy["lib_up"].append(machine_cpu_seconds() - machine)
                try:
                    machine = machine_cpu_seconds()
                    times["lib_down"].append(timed(store.download, key))
                    busy["lib_down"].append(machine_cpu_seconds() - machine)
                finally:
                    store.delete(key)
                    store.collect_garbage()
            peak, ready = max(peak, api.peak_rss_kib() / 1024), api.rss_ready_kib / 1024
            log = (work / "tank" / "tank-api.log").read_text(errors="replace").strip()
    finally:
        store.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    b = {k: min(v) for k, v in times.items() if v}
    cores = os.cpu_count() or 1
    print(f"{'':30}{'MiB/s':>8}{'seconds':>10}   machine CPU s (busy) in that run")
    for label, key in [
        ("tank-api upload (curl -T)", "up"),
        (f"{store.name} library upload", "lib_up"),
        ("MD5 alone (hashlib)", "md5"),
        ("tank-api download (curl)", "down"),
        (f"{store.name} library download", "lib_down"),
    ]:
        if key not in b:
            continue
        line = f"{label:30}{mib / b[key]:8.0f}{b[key]:10.3f}"
        if key in busy:
            used = busy[key][times[key].index(b[key])]
            line += f"   {used:5.2f} ({used / b[key] / cores:.0%} of {cores} cores)"
        print(line)
    if not args.tank_only:
        up, down = b["lib_up"] / b["up"], b["lib_down"] / b["down"]
        print(f"upload   tank / library = {up:5.2f}  (target >= {TARGET}: {verdict(up >= TARGET)})")
        print(f"download tank / library = {down:5.2f}  "
              f"(target >= {TARGET}: {verdict(down >= TARGET)})")  # fmt: skip
    gib = size / GiB
    print(f"tank-api CPU s/GiB: upload {min(cpu['up']) / gib:.2f}, "
          f"download {min(cpu['down']) / gib:.2f}")  # fmt: skip
    print(
        f"tank-api peak RSS (VmHWM) = {peak:.1f} MiB (after start-up {ready:.1f}; "
        f"target <= {RSS_TARGET}: {verdict(peak <= RSS_TARGET)})"
    )
    if phases:
        up_peak, down_peak = max(peaks["up"]), max(peaks["down"])
        print(f"  peak during upload {up_peak:.1f} MiB, during download {down_peak:.1f} MiB")
    if log:
        print(f"tank-api log (warnings):\n{log[-2000:]}")
    if store.uses_ceph:
        print(f"after: {ceph_line()}")
    print(load_average())


if __name__ == "__main__":
    main()
