"""Helpers shared by the tank-api benchmarks: sizes, test files, timing, a tank-api process.

Not a benchmark itself. The scripts in ``bench/`` import it as ``_common`` (Python puts
the script's folder first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

MiB = 1 << 20
GiB = 1 << 30
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
IMAGE_HEADERS = {
    "x-image-meta-disk_format": "raw",
    "x-image-meta-container_format": "bare",
}


def parse_size(text: str) -> int:
    """``1G``, ``512M``, ``1.5G``, ``4096`` (binary units; a trailing ``iB``/``B`` is ok)."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1] if value and value[-1] in UNITS else ""
    try:
        size = int(float(value[: len(value) - len(unit)]) * UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1G, 256M)") from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return size


def human(size: int) -> str:
    return f"{size / GiB:g} GiB" if size >= GiB else f"{size / MiB:g} MiB"


def make_file(path: Path, size: int) -> str:
    """Write ``size`` random-looking bytes (a repeated 16 MiB block), fsynced; their MD5."""
    block = os.urandom(16 * MiB)
    md5 = hashlib.md5()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            f.write(piece)
            md5.update(piece)
            left -= len(piece)
        f.flush()
        os.fsync(f.fileno())
    return md5.hexdigest()


def md5_seconds(path: Path) -> float:
    """Wall seconds to MD5 ``path`` in this process, 1 MiB at a time: an upload's floor,
    since Glance v1 needs the MD5 of every byte before an image becomes active."""
    md5 = hashlib.md5()
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(MiB):
            md5.update(chunk)
    return time.perf_counter() - start


