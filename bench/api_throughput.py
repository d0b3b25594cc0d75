"""Upload and download throughput of tank-api (fs store) against the machine's limits.

    python bench/api_throughput.py [--sizes 1G,4G] [--dir /var/tmp] [--runs 3] [--v2]
        [--hashing-algorithms sha256,sha512] [--baseline REV]

For each size, one run measures, interleaved so that both sides see the same noise:

* upload: ``curl -X POST -T FILE`` into a tank-api on a free loopback port with the
  embedded defaults (SQLite registry, ``file`` store that fsyncs), as users upload
  (``Expect: 100-continue`` left on), against ``cp FILE DEST && sync``;
* download: ``curl -o /dev/null`` from tank-api against the same curl from nginx serving
  the source file over loopback with sendfile (``apt-get install nginx-light``). The
  source is in the page cache; so is the image for the timed download, after a first
  download (also printed): the fs store writes uploads past the page cache (O_DIRECT),
  so that first download reads from disk;
* MD5 of the file in this process (hashlib): Glance v1 needs it before an image is
  active and it is serial, so ``upload / MD5 alone`` = 1.00 is the ceiling;
* tank-api's peak RSS (VmHWM), a fresh process per size so each size has its own peak,
  and its CPU seconds per GiB, against the CPU the two hashes (MD5 and the multihash,
  SHA-256 by default) alone take in this process.

With ``--v2`` each run also uploads through the Images API v2 (``POST /v2/images``, then
``PUT .../file``) and downloads from ``GET .../file``, interleaved with v1's, and prints
v2 / v1 (target: within 5 %).

With ``--hashing-algorithms``, the first is the one measured above (``[api]
hashing_algorithm``, default sha256) and each other one gets its own tank-api whose
uploads (wall and CPU seconds, against MD5 + that algorithm alone) are timed in the same
runs. ``--baseline REV`` does the same for a tank-api running revision REV's code (its
``git archive``, each distribution's ``src`` imported first), so that a change is
compared with what it changes under the same noise. The v1 uploads of one run
take turns going first.

The source is in the page cache before any timing and ``sync`` runs before each write.
Each figure is the best of ``--runs``. Targets (engineering issue): upload >= 0.85 x MD5
alone, upload CPU <= 1.25 x the hashes' CPU, download >= 0.95 x nginx, peak RSS <= 100
MiB and flat in image size; upload / cp+sync is printed for the record.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import (
    GiB,
    MiB,
    TankApi,
    hashes_cpu_seconds,
    human,
    load_average,
    make_file,
    md5_seconds,
    nginx,
    parse_size,
    timed_shell,
    verdict,
    warm,
)
from _common import curl as run_curl

TARGETS = {"upload_md5": 0.85, "upload_cpu": 1.25, "download": 0.95, "rss_mib": 100}


def hashing_config(algorithm: str) -> str | None:
    return None if algorithm == "sha256" else f'[api]\nhashing_algorithm = "{algorithm}"\n'


def baseline_sources(rev: str, work: Path) -> list[Path]:
    """REV's sources of every distribution (tank-core and the plugins this environment
    loads through their entry points), unpacked in ``work``."""
    root = Path(__file__).resolve().parent.parent
    work.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    return sorted(work.glob("tank_*/src"))


def upload(
    api: TankApi, source: Path, size: int, digest: str, label: str
) -> tuple[float, float, str]:
    """Wall and CPU seconds of one v1 upload by ``api``, and the image's id."""
    os.sync()
    before = api.cpu_seconds()
    seconds, image = api.upload(source, "bench")
    used = api.cpu_seconds() - before
    if image["checksum"] != digest or image["size"] != size:
        raise SystemExit(f"{label} stored {image['size']} bytes, MD5 {image['checksum']}")
    return seconds, used, image["id"]


