"""Upload and download throughput of the filesystem store, through the service layer.

    python bench/fs_throughput.py [--size 1G] [--dir /var/tmp] [--runs 3]

Creates a file of ``--size`` random bytes, then measures on it:

* ``cp FILE DEST && sync`` and ``cat FILE > /dev/null`` (the references);
* ``ImageService.create(..., data=file)``: upload into the ``file`` store, which hashes
  (MD5 + SHA-256), writes, fsyncs and publishes the file;
* ``ImageService.download(...)``: every chunk written to /dev/null, as ``cat`` does;
* ``md5sum FILE`` and MD5 in this process (``hashlib``, as Tank hashes): MD5 is serial
  and Glance v1 needs it before an image is active, so no upload can be faster than it.

The source file is read once before any timing, so every writer reads it from the page
cache; the stored image is read once before the download is timed, as ``FILE`` is before
``cat``. ``sync`` runs before each write measurement so neither side flushes the other's
dirty pages. Each figure is the best of ``--runs``. The Tank part runs in a child process,
so its peak RSS is Tank's alone. It uses the SQL registry when ``tank-registry-sql`` is
installed, otherwise a dict-backed one defined here (registry cost is a few calls per
image, nothing per byte).

Targets: upload >= 0.8 x cp+sync, download >= 0.9 x cat, peak RSS < 100 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import MiB, make_file, parse_size, timed_shell, warm

TARGETS = {"write": 0.8, "read": 0.9, "rss_mib": 100}


def md5_seconds(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds to MD5 ``path`` here, 1 MiB at a time (the upload's floor)."""
    md5 = hashlib.md5()
    start, cpu_start = time.perf_counter(), time.process_time()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(MiB):
            md5.update(chunk)
    return time.perf_counter() - start, time.process_time() - cpu_start


def filesystem_of(path: Path) -> str:
    done = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


# --- the Tank side, in a child process ----------------------------------------------------


def run_tank(source: Path, data_dir: Path, md5: str, runs: int) -> dict[str, Any]:
    """Upload and download ``source`` ``runs`` times; best times and peak RSS."""
    import resource

    import attrs

    from tank.config import load
    from tank.model import Context
    from tank.plugins import make_plugin_manager
    from tank.service import ImageService
    from tank_store_fs.location import FileLocation

    admin = Context.admin()
    config = load(data_dir=data_dir, environ={})
    plugins = make_plugin_manager(environ={})
    registry = "sql"
    if "sql" not in plugins.registry_types():
        plugins = make_plugin_manager(plugins=[("bench-registry", _bench_registry())], environ={})
        config = attrs.evolve(config, registry={"kind": "bench"})
        registry = "bench (dict; tank-registry-sql is not installed)"
    size = source.stat().st_size
    meta = {"name": "bench", "disk_format": "raw", "container_format": "bare"}
    null = os.open(os.devnull, os.O_WRONLY)
    writes, reads, write_cpu, read_cpu = [], [], [], []

    def cpu() -> float:  # user + system seconds of all threads of this process
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    with ImageService.from_config(config, plugins) as service:
        rss_ready = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(runs):
            os.sync()
            start, cpu_start = time.perf_counter(), cpu()
            with open(source, "rb") as data:
                image = service.create(meta, data=data, size=size, context=admin)
            writes.append(time.perf_counter() - start)
            write_cpu.append(cpu() - cpu_start)
            assert image.checksum == md5, "checksum mismatch"
            warm(Path(FileLocation.parse(image.location or "").path))
            start, cpu_start = time.perf_counter(), cpu()
            _, stream = service.download(image.id, context=admin)
            got = 0
            with stream:
                for chunk in stream:
                    os.write(null, chunk)
                    got += len(chunk)
            reads.append(time.perf_counter() - start)
            read_cpu.append(cpu() - cpu_start)
            assert got == size, f"read {got} of {size} bytes"
            service.delete(image.id, context=admin)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "write_s": min(writes),
        "read_s": min(reads),
        "writes": writes,
        "reads": reads,
        "write_cpu_s": min(write_cpu),
        "read_cpu_s": min(read_cpu),
        "rss_ready_kib": rss_ready,
        "rss_peak_kib": peak,
        "registry": registry,
    }


