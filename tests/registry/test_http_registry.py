"""The Registry REST API: the contract suite through HttpRegistry against a live
tank-registry, and what happens when the registry misbehaves."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tank import errors
from tank.config import load
from tank.model import Context, Image, ListQuery, Status
from tank.plugins import make_plugin_manager
from tank.registry import Registry
from tank.registry_http.client import HttpRegistry, HttpRegistryConfig
from tank.service import ImageService
from tank.testing.api_server import find_script, free_port
from tank.testing.registry_contract import RegistryContract

ADMIN = Context.admin()


class RegistryServer:
    def __init__(self, data_dir: Path, *args: str) -> None:
        exe = find_script("tank-registry")
        if exe is None:
            pytest.skip("tank-registry is not installed (pip install -e tank_core)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"registry-{self.port}.log"
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
            assert self.proc.poll() is None, self.log.read_text()
            with contextlib.suppress(requests.RequestException):
                requests.get(self.url + "/images", timeout=1)
                return
            time.sleep(0.05)
        raise AssertionError("tank-registry did not start:\n" + self.log.read_text())

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path_factory.mktemp("registry") / "data")
    yield server
    server.stop()
    assert "unexpected error" not in server.log.read_text(), server.log.read_text()


def client(url: str, tmp_path: Path, **kw: float) -> HttpRegistry:
    return HttpRegistry(HttpRegistryConfig(url=url, **kw), data_dir=tmp_path)  # type: ignore[arg-type]


class TestHttpRegistryContract(RegistryContract):
    @pytest.fixture
    def registry(self, registry_server: RegistryServer, tmp_path: Path) -> Iterator[Registry]:
        url = os.environ.get("TANK_TEST_REGISTRY_URL") or registry_server.url
        reg = client(url, tmp_path)
        yield reg
        reg.close()


def test_registry_down_is_unavailable(tmp_path: Path) -> None:
    server = RegistryServer(tmp_path / "data")
    reg = client(server.url, tmp_path, timeout=2)
    image = reg.create(Image(name="before"))
    server.stop(kill=True)  # killed mid-flow
    with pytest.raises(errors.StoreUnavailable, match=server.url):
        reg.get(image.id, context=ADMIN)
    with pytest.raises(errors.StoreUnavailable, match="unreachable"):
        reg.create(Image(name="after"))


class _Misbehaving(BaseHTTPRequestHandler):
    mode = "garbage"

    def do_GET(self) -> None:
        if self.mode == "slow":
            time.sleep(3)
        self.send_response(200)
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"<html>oops")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("mode,message", [("garbage", "not JSON"), ("slow", "did not answer")])
def test_bad_and_slow_registries(tmp_path: Path, mode: str, message: str) -> None:
    handler = type("H", (_Misbehaving,), {"mode": mode})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        reg = client(f"http://127.0.0.1:{httpd.server_port}", tmp_path, timeout=0.5, retries=1)
        started = time.monotonic()
        with pytest.raises(errors.StoreUnavailable, match=message):
            reg.list(ListQuery(), context=ADMIN)
        assert time.monotonic() - started < 2.5
    finally:
        httpd.shutdown()


def test_service_over_http_registry(registry_server: RegistryServer, tmp_path: Path) -> None:
    config = load(data_dir=tmp_path, environ={})
    import attrs

    config = attrs.evolve(config, registry={"url": registry_server.url})
    with ImageService.from_config(config, make_plugin_manager()) as service:
        assert isinstance(service.registry, HttpRegistry)
        data = os.urandom(100_000)
        image = service.create({"name": "over-http"}, data=io.BytesIO(data), context=ADMIN)
        assert image.status is Status.ACTIVE
        _, stream = service.download(image.id, context=ADMIN)
        with stream:
            assert b"".join(stream) == data
        service.delete(image.id, context=ADMIN)
        assert not (tmp_path / "images" / image.id).exists()


@pytest.fixture(scope="module")
def pg_registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    import uuid

    import sqlalchemy as sa

    from tank.testing import require_env

    url = require_env("TANK_TEST_PG_URL")["TANK_TEST_PG_URL"]
    root = tmp_path_factory.mktemp("pg-registry")
    schema = f"http_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    config = root / "tank.toml"
    config.write_text(f'[registry]\nconnection = "{url}?options=-csearch_path%3D{schema}"\n')
    manage = find_script("tank-manage")
    assert manage is not None
    subprocess.run([manage, "db", "upgrade", "--config", str(config)], check=True)
    server = RegistryServer(root / "data", "--config", str(config))
    yield server
    server.stop()
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


class TestHttpRegistryOnPostgresContract(RegistryContract):
    @pytest.fixture
    def registry(self, pg_registry_server: RegistryServer, tmp_path: Path) -> Iterator[Registry]:
        reg = client(pg_registry_server.url, tmp_path)
        yield reg
        reg.close()
