"""A real HTTP(S) server on loopback, serving files from a temporary directory.

Routes (``<name>`` is a file in ``server.root``):

* ``/files/<name>``    GET/HEAD with single-range ``Range`` support (206, 416)
* ``/norange/<name>``  ignores ``Range`` (always 200 with the whole file)
* ``/nohead/<name>``   HEAD answers 405; GET as ``/files``
* ``/nolength/<name>`` HEAD has no Content-Length; GET as ``/files``
* ``/short/<name>``    announces the whole length, sends half, hangs up
* ``/slow/<name>``     waits a second before answering
* ``/auth/<name>``     needs basic auth ``tank:s3cret``
* ``/redirect/<n>/<route>/<name>``  n redirects, then ``/<route>/<name>``
* ``/to?url=<url>&code=302``        one redirect to ``url``
* ``/loop``            redirects to itself
* ``/status/<code>``   answers with that status
* ``/firstten/<name>`` answers any Range with 206 and bytes 0-9 (a broken server)
* ``/oddlength``       HEAD and GET say ``Content-Length: ²`` (a digit to str.isdigit)
* ``/trickle``         sends its headers a byte every 0.2 s (for 4 s at most)

Requests for absolute URLs (``GET http://host/path``) are served as a proxy would, and
marked ``proxied`` in ``server.hits``, the list of every request received.
"""

from __future__ import annotations

import base64
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import attrs
import pytest

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@attrs.define
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    proxied: bool


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)
        self.root = root
        self.hits: list[Hit] = []
        #: Set once ``/trickle`` has sent its whole answer.
        self.trickled = threading.Event()
        self.scheme = "https" if context else "http"
        self.port = self.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}/{path.lstrip('/')}"

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early are part of the tests


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        parts = urllib.parse.urlsplit(self.path)
        proxied = bool(parts.scheme)
        self.server.hits.append(Hit(self.command, parts.path, dict(self.headers), proxied))
        route, _, rest = parts.path.lstrip("/").partition("/")
        query = dict(urllib.parse.parse_qsl(parts.query))
        if route == "files":
            self._file(rest, head)
        elif route == "norange":
            self._file(rest, head, ranges=False)
        elif route == "nohead":
            self._status(405) if head else self._file(rest, head)
        elif route == "nolength":
            self._file(rest, head, length=not head)
        elif route == "short":
            self._file(rest, head, short=True)
        elif route == "slow":
            time.sleep(1.0)
            self._file(rest, head)
        elif route == "auth":
            expected = "Basic " + base64.b64encode(b"tank:s3cret").decode()
            if self.headers.get("Authorization") != expected:
                self._status(401, {"WWW-Authenticate": 'Basic realm="tank"'})
            else:
                self._file(rest, head)
        elif route == "redirect":
            count, _, target = rest.partition("/")
            n = int(count)
            self._status(
                302, {"Location": f"/redirect/{n - 1}/{target}" if n > 1 else f"/{target}"}
            )
        elif route == "to":
            self._status(int(query.get("code", 302)), {"Location": query["url"]})
        elif route == "loop":
            self._status(302, {"Location": "/loop"})
        elif route == "status":
            self._status(int(rest))
        elif route == "firstten":
            data = (self.server.root / rest).read_bytes()
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-9/{len(data)}")
            self.send_header("Content-Length", "10")
            self.end_headers()
            if not head:
                self.wfile.write(data[:10])
        elif route == "trickle":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for byte in b"X-Slow: " + b"z" * 20:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
            self.wfile.write(b"\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
            self.server.trickled.set()
        elif route == "oddlength":
            self.send_response(200)
            self.send_header("Content-Length", "\u00b2")
            self.send_header("Connection", "close")
            self.end_headers()
        else:
            self._status(404)

    def _status(self, code: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _file(
        self,
        name: str,
        head: bool,
        *,
        ranges: bool = True,
        length: bool = True,
        short: bool = False,
    ) -> None:
        path = self.server.root / name
        if not name or "/" in name or not path.is_file():
            return self._status(404)
        data = path.read_bytes()
        size = len(data)
        status, body, headers = 200, data, {"Accept-Ranges": "bytes" if ranges else "none"}
        wanted = self.headers.get("Range") if ranges else None
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted or "")
        if match and (match[1] or match[2]):
            if match[1]:
                first = int(match[1])
                last = min(int(match[2]), size - 1) if match[2] else size - 1
            else:
                first, last = max(size - int(match[2]), 0), size - 1
            if first >= size:
                return self._status(416, {"Content-Range": f"bytes */{size}"})
            status, body = 206, data[first : last + 1]
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        if short:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


def _serve(server: FileServer) -> Iterator[FileServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to loopback directly, whatever proxy the machine has configured."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    yield from _serve(FileServer(tmp_path_factory.mktemp("served")))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (made with openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make a test certificate)")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="session")
def tls_server(server: FileServer, tls_files: tuple[Path, Path]) -> Iterator[FileServer]:
    """The same files over https (same root directory as ``server``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    yield from _serve(FileServer(server.root, context))
