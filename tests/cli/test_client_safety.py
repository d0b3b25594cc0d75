"""The client against servers that are not tank-api (or not only): redirects, secrets in
the URL, servers that ignore Range, file modes. Found by a review; each test failed
before its fix."""

from __future__ import annotations

import base64
import io
import os
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from tank.cli.main import cli
from tank.client import Client, ConnectionFailed, HTTPError

from .conftest import ApiServer

IMAGE_ID = str(uuid.uuid4())
DATA = bytes(range(256)) * 4


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer = answer
        self.hits: list[dict[str, str]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        self.server.hits.append(dict(self.headers))
        self.server.answer(self)

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], Recorder]]:
    servers: list[Recorder] = []

    def start(answer: Callable[[BaseHTTPRequestHandler], None]) -> Recorder:
        server = Recorder(answer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def whole_image(handler: BaseHTTPRequestHandler) -> None:
    """Glance v1 style: Range ignored, the whole image with a 200."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(DATA)))
    handler.send_header("x-image-meta-id", IMAGE_ID)
    handler.send_header("x-image-meta-status", "active")
    handler.send_header("x-image-meta-size", str(len(DATA)))
    handler.end_headers()
    if handler.command == "GET":
        handler.wfile.write(DATA)


def test_redirects_are_not_followed_and_the_token_stays_home(serve) -> None:  # type: ignore[no-untyped-def]
    thief = serve(whole_image)

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", f"{thief.url.replace('127.0.0.1', 'localhost')}/steal")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    api = serve(redirect)
    with Client(api.url, headers={"X-Auth-Token": "tok-SECRET"}) as client:
        with pytest.raises(HTTPError) as info:
            client.get(IMAGE_ID)
    assert info.value.status == 302
    assert thief.hits == []


def test_a_password_in_the_url_is_used_but_never_shown(serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(whole_image)
    port = api.server_address[1]
    with Client(f"http://admin:hunter2@127.0.0.1:{port}") as client:
        assert client.get(IMAGE_ID).id == IMAGE_ID
        assert "hunter2" not in repr(client) and "hunter2" not in client.url
    assert api.hits[0]["Authorization"] == "Basic " + base64.b64encode(b"admin:hunter2").decode()
    with Client("http://admin:hunter2@127.0.0.1:1") as dead:
        with pytest.raises(ConnectionFailed) as info:
            dead.get(IMAGE_ID)
    assert "hunter2" not in str(info.value)
    result = CliRunner().invoke(cli, ["--url", "http://admin:hunter2@127.0.0.1:1", "index"])
    assert result.exit_code == 1 and "hunter2" not in result.output + result.stderr


@pytest.mark.parametrize("offset,length", [(10, 5), (1000, None), (0, 3), (1020, 100)])
def test_a_server_that_ignores_range_still_gives_the_range(serve, offset, length) -> None:  # type: ignore[no-untyped-def]
    api = serve(whole_image)
    with (
        Client(api.url) as client,
        client.download(IMAGE_ID, offset=offset, length=length) as download,
    ):
        got = b"".join(download)
    end = None if length is None else offset + length
    assert got == DATA[offset:end]
    assert download.size == len(got)


def test_downloaded_files_get_the_usual_mode(api: ApiServer, tmp_path: Path) -> None:
    with Client(api.url) as client:
        image = client.create(io.BytesIO(b"x" * 100), name="mode")
        old = os.umask(0o027)
        try:
            client.download_to(image.id, tmp_path / "out.img")
        finally:
            os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.img").stat().st_mode) == 0o640


def test_clear_with_a_token_needs_to_know_the_tenant(api: ApiServer) -> None:
    result = CliRunner().invoke(cli, ["--url", api.url, "--auth-token", "t", "clear", "--force"])
    assert result.exit_code == 2 and "X-Tenant-Id" in result.output + result.stderr
