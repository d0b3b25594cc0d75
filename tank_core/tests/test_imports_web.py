"""web-download's fetch against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tank import errors
from tank.imports import web
from tank.net import hosts

DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: more than one chunk


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: list[str] = []
        self.release = threading.Event()
        self.port = self.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early are part of the tests


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        self.server.hits.append(parts.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        if parts.path == "/image":
            self._send(200, DATA)
        elif parts.path.startswith("/status/"):
            self._send(int(parts.path.rsplit("/", 1)[1]), b"no")
        elif parts.path == "/to":
            self.send_response(302)
            self.send_header("Location", query["url"])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/unannounced":  # no Content-Length: the size shows as it comes
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(8):
                self.wfile.write(DATA)
        elif parts.path == "/short":  # announces more than it sends
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA) * 2))
            self.end_headers()
            self.wfile.write(DATA)
            self.close_connection = True
        elif parts.path == "/trickle":  # one byte at a time, each well within any timeout
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                if self.server.release.wait(0.02):
                    break
                self.wfile.write(b"x")
                self.wfile.flush()
            self.close_connection = True
        elif parts.path == "/stall":  # answers only when the test releases it
            self.server.release.wait(10)
            self._send(200, b"late")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def fetch(url: str, *, allow: bool = True, max_size: int = 1 << 30, timeout: float = 10) -> bytes:
    with web.fetch(url, allow_private_networks=allow, max_size=max_size, timeout=timeout) as s:
        return b"".join(s)


def test_fetches_the_bytes_in_chunks(server: Server) -> None:
    stream = web.fetch(
        server.url("/image"), allow_private_networks=True, max_size=len(DATA), timeout=10
    )
    assert stream.size == len(DATA)
    chunks = list(stream)
    stream.close()
    assert len(chunks) > 1
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(DATA).digest()


def test_loopback_is_refused_unless_allowed(server: Server) -> None:
    for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
        with pytest.raises(errors.Forbidden, match=r"allow_private_networks.*\[import\]"):
            fetch(server.url("/image", host=host), allow=False)
    assert server.hits == []
    assert fetch(server.url("/image"), allow=True) == DATA


def test_a_redirect_to_a_private_address_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = hosts.non_public_reason
    monkeypatch.setattr(
        hosts, "non_public_reason", lambda a: None if str(a) == "127.0.0.1" else real(a)
    )
    assert fetch(server.url("/image"), allow=False) == DATA  # 127.0.0.1 now counts as public
    server.hits.clear()
    target = server.url("/image", host="127.0.0.2")
    with pytest.raises(errors.Forbidden, match="redirected to"):
        fetch(server.url(f"/to?url={target}"), allow=False)
    assert server.hits == ["/to"]


def test_redirects_are_followed_a_few_times(server: Server) -> None:
    assert fetch(server.url(f"/to?url={server.url('/image')}")) == DATA
    with pytest.raises(errors.FetchFailed, match="redirected more than"):
        fetch(server.url("/loop"))


@pytest.mark.parametrize("status", [404, 403, 500, 204])
def test_non_2xx_answers_fail(server: Server, status: int) -> None:
    if status == 204:
        assert fetch(server.url("/status/204")) == b""  # a 2xx is data, even empty
        return
    with pytest.raises(errors.FetchFailed, match=f"HTTP {status}"):
        fetch(server.url(f"/status/{status}"))


def test_too_large_announced_fails_before_reading(server: Server) -> None:
    with pytest.raises(errors.ImageTooLarge, match=f"{len(DATA)} bytes, more than"):
        web.fetch(server.url("/image"), allow_private_networks=True, max_size=1000, timeout=10)


def test_too_large_unannounced_fails_at_the_cap(server: Server) -> None:
    received = 0
    with pytest.raises(errors.ImageTooLarge, match="larger than the"):
        with web.fetch(
            server.url("/unannounced"),
            allow_private_networks=True,
            max_size=3 * len(DATA),
            timeout=10,
        ) as stream:
            for chunk in stream:
                received += len(chunk)
    assert received <= 3 * len(DATA)


def test_a_body_cut_short_fails(server: Server) -> None:
    with pytest.raises(errors.FetchFailed, match="broke after"):
        fetch(server.url("/short"))


def test_a_server_that_sends_nothing_times_out(server: Server) -> None:
    with pytest.raises(errors.FetchFailed, match="sent nothing in time"):
        fetch(server.url("/stall"), timeout=0.3)


def test_a_trickling_server_is_stopped_at_the_deadline(server: Server) -> None:
    received = 0
    with pytest.raises(errors.FetchFailed, match="took longer than allowed"):
        with web.fetch(
            server.url("/trickle"),
            allow_private_networks=True,
            max_size=1 << 20,
            timeout=10,
            deadline=0.2,
        ) as stream:
            for chunk in stream:
                received += len(chunk)
    assert received < 1000  # stopped long before the server was done


def test_unreachable_host_fails(server: Server) -> None:
    srv = Server()  # bound, never listening to requests after close: connection refused
    url = srv.url("/image")
    srv.server_close()
    with pytest.raises(errors.FetchFailed, match="cannot reach"):
        fetch(url)


@pytest.mark.parametrize(
    "uri,match",
    [
        ("file:///etc/passwd", "http:// or https://"),
        ("ftp://example.com/x.img", "http:// or https://"),
        ("http:///nohost", "http:// or https://"),
        ("https://user:secret@example.com/x.img", "credentials"),
        ("http://example.com:99999/x", "not a valid URL"),
    ],
)
def test_only_plain_http_urls(uri: str, match: str) -> None:
    with pytest.raises(errors.Invalid, match=match) as refused:
        web.check_uri(uri)
    assert "secret" not in str(refused.value)
