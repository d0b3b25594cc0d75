"""A real ``tank-api`` process on a free loopback port, for end-to-end tests.

Used by Tank's own tests and available to plugin authors who want to test their store
behind the HTTP API::

    from tank.testing.api_server import ApiServer
    server = ApiServer(tmp_path / "data", tmp_path / "tank-api.log", ["--config", cfg])
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pytest
import requests

from tank.testing.ports import free_port

STARTUP_TIMEOUT = 60.0  # a deadline, not a speed measure: shared CI machines get slow


def find_script(name: str) -> str | None:
    """A console script of this Python's environment (the venv's bin), else on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on ``port``: with other test
    runs on the machine, whoever answers on a free port just picked may be someone else
    (our tank-api then fails to bind and exits). True where /proc cannot tell."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            return True
        for line in lines:
            fields = line.split()
            if fields[1].rsplit(":", 1)[1] == f"{port:04X}" and fields[3] == "0A":
                inodes.add(fields[9])
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return True
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for fd in fds:
        with contextlib.suppress(OSError):  # closed since listed
            if os.readlink(fd) in wanted:
                return True
    return False


def child_pids(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``: a tank-api's workers."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


class ApiServer:
    """One running tank-api: its URL, data dir and log. One worker process (behind
    tank-api's supervisor) unless ``args`` say ``--workers``."""

    def __init__(self, data_dir: Path, log_path: Path, args: Sequence[str] = ()) -> None:
        exe = find_script("tank-api")
        if exe is None:
            pytest.skip(
                "tank-api is not installed in this environment "
                "(pip install -e tank_core -e tank_store_fs -e tank_registry_sql)"
            )
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
        self._log = open(log_path, "wb")
        if not any(a == "--workers" or a.startswith("--workers=") for a in args):
            args = ["--workers", "1", *args]
        self.proc = subprocess.Popen(
            [
                exe,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"tank-api exited with status {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(requests.RequestException):
                requests.get(self.url + "/versions", timeout=1)
                if _listens(self.proc.pid, self.port):
                    return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"tank-api did not answer on {self.url} in {STARTUP_TIMEOUT} s:\n{self.log()}")

    def pids(self) -> list[int]:
        """tank-api's process (the supervisor) and its workers."""
        return [self.proc.pid, *sorted(child_pids(self.proc.pid))]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def stop_checked(server: ApiServer) -> None:
    """Stop ``server``; its whole log must show no 500 (each is logged as an
    "unexpected error")."""
    server.stop()
    log = server.log_path.read_text(errors="replace")
    assert "unexpected error" not in log, "tank-api answered 500:\n" + log[-6000:]


def stop_all(servers: Iterable[ApiServer]) -> None:
    """Stop each of ``servers``; the end of each one's log (:meth:`ApiServer.log`) must
    show no 500."""
    for server in servers:
        server.stop()
        assert "unexpected error" not in server.log(), server.log()


def stored_image(
    server: ApiServer,
    data: bytes,
    name: str,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> str:
    """A new active image holding ``data``, created and uploaded through v2 (``headers``:
    who asks, for ``--auth``): its id."""
    meta = {"name": name, "disk_format": "raw", "container_format": "bare"}
    who = dict(headers or {})
    made = requests.post(f"{server.url}/v2/images", json=meta, headers=who, timeout=timeout)
    assert made.status_code == 201, made.text
    image_id = str(made.json()["id"])
    put = requests.put(
        f"{server.url}/v2/images/{image_id}/file",
        data=data,
        headers={**who, "Content-Type": "application/octet-stream"},
        timeout=timeout,
    )
    assert put.status_code == 204, put.text
    return image_id