def hashes_cpu_seconds(path: Path, multihash: str = "sha256") -> float:
    """CPU seconds of this process to compute MD5 and the multihash of ``path`` (what
    every upload must spend on its checksums), 1 MiB at a time from the page cache."""
    md5, other = hashlib.md5(), hashlib.new(multihash)
    before = resource.getrusage(resource.RUSAGE_SELF)
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(MiB)
        while n := f.readinto(buf):
            view = memoryview(buf)[:n]
            md5.update(view)
            other.update(view)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``fn`` over ``repeat`` calls (after one warm-up call)."""
    fn()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def warm(path: Path) -> None:
    """Read ``path`` once so every reader finds it in the page cache."""
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)


def timed_shell(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=True)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"{what} did not listen on port {port} in 30 s:\n{tail(log)}")


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def proc_status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/PID/status, e.g. ``VmHWM`` (peak RSS) or ``VmRSS``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def machine_cpu_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (``/proc/stat``: not idle/iowait)."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reaped_cpu_seconds(pid: int) -> float:
    """CPU seconds of the children ``pid`` waited for (``cutime + cstime``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> set[int]:
    """Live child processes of ``pid``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == str(pid) and fields[0] != "Z":
                found.add(int(stat.parent.name))
    return found


def curl(*args: str) -> tuple[float, str]:
    """Run curl (errors fatal, body to stdout unless ``-o``); wall seconds and stdout."""
    start = time.perf_counter()
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", *args], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"curl {' '.join(args)} failed ({done.returncode}): {done.stderr}{done.stdout}")
    return elapsed, done.stdout


class TankApi:
    """A ``tank-api`` process of this Python's environment on a free loopback port."""

    def __init__(
        self,
        data_dir: Path,
        config: str | None = None,
        pythonpath: Sequence[Path] = (),
        workers: int | None = None,
    ) -> None:
        """``pythonpath``: source folders imported before this environment's (another
        revision's ``tank`` and plugins, to compare revisions in one run). ``workers``:
        ``--workers`` (None: tank-api's default, the CPU count; 0: one process).

        With workers, CPU seconds are the whole process tree's, and RSS figures the
        largest process's (a worker: the one that served a transfer)."""
        exe = Path(sys.executable).parent / "tank-api"
        if not exe.exists():
            sys.exit(f"{exe} is missing: pip install -e tank_core -e tank_store_fs ...")
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "tank-api.log"
        args = [str(exe), "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--data-dir", str(data_dir), "--log-level", "WARNING"]
        if workers is not None:
            args += ["--workers", str(workers)]
        self.workers = workers
        if config is not None:
            config_path = data_dir / "tank.toml"
            config_path.write_text(config)
            args += ["--config", str(config_path)]
        # the caller's TANK_* settings stay out, except which plugins to leave unloaded
        # (a baseline revision may predate an installed plugin's kind)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TANK_") or k == "TANK_DISABLE_PLUGINS"
        }
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_for_port(self.port, self.proc, "tank-api", self.log)
        self._wait_workers()
        self.rss_ready_kib = max(proc_status_kib(p, "VmRSS") for p in self.pids())

    def _wait_workers(self) -> None:
        """Until a worker answers (the supervisor's socket accepts before any serves) and,
        with ``workers``, that many run."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"tank-api exited with status {self.proc.returncode}:\n{tail(self.log)}")
            enough = not self.workers or len(children(self.proc.pid)) >= self.workers
            if enough:
                try:
                    urllib.request.urlopen(f"{self.url}/versions", timeout=30).close()
                except urllib.error.HTTPError:  # 300 Multiple Choices: it answered
                    pass
                except OSError:
                    time.sleep(0.1)
                    continue
                if not self.workers or self._all_answer():
                    return
            time.sleep(0.1)
        sys.exit(f"tank-api's workers did not start in 120 s:\n{tail(self.log)}")

    def _all_answer(self) -> bool:
        """Every worker answered one of a few healthchecks (each says its pid)."""
        seen = set()
        for _ in range(10 * (self.workers or 1)):
            with urllib.request.urlopen(f"{self.url}/healthcheck?detail", timeout=30) as r:
                seen.add(json.load(r)["pid"])
            if seen >= children(self.proc.pid):
                return True
        return False

    def pids(self) -> list[int]:
        """tank-api's process and its workers."""
        return [self.proc.pid, *sorted(children(self.proc.pid))]

    def peak_rss_kib(self) -> int:
        """The largest peak RSS (VmHWM) of tank-api's processes."""
        return max(proc_status_kib(p, "VmHWM") for p in self.pids())

    def reset_peak_rss(self) -> bool:
        """Start VmHWM again from the current RSS (Linux ``clear_refs``); False if not allowed."""
        try:
            for pid in self.pids():
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def cpu_seconds(self) -> float:
        """CPU seconds of tank-api's processes (workers that exited included)."""
        return sum(cpu_seconds(p) for p in self.pids()) + reaped_cpu_seconds(self.proc.pid)

    def upload(
        self, path: Path, name: str, store: str | None = None
    ) -> tuple[float, dict[str, Any]]:
        """``curl -X POST -T FILE`` as users do (Expect: 100-continue left on)."""
        headers = {"x-image-meta-name": name, **IMAGE_HEADERS}
        if store:
            headers["x-image-meta-store"] = store
        args = ["-X", "POST", "-T", str(path)]
        for key, value in headers.items():
            args += ["-H", f"{key}: {value}"]
        seconds, body = curl(*args, f"{self.url}/v1/images")
        return seconds, json.loads(body)["image"]

    def download(self, image_id: str, out: str = "/dev/null") -> float:
        return curl("-o", out, f"{self.url}/v1/images/{image_id}")[0]

    def upload_v2(self, path: Path, name: str) -> tuple[float, dict[str, Any]]:
        """Images API v2 as its clients upload: ``POST /v2/images`` (JSON), then ``curl -T``
        to ``PUT /v2/images/<id>/file``; timed together, as v1's one request is."""
        body = json.dumps({"name": name, "disk_format": "raw", "container_format": "bare"})
        started = time.perf_counter()
        _, created = curl(
            "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body,
            f"{self.url}/v2/images",
        )  # fmt: skip
        image_id = json.loads(created)["id"]
        curl(
            "-X", "PUT", "-T", str(path), "-H", "Content-Type: application/octet-stream",
            f"{self.url}/v2/images/{image_id}/file",
        )  # fmt: skip
        seconds = time.perf_counter() - started
        return seconds, json.loads(curl(f"{self.url}/v2/images/{image_id}")[1])

    def download_v2(self, image_id: str, out: str = "/dev/null") -> float:
        return curl("-o", out, f"{self.url}/v2/images/{image_id}/file")[0]

    def delete(self, image_id: str) -> None:
        curl("-X", "DELETE", f"{self.url}/v1/images/{image_id}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> TankApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def nginx(root: Path, work: Path) -> Iterator[str]:
    """nginx serving ``root`` on a free loopback port with sendfile; yields its URL."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(exe).exists():
        sys.exit("nginx is missing: apt-get install -y nginx-light")
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    temps = " ".join(
        f"{kind}_temp_path {work / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    (work / "nginx.conf").write_text(
        f"""{user}
daemon off;
worker_processes 1;
pid {work / "nginx.pid"};
error_log {work / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    {temps}
    uwsgi_temp_path {work / "uwsgi"}; scgi_temp_path {work / "scgi"};
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""
    )
    log = work / "error.log"
    proc = subprocess.Popen(
        [exe, "-p", str(work), "-c", str(work / "nginx.conf"), "-e", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc, "nginx", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def best(times: Sequence[float]) -> float:
    return min(times)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"