def _bench_registry() -> object:
    """A plugin contributing a dict-backed registry (kind ``bench``): only what the
    service calls for create / download / delete."""
    import threading

    import attrs

    from tank import errors, hookimpl
    from tank.model import Status
    from tank.registry import Registry

    @attrs.frozen
    class Config:
        pass

    class DictRegistry(Registry):
        kind = "bench"

        def __init__(self, config: Any, *, data_dir: Path) -> None:
            super().__init__(config, data_dir=data_dir)
            self.images: dict[str, Any] = {}
            self.lock = threading.Lock()

        def create(self, image: Any) -> Any:
            with self.lock:
                if image.id in self.images:
                    raise errors.Duplicate(f"image {image.id} exists")
                self.images[image.id] = image
            return image

        def get(self, image_id: str, *, context: Any) -> Any:
            try:
                return self.images[image_id]
            except KeyError:
                raise errors.NotFound(f"no image {image_id}") from None

        def update(self, image_id, changes, *, context, purge_props=False, expected_status=None):  # type: ignore[no-untyped-def]
            with self.lock:
                image = self.get(image_id, context=context)
                if expected_status is not None and image.status is not expected_status:
                    raise errors.Conflict(f"image {image_id} is {image.status}")
                self.images[image_id] = image = image.update(changes, purge_props=purge_props)
            return image

        def delete(self, image_id: str, *, context: Any) -> Any:
            return self.update(
                image_id, {"status": Status.DELETED, "deleted": True}, context=context
            )

        def _unsupported(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("the bench registry only creates, reads and deletes")

        list = list_members = add_member = remove_member = _unsupported
        replace_members = shared_with = set_member_status = _unsupported

    DictRegistry.Config = Config

    class Plugin:
        @hookimpl
        def tank_register_registries(self, register):  # type: ignore[no-untyped-def]
            register(DictRegistry)

    return Plugin()


# --- the parent: references, child, report ------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="file size (1G)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory parent (TMPDIR)")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (3)")
    parser.add_argument(
        "--child", nargs=3, metavar=("SOURCE", "DATA_DIR", "MD5"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        source, data_dir, md5 = args.child
        print(json.dumps(run_tank(Path(source), Path(data_dir), md5, args.runs)))
        return

    work = Path(tempfile.mkdtemp(prefix="tank-bench-", dir=args.dir))
    try:
        source, dest = work / "source.img", work / "copy.img"
        fs, mib = filesystem_of(work), args.size / MiB
        print(f"work dir {work} ({fs}), {mib:.0f} MiB, best of {args.runs}")
        digest = make_file(source, args.size)
        warm(source)
        times: dict[str, list[float]] = {
            "cp": [],
            "cat": [],
            "md5sum": [],
            "md5": [],
            "md5_cpu": [],
        }
        for _ in range(args.runs):
            os.sync()
            times["cp"].append(timed_shell(f"cp {source} {dest} && sync"))
            dest.unlink()
            os.sync()
            warm(source)
            times["cat"].append(timed_shell(f"cat {source} > /dev/null"))
            times["md5sum"].append(timed_shell(f"md5sum {source} > /dev/null"))
            wall, cpu = md5_seconds(source)
            times["md5"].append(wall)
            times["md5_cpu"].append(cpu)
        command = [sys.executable, __file__, "--runs", str(args.runs), "--child"]
        command += [str(source), str(work / "tank"), digest]
        child = subprocess.run(command, capture_output=True, text=True)
        if child.returncode != 0:
            sys.exit(f"Tank run failed:\n{child.stderr}")
        tank = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args.size, {k: min(v) for k, v in times.items()}, tank)


def report(size: int, best: dict[str, float], tank: dict[str, Any]) -> None:
    upload, download = tank["write_s"], tank["read_s"]
    rows = [
        ("cp FILE DEST && sync", best["cp"]),
        ("Tank upload (service)", upload),
        ("md5sum FILE", best["md5sum"]),
        ("MD5 in-process (hashlib)", best["md5"]),
        ("cat FILE > /dev/null", best["cat"]),
        ("Tank download (service)", download),
    ]
    print(f"registry: {tank['registry']}")
    print(f"{'':28}{'MiB/s':>8}{'seconds':>10}")
    for label, seconds in rows:
        print(f"{label:28}{size / MiB / seconds:8.0f}{seconds:10.3f}")

    def line(label: str, ratio: float, target: float | None, note: str = "") -> None:
        verdict = "" if target is None else "ok" if ratio >= target else "MISSED"
        goal = f"target >= {target}: {verdict}" if target is not None else note
        print(f"{label:20} = {ratio:5.2f}  ({goal})")

    line("upload / cp+sync", best["cp"] / upload, TARGETS["write"])
    line("download / cat", best["cat"] / download, TARGETS["read"])
    line("upload / MD5 alone", best["md5"] / upload, None, "MD5 is serial: 1.00 is the ceiling")
    gib = size / (1 << 30)
    up, down, md5 = (x / gib for x in (tank["write_cpu_s"], tank["read_cpu_s"], best["md5_cpu"]))
    print(f"CPU s/GiB: upload {up:.2f} (MD5 alone {md5:.2f}), download {down:.2f}")
    peak, ready = tank["rss_peak_kib"] / 1024, tank["rss_ready_kib"] / 1024
    verdict = "ok" if peak < TARGETS["rss_mib"] else "MISSED"
    print(
        f"peak RSS = {peak:.1f} MiB (after start-up {ready:.1f} MiB; "
        f"target < {TARGETS['rss_mib']}: {verdict})"
    )


if __name__ == "__main__":
    main()
