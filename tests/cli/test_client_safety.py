"""The client against servers that are not tank-api (or not only): redirects, secrets in
the URL, servers that ignore Range, file modes. Found by a review; each test failed
before its fix."""

from __future__ import annotations

import base64
import hashlib
import io
import json
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
from tank.errors import ChecksumMismatch, Invalid

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
    if handler.path.startswith("/v2/"):
        return whole_image_v2(handler)
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(DATA)))
    handler.send_header("x-image-meta-id", IMAGE_ID)
    handler.send_header("x-image-meta-status", "active")
    handler.send_header("x-image-meta-size", str(len(DATA)))
    handler.end_headers()
    if handler.command == "GET":
        handler.wfile.write(DATA)


def v2_image(**changes: object) -> dict[str, object]:
    return {
        "id": IMAGE_ID,
        "status": "active",
        "visibility": "shared",
        "size": len(DATA),
        "checksum": hashlib.md5(DATA).hexdigest(),
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(DATA).hexdigest(),
        "tags": [],
        "self": f"/v2/images/{IMAGE_ID}",
        **changes,
    }


def whole_image_v2(handler: BaseHTTPRequestHandler, **changes: object) -> None:
    """A v2 server that ignores Range: ``.../file`` is the whole image with a 200."""
    if handler.path.endswith("/file"):
        body = DATA
        ctype = "application/octet-stream"
    else:
        body = json.dumps(v2_image(**changes)).encode()
        ctype = "application/json"
    handler.send_response(200)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command == "GET":
        handler.wfile.write(body)


@pytest.mark.parametrize("api_version", ["v2", "v1"])
def test_redirects_are_not_followed_and_the_token_stays_home(serve, api_version) -> None:  # type: ignore[no-untyped-def]
    thief = serve(whole_image)

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", f"{thief.url.replace('127.0.0.1', 'localhost')}/steal")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    api = serve(redirect)
    with Client(api.url, api=api_version, headers={"X-Auth-Token": "tok-SECRET"}) as client:
        with pytest.raises(HTTPError) as info:
            client.get(IMAGE_ID)
    assert info.value.status == 302
    assert thief.hits == []


@pytest.mark.parametrize("api_version", ["v2", "v1"])
def test_a_password_in_the_url_is_used_but_never_shown(serve, api_version) -> None:  # type: ignore[no-untyped-def]
    api = serve(whole_image)
    port = api.server_address[1]
    with Client(f"http://admin:hunter2@127.0.0.1:{port}", api=api_version) as client:
        assert client.get(IMAGE_ID).id == IMAGE_ID
        assert "hunter2" not in repr(client) and "hunter2" not in client.url
    assert api.hits[0]["Authorization"] == "Basic " + base64.b64encode(b"admin:hunter2").decode()
    with Client("http://admin:hunter2@127.0.0.1:1", api=api_version) as dead:
        with pytest.raises(ConnectionFailed) as info:
            dead.get(IMAGE_ID)
    assert "hunter2" not in str(info.value)
    result = CliRunner().invoke(
        cli, ["--url", "http://admin:hunter2@127.0.0.1:1", "--api", api_version, "index"]
    )
    assert result.exit_code == 1 and "hunter2" not in result.output + result.stderr


@pytest.mark.parametrize("api_version", ["v2", "v1"])
@pytest.mark.parametrize("offset,length", [(10, 5), (1000, None), (0, 3), (1020, 100)])
def test_a_server_that_ignores_range_still_gives_the_range(
    serve, offset, length, api_version
) -> None:  # type: ignore[no-untyped-def]
    api = serve(whole_image)
    with (
        Client(api.url, api=api_version) as client,
        client.download(IMAGE_ID, offset=offset, length=length) as download,
    ):
        got = b"".join(download)
    end = None if length is None else offset + length
    assert got == DATA[offset:end]
    assert download.size == len(got)


def test_v2_download_checks_the_multihash_too(serve) -> None:  # type: ignore[no-untyped-def]
    """The MD5 matches but the image's sha512 does not: the download fails."""
    wrong = hashlib.sha512(b"other data").hexdigest()
    api = serve(lambda handler: whole_image_v2(handler, os_hash_value=wrong))
    with Client(api.url) as client:
        with pytest.raises(ChecksumMismatch, match="sha512"):
            client.download(IMAGE_ID).read_all()
        assert client.download(IMAGE_ID, verify=False).read_all() == DATA
    good = serve(whole_image_v2)
    with Client(good.url) as client:
        assert client.download(IMAGE_ID).read_all() == DATA
    unknown = serve(lambda handler: whole_image_v2(handler, os_hash_algo="no-such-hash"))
    with Client(unknown.url) as client:
        with pytest.raises(Invalid, match="no-such-hash"):
            client.download(IMAGE_ID).read_all()


def test_v2_download_without_a_checksum_uses_content_md5(serve) -> None:  # type: ignore[no-untyped-def]
    def answer(handler: BaseHTTPRequestHandler) -> None:
        if not handler.path.endswith("/file"):
            return whole_image_v2(handler, checksum=None, os_hash_algo=None, os_hash_value=None)
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(DATA)))
        handler.send_header("Content-MD5", hashlib.md5(b"not the data").hexdigest())
        handler.end_headers()
        handler.wfile.write(DATA)

    api = serve(answer)
    with Client(api.url) as client, pytest.raises(ChecksumMismatch):
        client.download(IMAGE_ID).read_all()


@pytest.mark.parametrize("api_version", ["v2", "v1"])
def test_downloaded_files_get_the_usual_mode(
    api: ApiServer, tmp_path: Path, api_version: str
) -> None:
    with Client(api.url, api=api_version) as client:
        image = client.create(
            io.BytesIO(b"x" * 100), name="mode", disk_format="raw", container_format="bare"
        )
        old = os.umask(0o027)
        try:
            client.download_to(image.id, tmp_path / "out.img")
        finally:
            os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.img").stat().st_mode) == 0o640


def test_clear_with_a_token_needs_to_know_the_tenant(api: ApiServer) -> None:
    result = CliRunner().invoke(cli, ["--url", api.url, "--auth-token", "t", "clear", "--force"])
    assert result.exit_code == 2 and "X-Tenant-Id" in result.output + result.stderr
