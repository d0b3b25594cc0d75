"""Fixtures of the interoperable import tests: a real tank-api with two file stores
(``file``, the default, and ``second``), a short import lease, web-download allowed to
reach loopback, and a local web server to download from."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.testing.api_server import ApiServer, stop_all

JSON = {"Content-Type": "application/json"}
OCTETS = {"Content-Type": "application/octet-stream"}
#: What a slow download sends before it stalls (the rest comes when released).
SLOW_HEAD = 256 * 1024


class WebServer(ThreadingHTTPServer):
    """Serves ``files[path]``; ``/slow`` sends SLOW_HEAD bytes of a larger body, sets
    ``sending``, and waits for ``release``; anything else is a 404."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.sending = threading.Event()
        self.release = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a tank-api killed mid-download hangs up: expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: WebServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", str(SLOW_HEAD * 4))
            self.end_headers()
            self.wfile.write(b"s" * SLOW_HEAD)
            self.wfile.flush()
            self.server.sending.set()
            self.server.release.wait(60)
            self.wfile.write(b"s" * SLOW_HEAD * 3)
            return
        body = self.server.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def web() -> Iterator[WebServer]:
    server = WebServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


class Tank:
    """One tank-api and where its data lives."""

    def __init__(self, server: ApiServer, root: Path) -> None:
        self.server = server
        self.url = server.url
        self.root = root
        self.staging = server.data_dir / "staging"
        self.store_dirs = {"file": root / "store-file", "second": root / "store-second"}
        #: Identity headers of the polling in :meth:`wait` (with --auth).
        self.headers: dict[str, str] = {}

    def create(self, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
        fields.setdefault("disk_format", "raw")
        fields.setdefault("container_format", "bare")
        resp = requests.post(
            f"{self.url}/v2/images", json=fields, headers=headers or {}, timeout=10
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def show(self, image_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        resp = requests.get(
            f"{self.url}/v2/images/{image_id}", headers=headers or self.headers, timeout=10
        )
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def stage(self, image_id: str, data: bytes, **headers: str) -> requests.Response:
        return requests.put(
            f"{self.url}/v2/images/{image_id}/stage",
            data=data,
            headers={**OCTETS, **headers},
            timeout=30,
        )

    def import_(self, image_id: str, body: dict[str, Any], **headers: str) -> requests.Response:
        return requests.post(
            f"{self.url}/v2/images/{image_id}/import",
            json=body,
            headers={**JSON, **headers},
            timeout=30,
        )

    def wait(
        self, image_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """Poll until ``done(image)``; a deadline for the test, not a speed measure."""
        end = time.monotonic() + timeout
        while True:
            image = self.show(image_id)
            if done(image):
                return image
            if time.monotonic() > end:
                raise AssertionError(f"image never got there: {image}\n{self.server.log()}")
            time.sleep(0.05)

    def settled(self, image_id: str) -> dict[str, Any]:
        """Wait until no import of the image is in flight."""
        return self.wait(
            image_id,
            lambda i: "os_glance_import_task" not in i and i["status"] != "importing",
        )

    def download(self, image_id: str) -> bytes:
        resp = requests.get(f"{self.url}/v2/images/{image_id}/file", timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.content

    def files(self, store: str) -> list[str]:
        directory = self.store_dirs[store]
        return sorted(p.name for p in directory.iterdir()) if directory.exists() else []

    def staged(self) -> list[str]:
        return sorted(p.name for p in self.staging.iterdir()) if self.staging.exists() else []


def write_config(root: Path, extra: str = "") -> Path:
    private = "" if "allow_private_networks" in extra else "allow_private_networks = true"
    config = root / "tank.toml"
    config.write_text(
        f"""
default_store = "file"
[stores.file]
datadir = "{root / "store-file"}"
[stores.second]
type = "file"
datadir = "{root / "store-second"}"
[import]
{private}
lease_seconds = 2
{extra}
"""
    )
    return config


@pytest.fixture
def start_tank(tmp_path: Path) -> Iterator[Callable[..., Tank]]:
    """``start_tank(import_extra="", *args)``: a tank-api with the two stores; extra
    lines go at the end of its ``[import]`` table."""
    servers: list[ApiServer] = []

    def start(extra: str = "", *args: str) -> Tank:
        root = tmp_path / f"tank{len(servers)}"
        root.mkdir()
        config = write_config(root, extra)
        server = ApiServer(root / "data", root / "tank-api.log", ["--config", str(config), *args])
        servers.append(server)
        return Tank(server, root)

    yield start
    stop_all(servers)


@pytest.fixture
def tank(start_tank: Callable[..., Tank]) -> Tank:
    return start_tank()


def digests(data: bytes) -> tuple[str, str]:
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