def measure(
    size: int,
    work: Path,
    runs: int,
    v2: bool = False,
    algorithms: tuple[str, ...] = ("sha256",),
    baseline: str | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The figures of the main tank-api, and the uploads of the others (by label)."""
    work.mkdir()
    source, dest = work / "source.img", work / "copy.img"
    digest = make_file(source, size)
    warm(source)
    times: dict[str, list[float]] = {
        k: [] for k in ("cp", "md5", "up", "down", "cold", "nginx", "hashes", "up2", "down2")
    }
    cpu: dict[str, list[float]] = {"up": [], "down": []}
    others: dict[str, dict[str, list[float]]] = {}
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(TankApi(work / "tank", hashing_config(algorithms[0])))
        uploaders = {algorithms[0]: api}
        for algorithm in algorithms[1:]:
            config = hashing_config(algorithm)
            uploaders[algorithm] = stack.enter_context(TankApi(work / algorithm, config))
        if baseline:
            paths = baseline_sources(baseline, work / "baseline-src")
            label = f"baseline {baseline}"
            uploaders[label] = stack.enter_context(TankApi(work / "baseline", None, paths))
        nginx_url = stack.enter_context(nginx(work, work / "nginx"))
        for run in range(runs):
            os.sync()
            times["cp"].append(timed_shell(f"cp {source} {dest} && sync"))
            dest.unlink()
            os.sync()
            times["md5"].append(md5_seconds(source))
            times["hashes"].append(hashes_cpu_seconds(source, algorithms[0]))
            labels = list(uploaders)
            labels = labels[run % len(labels) :] + labels[: run % len(labels)]
            ids = {}
            for label in labels:
                seconds, used, ids[label] = upload(uploaders[label], source, size, digest, label)
                if label == algorithms[0]:
                    times["up"].append(seconds)
                    cpu["up"].append(used)
                else:
                    other = others.setdefault(label, {"up": [], "cpu": [], "hashes": []})
                    other["up"].append(seconds)
                    other["cpu"].append(used)
                    if label in algorithms:
                        other["hashes"].append(hashes_cpu_seconds(source, label))
            image_id = ids[algorithms[0]]
            times["cold"].append(api.download(image_id))
            before = api.cpu_seconds()
            times["down"].append(api.download(image_id))
            cpu["down"].append(api.cpu_seconds() - before)
            times["nginx"].append(run_curl("-o", "/dev/null", f"{nginx_url}/source.img")[0])
            for label, image_id in ids.items():
                uploaders[label].delete(image_id)
            if v2:
                os.sync()
                seconds, image = api.upload_v2(source, "bench-v2")
                times["up2"].append(seconds)
                if image["checksum"] != digest or image["size"] != size:
                    raise SystemExit(f"v2 stored {image['size']} bytes, MD5 {image['checksum']}")
                api.download_v2(image["id"])  # the first one reads from disk
                times["down2"].append(api.download_v2(image["id"]))
                api.delete(image["id"])
        peak, ready = api.peak_rss_kib() / 1024, api.rss_ready_kib / 1024
    source.unlink()
    out = {k: min(v) for k, v in times.items() if v}
    out |= {f"{k}_cpu": min(v) for k, v in cpu.items()}
    best = {label: {k: min(v) for k, v in m.items() if v} for label, m in others.items()}
    return out | {"rss_peak": peak, "rss_ready": ready}, best


def report_others(size: int, main: str, m: dict[str, float], others: dict[str, dict]) -> None:
    """The other tank-apis' uploads, against the main one's in the same runs."""
    if not others:
        return
    mib, gib = size / MiB, size / GiB
    print(f"  uploads in the same runs{'':4}{'MiB/s':>8}{'seconds':>10}{'CPU-s/GiB':>11}"
          f"{'speed vs ' + main:>18}")  # fmt: skip
    for label, o in [(f"{main} (above)", {"up": m["up"], "cpu": m["up_cpu"]}), *others.items()]:
        line = f"    {label:26}{mib / o['up']:8.0f}{o['up']:10.3f}{o['cpu'] / gib:11.2f}"
        line += f"{m['up'] / o['up']:18.2f}"
        if "hashes" in o:
            line += f"  (MD5 + {label} alone {o['hashes'] / gib:.2f} CPU-s/GiB)"
        print(line)


def report(size: int, m: dict[str, float]) -> None:
    mib = size / MiB
    print(f"\n{human(size)}  ({load_average()})")
    rows = [
        ("cp FILE DEST && sync", m["cp"]),
        ("tank-api upload (curl -T)", m["up"]),
        ("MD5 alone (hashlib)", m["md5"]),
        ("nginx sendfile (curl)", m["nginx"]),
        ("tank-api download (curl)", m["down"]),
        ("  its first download (disk)", m["cold"]),
    ]
    print(f"  {'':28}{'MiB/s':>8}{'seconds':>10}")
    for label, seconds in rows:
        print(f"  {label:28}{mib / seconds:8.0f}{seconds:10.3f}")
    gib = size / GiB
    up_md5, down = m["md5"] / m["up"], m["nginx"] / m["down"]
    up_cpu, down_cpu, hashes = m["up_cpu"] / gib, m["down_cpu"] / gib, m["hashes"] / gib
    ok = verdict(up_md5 >= TARGETS["upload_md5"])
    print(f"  upload / MD5 alone   = {up_md5:5.2f}  (target >= {TARGETS['upload_md5']}: {ok}; "
          "MD5 is serial: 1.00 is the ceiling)")  # fmt: skip
    print(f"  upload CPU / hashes  = {up_cpu / hashes:5.2f}  (tank-api {up_cpu:.2f} CPU-s/GiB, "
          f"MD5 + multihash alone {hashes:.2f}; target <= {TARGETS['upload_cpu']}: "
          f"{verdict(up_cpu / hashes <= TARGETS['upload_cpu'])})")  # fmt: skip
    print(f"  download / nginx     = {down:5.2f}  (tank-api {down_cpu:.2f} CPU-s/GiB; target >= "
          f"{TARGETS['download']}: {verdict(down >= TARGETS['download'])})")  # fmt: skip
    print(f"  upload / cp+sync     = {m['cp'] / m['up']:5.2f}")
    if "up2" in m:
        up2, down2 = m["up"] / m["up2"], m["down"] / m["down2"]
        print(f"  v2 upload / v1       = {up2:5.2f}  ({mib / m['up2']:.0f} MiB/s; target >= 0.95: "
              f"{verdict(up2 >= 0.95)})")  # fmt: skip
        print(f"  v2 download / v1     = {down2:5.2f}  ({mib / m['down2']:.0f} MiB/s; target >= "
              f"0.95: {verdict(down2 >= 0.95)})")  # fmt: skip
    rss_ok = m["rss_peak"] <= TARGETS["rss_mib"]
    print(f"  tank-api peak RSS (VmHWM) = {m['rss_peak']:.1f} MiB (after start-up "
          f"{m['rss_ready']:.1f}; target <= {TARGETS['rss_mib']}: {verdict(rss_ok)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1G", help="comma-separated sizes (1G; e.g. 1G,4G)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory parent (TMPDIR)")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (3)")
    parser.add_argument("--v2", action="store_true", help="also measure the Images API v2")
    parser.add_argument(
        "--hashing-algorithms",
        default="sha256",
        help="comma-separated [api] hashing_algorithm values; the first is measured in "
        "full, the others' uploads beside it (sha256)",
    )
    parser.add_argument(
        "--baseline", metavar="REV", help="also time uploads by revision REV's tank-api"
    )
    args = parser.parse_args()
    algorithms = tuple(a.strip() for a in args.hashing_algorithms.split(",") if a.strip())
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="tank-bench-api-", dir=args.dir))
    work.chmod(0o755)  # nginx's worker reads the source file from here
    print(f"work dir {work}, best of {args.runs}, {load_average()}")
    started = time.perf_counter()
    peaks = []
    try:
        for size in sizes:
            folder = work / human(size).replace(" ", "")
            m, others = measure(size, folder, args.runs, args.v2, algorithms, args.baseline)
            report(size, m)
            report_others(size, algorithms[0], m, others)
            peaks.append(m["rss_peak"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(peaks) > 1:
        print(f"\npeak RSS across sizes: {', '.join(f'{p:.1f}' for p in peaks)} MiB "
              f"(spread {max(peaks) - min(peaks):.1f} MiB)")  # fmt: skip
    print(f"done in {time.perf_counter() - started:.0f} s, {load_average()}")


if __name__ == "__main__":
    main()
