"""A real ``tank-api`` process on a free loopback port, as a user would start it.

One server serves the whole module (tests keep apart by unique names and properties);
tests that must see an empty Tank (``clear``) start their own with ``start_api``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tank.client import Client

STARTUP_TIMEOUT = 20.0


def find_script(name: str) -> str | None:
    """A console script of this Python's environment (the venv's bin), else on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiServer:
    """One running tank-api: its URL, data dir and log."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
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
        self.proc = subprocess.Popen(
            [exe, "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(data_dir)],
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
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"tank-api did not answer on {self.url} in {STARTUP_TIMEOUT} s:\n{self.log()}")

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


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("tank-api")
    server = ApiServer(root / "data", root / "tank-api.log")
    yield server
    server.stop()


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[[], ApiServer]]:
    servers: list[ApiServer] = []

    def start() -> ApiServer:
        n = len(servers)
        server = ApiServer(tmp_path / f"data{n}", tmp_path / f"tank-api{n}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client(api: ApiServer) -> Iterator[Client]:
    with Client(api.url) as c:
        yield c


@pytest.fixture
def tag() -> str:
    """A unique value for a property, so a test lists only the images it made."""
    return uuid.uuid4().hex


@pytest.fixture
def tank_script() -> str:
    tank = find_script("tank")
    assert tank is not None, "the tank console script is not installed (pip install -e tank_core)"
    return tank


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"
