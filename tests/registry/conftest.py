"""Registries to talk to over HTTP: a real ``tank-registry`` process, the REST app in a
thread over a registry of the test's choosing, and tiny servers that misbehave."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.config import load
from tank.plugins import make_plugin_manager
from tank.registry import Registry
from tank.registry_http.client import HttpRegistry
from tank.registry_http.server import make_registry_app
from tank.service import open_registry
from tank.testing import free_port
from tank.testing.api_server import find_script
from tank.testing.postgresql import db_upgrade, pg_schema
from tank.web.server import HttpServer


class RegistryProcess:
    """One ``tank-registry`` on a free loopback port."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        exe = find_script("tank-registry")
        if exe is None:
            pytest.skip("tank-registry is not installed (pip install -e tank_core)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"tank-registry-{self.port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [exe, "--port", str(self.port), "--data-dir", str(data_dir), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"tank-registry exited:\n{self.log.read_text()}")
            with contextlib.suppress(requests.RequestException):
                requests.get(self.url + "/images", timeout=1)
                return
            time.sleep(0.05)
        self.stop(kill=True)
        pytest.fail(f"tank-registry did not start:\n{self.log.read_text()}")

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def check_log(self) -> None:
        """No request may have been answered 500."""
        text = self.log.read_text()
        assert "unexpected error" not in text, text[-4000:]


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """A tank-registry on its embedded SQLite default, shared by the session."""
    server = RegistryProcess(tmp_path_factory.mktemp("registry") / "data")
    yield server
    server.stop()
    server.check_log()


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator[Callable[..., RegistryProcess]]:
    """``start_registry(*args)``: a tank-registry of the test's own (to kill, stop...),
    never left running after the test."""
    started: list[RegistryProcess] = []

    def start(*args: str) -> RegistryProcess:
        started.append(RegistryProcess(tmp_path / f"registry-{len(started)}" / "data", *args))
        return started[-1]

    yield start
    for process in started:
        process.stop(kill=True)


@pytest.fixture(scope="session")
def pg_registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """A tank-registry on PostgreSQL, in a schema of its own that ``tank-manage db
    upgrade`` migrates first (as an operator would)."""
    with pg_schema("http") as dsn:
        root = tmp_path_factory.mktemp("pg-registry")
        config = root / "tank.toml"
        config.write_text(f'[registry]\nconnection = "{dsn}"\n')
        db_upgrade(config)
        server = RegistryProcess(root / "data", "--config", str(config))
        yield server
        server.stop()
        server.check_log()


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """``app`` on Tank's HTTP server in this process, on a free loopback port; yields
    its URL."""
    with HttpServer(app, threads=8, shutdown_timeout=1).running() as server:
        yield f"http://127.0.0.1:{server.port}"


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """``serve(app)``: the URL of ``app`` served in this process until the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_app(app))


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[Registry]:
    """The SQL registry (embedded SQLite) in this process."""
    config = load(data_dir=tmp_path / "registry", environ={})
    registry = open_registry(config, make_plugin_manager())
    yield registry
    registry.close()


@pytest.fixture
def served(local_registry: Registry) -> Iterator[str]:
    """The URL of the REST app over ``local_registry``."""
    with serve_app(make_registry_app(local_registry)) as url:
        yield url


@pytest.fixture
def connect(tmp_path: Path) -> Iterator[Callable[..., HttpRegistry]]:
    """``connect(url, **config)``: an HttpRegistry, closed after the test."""
    opened: list[HttpRegistry] = []

    def make(url: str, **config: Any) -> HttpRegistry:
        registry = HttpRegistry(HttpRegistry.Config(url=url, **config), data_dir=tmp_path)
        opened.append(registry)
        return registry

    yield make
    for registry in opened:
        registry.close()


class Scripted:
    """A loopback HTTP server answering every request with one canned reply (or by
    holding it until released, or by hanging up), counting the requests it received."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.body = b"{}"
        #: Cleared, the server holds every answer until it is set again.
        self.answering = threading.Event()
        self.answering.set()
        self.hang_up = False
        self.requests: list[str] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                scripted.requests.append(f"{self.command} {self.path}")
                if scripted.hang_up:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                scripted.answering.wait()
                self.send_response(scripted.status)
                for key, value in scripted.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(scripted.body)))
                self.end_headers()
                self.wfile.write(scripted.body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.answering.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()
