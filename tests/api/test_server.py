"""What tank-api's HTTP server (``tank.web.server``) does on the wire:
deferred ``100 Continue``, bodies that are refused, cut short or badly chunked, oversized
headers, sendfile downloads, spoofed identity headers. Raw sockets where a client
library would hide the behaviour."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from tank.testing.api_server import ApiServer
from tank.testing.raw_http import RawHttp

IMAGE = "x-image-meta-disk_format: raw\r\nx-image-meta-container_format: bare\r\n"
curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def stored(api: ApiServer) -> set[str]:
    images = api.data_dir / "images"
    return {p.name for p in images.iterdir()} if images.exists() else set()


def status_of(api: ApiServer, image_id: str) -> str | None:
    return requests.head(f"{api.url}/v1/images/{image_id}", timeout=5).headers.get(
        "x-image-meta-status"
    )


def peak_rss_kib(api: ApiServer) -> int:
    """The largest peak RSS of tank-api's processes (its worker's)."""
    peaks = []
    for pid in api.pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]))
    assert peaks, "no VmHWM"
    return max(peaks)


def upload(api: ApiServer, name: str, data: bytes) -> str:
    """Upload ``data`` as a new image; its id."""
    resp = requests.post(
        f"{api.url}/v1/images",
        data=data,
        timeout=10,
        headers={"Content-Type": "application/octet-stream", "x-image-meta-name": name},
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["image"]["id"])


def post(length: int, *, image_id: str, extra: str = "") -> bytes:
    return (
        f"POST /v1/images HTTP/1.1\r\nHost: tank\r\nContent-Length: {length}\r\n"
        f"Content-Type: application/octet-stream\r\nx-image-meta-id: {image_id}\r\n"
        f"x-image-meta-name: raw\r\n{IMAGE}{extra}\r\n"
    ).encode()


def test_100_continue_comes_when_the_body_is_wanted(api: ApiServer) -> None:
    image_id = str(uuid.uuid4())
    conn = RawHttp(api.port)
    try:
        conn.send(post(5, image_id=image_id, extra="Expect: 100-Continue\r\n"))
        status, _ = conn.head()  # the body is held back: only the server can move on
        assert status == 100
        conn.send(b"hello")
        status, _, body = conn.answer()
        assert status == 201, body
        assert json.loads(body)["image"]["size"] == 5
    finally:
        conn.close()


def test_refused_upload_is_answered_before_its_body(api: ApiServer) -> None:
    """A request refused for its headers gets its answer instead of 100 Continue, so
    the client never sends the body (cheroot, tank-api's server before, said 100 before
    the app looked)."""
    image_id = str(uuid.uuid4())
    assert requests.post(
        f"{api.url}/v1/images", headers={"x-image-meta-id": image_id}, timeout=5
    ).ok
    conn = RawHttp(api.port)
    try:
        conn.send(post(4 << 30, image_id=image_id, extra="Expect: 100-continue\r\n"))
        status, headers, body = conn.answer()
        assert status == 409, body
        assert "already exists" in json.loads(body)["error"]["message"]
        assert headers.get("connection") == "close"
        assert conn.closed()
    finally:
        conn.close()


@curl
def test_curl_gets_a_refusal_without_uploading(api: ApiServer, tmp_path: Path) -> None:
    big = tmp_path / "sparse.img"
    with open(big, "wb") as f:
        f.truncate(2 << 30)
    # With --expect100-timeout longer than the subprocess timeout, curl only finishes
    # early if the refusal comes before the body (instead of 100 Continue).
    args = ["curl", "-sS", "--expect100-timeout", "120", "-X", "POST", "-T", str(big)]
    args += ["-H", "x-image-meta-colour: red"]
    out = subprocess.run(
        [*args, "-w", "\n%{http_code} %{size_upload}", f"{api.url}/v1/images"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    body, _, summary = out.stdout.decode().rpartition("\n")
    code, uploaded = summary.split()
    assert code == "400" and "colour" in json.loads(body)["error"]["message"]
    assert float(uploaded) < 1 << 20, f"curl sent {uploaded} bytes of a refused upload"


def test_early_error_does_not_read_the_announced_body(api: ApiServer) -> None:
    """No Expect: the client sends at once. The server answers without reading the
    4 GiB it announced into memory, and closes."""
    before = peak_rss_kib(api)
    conn = RawHttp(api.port)
    try:
        conn.send(post(4 << 30, image_id="not-a-uuid"))
        conn.send(b"x" * (8 << 20))
        status, headers, body = conn.answer()
        assert status == 400 and b"UUID" in body
        assert headers.get("connection") == "close"
        assert conn.closed()
    finally:
        conn.close()
    assert peak_rss_kib(api) - before < 32 << 10


def test_small_unread_body_keeps_the_connection(api: ApiServer) -> None:
    conn = RawHttp(api.port)
    try:
        for _ in range(2):
            conn.send(post(10, image_id="not-a-uuid") + b"0123456789")
            status, headers, _ = conn.answer()
            assert status == 400 and headers.get("connection") != "close"
    finally:
        conn.close()


@pytest.mark.parametrize(
    "chunks,fragment",
    [
        (b"zz\r\nhello\r\n0\r\n\r\n", "chunk size"),
        (b"5\r\nhelloXX5\r\nhello\r\n0\r\n\r\n", "CRLF"),
        (b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n", "longer than"),
    ],
)
def test_bad_chunking_is_400_and_kills_the_image(
    api: ApiServer, chunks: bytes, fragment: str
) -> None:
    before = stored(api)
    image_id = str(uuid.uuid4())
    head = post(0, image_id=image_id).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
    conn = RawHttp(api.port)
    try:
        conn.send(head + chunks)
        status, _, body = conn.answer()
    finally:
        conn.close()
    assert status == 400 and fragment in json.loads(body)["error"]["message"]
    assert status_of(api, image_id) == "killed"
    assert stored(api) == before


def test_chunked_body_cut_short_kills_the_image(api: ApiServer) -> None:
    before = stored(api)
    image_id = str(uuid.uuid4())
    head = post(0, image_id=image_id).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
    with socket.create_connection(("127.0.0.1", api.port)) as sock:
        sock.sendall(head + b"100000\r\n" + b"x" * 300_000)
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while status_of(api, image_id) != "killed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status_of(api, image_id) == "killed"
    assert stored(api) == before


def test_oversized_headers_get_431_as_json(api: ApiServer) -> None:
    conn = RawHttp(api.port)
    try:
        conn.send(b"GET /v1/images HTTP/1.1\r\nHost: t\r\nX-Junk: " + b"y" * 100_000 + b"\r\n\r\n")
        status, headers, body = conn.answer()
    finally:
        conn.close()
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == 431


@pytest.mark.parametrize("head", [b"", b"\r\nHost: t\r\n\r\n"])
def test_an_overlong_request_line_gets_414(api: ApiServer, head: bytes) -> None:
    """Whether the line's end has arrived or not (the outside probe got 431 for a
    100 KB target sent in one piece with its headers)."""
    conn = RawHttp(api.port)
    try:
        conn.send(b"GET /v2/images?name=" + b"x" * 100_000 + b" HTTP/1.1" + head)
        status, _, body = conn.answer()
    finally:
        conn.close()
    assert status == 414
    assert json.loads(body)["error"]["code"] == 414


def test_download_uses_sendfile_and_logs_bytes(api: ApiServer) -> None:
    data = os.urandom((3 << 20) + 5)
    image_id = upload(api, "sf", data)
    url = f"{api.url}/v1/images/{image_id}"
    with requests.Session() as session:  # one connection: sendfile must leave it usable
        assert session.get(url, timeout=10).content == data
        part = session.get(url, headers={"Range": "bytes=1048570-1048589"}, timeout=10)
        assert part.status_code == 206 and part.content == data[1048570:1048590]
        assert session.get(url, timeout=10).content == data
    time.sleep(0.1)
    lines = [line for line in api.log().splitlines() if f"GET /v1/images/{image_id}" in line]
    assert f" 200 {len(data)} " in lines[0] and " 206 20 " in lines[1]


def test_underscore_identity_headers_are_ignored(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--auth")
    alice = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "alice", "X-Roles": "member"}
    image = requests.post(
        f"{api.url}/v1/images", headers={**alice, "x-image-meta-name": "mine"}, timeout=5
    ).json()["image"]
    url = f"{api.url}/v1/images/{image['id']}"
    assert requests.head(url, headers=alice, timeout=5).status_code == 200
    spoofed = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "mallory", "X_Roles": "admin"}
    assert requests.head(url, headers=spoofed, timeout=5).status_code == 404
    posing = {"X-Identity-Status": "Confirmed", "X_Tenant_Id": "alice"}
    assert requests.head(url, headers=posing, timeout=5).status_code == 404


def test_a_range_on_an_image_without_data_is_404(api: ApiServer) -> None:
    image = requests.post(f"{api.url}/v1/images", headers={"x-image-meta-name": "q"}, timeout=5)
    url = f"{api.url}/v1/images/{image.json()['image']['id']}"
    assert requests.get(url, headers={"Range": "bytes=0-9"}, timeout=5).status_code == 404


def test_a_body_cut_short_is_reported_with_what_arrived(start_api) -> None:  # type: ignore[no-untyped-def]
    """It said "the upload stopped after 0 bytes" when 500,000 had arrived."""
    api = start_api()
    image_id = str(uuid.uuid4())
    with socket.create_connection(("127.0.0.1", api.port)) as sock:
        sock.sendall(post(1_000_000, image_id=image_id) + b"x" * 500_000)
    deadline = time.monotonic() + 10
    while status_of(api, image_id) != "killed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status_of(api, image_id) == "killed"
    assert "the client sent 500000 of 1000000 bytes" in api.log()
    assert "stopped after 0 bytes" not in api.log()


def test_head_says_the_content_length_a_get_would_send(api: ApiServer) -> None:
    """It said 0 for every image (the outside probe)."""
    data = os.urandom(100_000)
    url = f"{api.url}/v1/images/{upload(api, 'hd', data)}"
    assert requests.head(url, timeout=5).headers["Content-Length"] == "100000"
    queued = requests.post(f"{api.url}/v1/images", headers={"x-image-meta-name": "q"}, timeout=5)
    queued_url = f"{api.url}/v1/images/{queued.json()['image']['id']}"
    assert requests.head(queued_url, timeout=5).headers["Content-Length"] == "0"
