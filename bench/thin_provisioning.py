"""Thin provisioning of the fs store: a mostly-empty raw image, uploaded thin and thick.

    python bench/thin_provisioning.py [--size 4G] [--data 256M] [--dir /var/tmp] [--runs 3]

The source is a raw disk image of ``--size`` bytes holding ``--data`` bytes of random
data in scattered extents (64 KiB to 4 MiB, at 4 KiB-aligned offsets, as a filesystem
lays out files); the rest is zeros. It is itself a sparse file, so it costs only the room
of its data. One tank-api (embedded SQLite registry) has two fs stores on the same disk:
``thick`` and ``thin`` (``thin_provisioning = true``). Each run uploads the image with
``curl -X POST -T`` into both, in alternating order so that both see the same noise, and
measures:

* upload wall seconds and tank-api CPU seconds (user + system, every thread);
* disk used by the stored file: ``st_blocks`` and ``du -sk`` of the store's directory;
* a download (``curl``, sendfile from the stored file), checked against the source's MD5:
  the zeros come back.

Each figure is the best of ``--runs`` (disk used is the same every run). MD5 alone is
printed as the upload's floor: the hashes see every byte, zeros included, thin or not.
Expected (tank-api issue): thin uploads faster and takes about ``--data`` of disk.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import (
    GiB,
    MiB,
    TankApi,
    human,
    load_average,
    md5_seconds,
    parse_size,
    warm,
)

STORES = ("thick", "thin")
KiB = 1 << 10


def extents(size: int, data: int, seed: int = 42) -> list[tuple[int, int]]:
    """Non-overlapping (offset, length) extents, 4 KiB-aligned, ``data`` bytes in all."""
    rng = random.Random(seed)
    taken: list[tuple[int, int]] = []
    left = data
    while left > 0:
        length = min(left, rng.randrange(16, 1025) * 4 * KiB)
        offset = rng.randrange(0, (size - length) // (4 * KiB)) * 4 * KiB
        if any(offset < o + n + 4 * KiB and o < offset + length + 4 * KiB for o, n in taken):
            continue  # overlapping or touching another: draw again
        taken.append((offset, length))
        left -= length
    return sorted(taken)


def make_image(path: Path, size: int, data: int) -> tuple[str, int]:
    """Write the sparse source image; its MD5 and number of extents."""
    layout = extents(size, data)
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, length in layout:
            os.pwrite(f.fileno(), os.urandom(length), offset)
        f.flush()
        os.fsync(f.fileno())
    md5 = hashlib.md5()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(4 * MiB):
            md5.update(chunk)
    return md5.hexdigest(), len(layout)


def disk_used(directory: Path, image_id: str) -> tuple[int, int]:
    """(bytes allocated to the image's file by st_blocks, ``du -sk`` of the directory)."""
    blocks = (directory / image_id).stat().st_blocks * 512
    du = subprocess.run(["du", "-sk", str(directory)], capture_output=True, text=True, check=True)
    return blocks, int(du.stdout.split()[0]) * KiB


def downloaded_md5(url: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        f"curl -sS --fail {url} | md5sum", shell=True, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, done.stdout.split()[0]


def measure(size: int, data: int, work: Path, runs: int) -> dict[str, dict[str, float]]:
    source = work / "source.img"
    digest, count = make_image(source, size, data)
    src_blocks = source.stat().st_blocks * 512
    print(f"source: {human(size)} with {human(data)} of data in {count} extents "
          f"({src_blocks / MiB:.0f} MiB allocated), MD5 {digest}")  # fmt: skip
    warm(source)
    dirs = {name: work / "stores" / name for name in STORES}
    config = 'default_store = "thick"\n' + "".join(
        f'[stores.{name}]\ntype = "file"\ndatadir = "{dirs[name]}"\n'
        + ("thin_provisioning = true\n" if name == "thin" else "")
        for name in STORES
    )
    results: dict[str, dict[str, list[float]]] = {
        name: {"up": [], "cpu": [], "down": [], "blocks": [], "du": []} for name in STORES
    }
    md5_alone = []
    with TankApi(work / "tank", config=config) as api:
        for run in range(runs):
            md5_alone.append(md5_seconds(source))
            for name in STORES if run % 2 == 0 else reversed(STORES):
                os.sync()
                before = api.cpu_seconds()
                seconds, image = api.upload(source, f"thin-bench-{name}", store=name)
                cpu = api.cpu_seconds() - before
                if image["checksum"] != digest or image["size"] != size:
                    raise SystemExit(
                        f"{name}: tank-api stored {image['size']} bytes, MD5 {image['checksum']}"
                    )
                blocks, du = disk_used(dirs[name], image["id"])
                down, got = downloaded_md5(f"{api.url}/v1/images/{image['id']}")
                if got != digest:
                    raise SystemExit(f"{name}: downloaded MD5 {got}, expected {digest}")
                api.delete(image["id"])
                m = results[name]
                m["up"].append(seconds)
                m["cpu"].append(cpu)
                m["down"].append(down)
                m["blocks"].append(blocks)
                m["du"].append(du)
    source.unlink()
    out = {name: {k: min(v) for k, v in m.items()} for name, m in results.items()}
    return out | {"md5": {"alone": min(md5_alone)}}


def report(size: int, data: int, m: dict[str, dict[str, float]]) -> None:
    gib = size / GiB
    print(f"\n{human(size)} raw image, {human(data)} of data  ({load_average()})")
    print(f"  {'store':8}{'upload s':>10}{'MiB/s':>8}{'CPU s':>8}{'CPU s/GiB':>11}"
          f"{'disk (st_blocks)':>18}{'du -sk':>10}{'download+md5sum s':>19}")  # fmt: skip
    for name in STORES:
        r = m[name]
        print(f"  {name:8}{r['up']:10.2f}{size / MiB / r['up']:8.0f}{r['cpu']:8.2f}"
              f"{r['cpu'] / gib:11.2f}{r['blocks'] / MiB:14.1f} MiB{r['du'] / MiB:6.0f} MiB"
              f"{r['down']:19.2f}")  # fmt: skip
    thin, thick = m["thin"], m["thick"]
    print(f"  MD5 alone (hashlib, this process): {m['md5']['alone']:.2f} s")
    print(f"  thin / thick: upload time {thin['up'] / thick['up']:.2f}, "
          f"CPU {thin['cpu'] / thick['cpu']:.2f}, disk {thin['blocks'] / thick['blocks']:.3f}; "
          f"thin disk / data = {thin['blocks'] / data:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="4G", type=parse_size, help="image size (4G)")
    parser.add_argument("--data", default="256M", type=parse_size, help="data in it (256M)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory parent (TMPDIR)")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (3)")
    args = parser.parse_args()
    if args.data > args.size // 2:
        parser.error("--data must be at most half of --size (the extents are scattered)")
    work = Path(tempfile.mkdtemp(prefix="tank-bench-thin-", dir=args.dir))
    print(f"work dir {work}, best of {args.runs}, {load_average()}")
    started = time.perf_counter()
    try:
        report(args.size, args.data, measure(args.size, args.data, work, args.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"done in {time.perf_counter() - started:.0f} s, {load_average()}")


if __name__ == "__main__":
    main()
