"""Request and response framing in tank-api's server (``tank.web.server``), which also
serves tank-registry: every byte of a request body is read as that body and nothing
else, and every response is exactly as long as it says. Findings of a review, each
with the input that broke it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.testing.api_server import ApiServer
from tank.web import FileBody
from tank.web.server import FileWrapper, HttpServer

V1 = "/v1/images"


def exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send ``request`` raw and read until the server closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            pass
    return out


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a stream of HTTP/1.1 responses, trusting each Content-Length."""
    stream = io.BytesIO(raw)
    out = []
    while status := stream.readline():
        headers = {}
        while (line := stream.readline().rstrip(b"\r\n")) != b"":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.lower()] = value.strip()
        body = stream.read(int(headers.get("content-length", "0")))
        out.append((int(status.split()[1]), headers, body))
    return out


@pytest.mark.parametrize(
    "length", [b"+10", b"-1", b"1_0", b" 0x10", b"10, 20", b"99999999999999999999"]
)
def test_content_length_must_be_a_plain_number(api: ApiServer, length: bytes) -> None:
    raw = exchange(
        api.port,
        b"POST " + V1.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream"
        b"\r\nContent-Length: " + length + b"\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    answers = responses(raw)
    assert [a[0] for a in answers] == [400], raw[:300]  # and the smuggled GET is not served


def test_two_different_content_lengths_are_refused(api: ApiServer) -> None:
    head = b"POST " + V1.encode() + b" HTTP/1.1\r\nHost: x\r\nx-image-meta-name: twice\r\n"
    raw = exchange(api.port, head + b"Content-Length: 0\r\nContent-Length: 44\r\n\r\n", 3)
    assert [a[0] for a in responses(raw)] == [400], raw[:300]
    same = exchange(
        api.port, head + b"Content-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    )
    assert [a[0] for a in responses(same)] == [201]


def test_transfer_encoding_from_http10_is_refused(api: ApiServer) -> None:
    smuggled = b"GET /v1/images/detail HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = exchange(
        api.port,
        b"POST /v1/images HTTP/1.0\r\nConnection: Keep-Alive\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/octet-stream\r\nx-image-meta-name: te10\r\n\r\n"
        + b"%x\r\n" % len(smuggled)
        + smuggled
        + b"\r\n0\r\n\r\n",
    )
    assert [a[0] for a in responses(raw)] == [400], raw[:300]
    listed = requests.get(api.url + V1, params={"name": "te10"}, timeout=5).json()["images"]
    assert listed == []


@pytest.mark.parametrize(
    "chunks",
    [b"4\nabcd\r\n0\r\n\r\n", b"4\r\nabcd\n0\r\n\r\n", b"4\r\nabcd\r\n0\n\n"],
)
def test_chunk_lines_ending_in_a_bare_lf_are_refused(api: ApiServer, chunks: bytes) -> None:
    """As in heads (the second outside probe found them accepted in chunked bodies)."""
    raw = exchange(
        api.port,
        b"POST /v1/images HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/octet-stream\r\nx-image-meta-name: bare-lf\r\n"
        b"Connection: close\r\n\r\n" + chunks,
    )
    answers = responses(raw)
    assert [a[0] for a in answers] == [400], raw[:300]
    assert b"bare LF" in answers[0][2]
    listed = requests.get(api.url + V1 + "/detail", params={"name": "bare-lf"}, timeout=5)
    assert {i["status"] for i in listed.json()["images"]} <= {"killed"}  # v1: no data kept


def test_oversized_chunked_json_is_refused_before_it_is_all_sent(api: ApiServer) -> None:
    image = requests.post(api.url + V1, headers={"x-image-meta-name": "m"}, timeout=5).json()
    path = f"{V1}/{image['image']['id']}/members"
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        piece = b'{"memberships": [' + b" " * (256 << 10)
        for _ in range(10):  # 2.5 MiB (the limit is 1 MiB, read 1 MiB at a time), then wait
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        status = sock.makefile("rb").readline()
    assert status.startswith(b"HTTP/1.1 400 "), status


def test_lone_surrogates_are_a_400(api: ApiServer) -> None:
    image = requests.post(api.url + V1, headers={"x-image-meta-name": "s"}, timeout=5).json()
    url = f"{api.url}{V1}/{image['image']['id']}/members"
    body = b'{"memberships": [{"member_id": "\\ud800", "can_share": false}]}'
    resp = requests.put(url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 400 and "surrogate" in resp.json()["error"]["message"]


def test_head_answers_carry_no_body_even_from_the_registry(tmp_path: Path) -> None:
    """tank-registry's app returns a JSON body with its HEAD answers; the server drops
    it, so a pipelined request after a HEAD gets its own answer."""
    from tank.registry_http.server import make_registry_app
    from tank_registry_sql import SqlRegistry

    registry = SqlRegistry(SqlRegistry.Config(), data_dir=tmp_path)
    with serve(make_registry_app(registry)) as server:
        port = server.port
        raw = exchange(
            port,
            b"HEAD /images HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /images HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    _, _, rest = raw.partition(b"\r\n\r\n")
    assert rest.startswith(b"HTTP/1.1 200 "), raw[:400]
    assert json.loads(responses(rest)[0][2]) == {"images": []}
    registry.close()


def test_a_body_longer_than_its_content_length_is_cut() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "5")])
        return [b"hello", b" and then some"]

    with serve(app) as server:
        port = server.port
        raw = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.endswith(b"\r\n\r\nhello"), raw  # cut, and the connection closed


def test_file_wrapper_stops_at_the_file_bodys_length(tmp_path: Path) -> None:
    """Without sendfile (TLS, no Content-Length), the wrapper is iterated: it must stop
    where a Range answer's FileBody ends, not at the end of the file."""
    path = tmp_path / "data"
    path.write_bytes(os.urandom(3 << 20))
    fd = os.open(path, os.O_RDONLY)
    os.lseek(fd, 1000, os.SEEK_SET)
    wrapper = FileWrapper(FileBody(fd, (1 << 20) + 7))
    try:
        assert b"".join(wrapper) == path.read_bytes()[1000 : 1000 + (1 << 20) + 7]
        assert wrapper.sent == (1 << 20) + 7
    finally:
        wrapper.close()


def serve(app: Any) -> contextlib.AbstractContextManager[HttpServer]:
    """A WSGI app on Tank's HTTP server in this process."""
    return HttpServer(app, threads=4, shutdown_timeout=1).running()
