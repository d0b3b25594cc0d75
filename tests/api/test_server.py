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

IMAGE = "x-image-meta-disk_format: raw\r\nx-image-meta-container_format: bare\r\n"
curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


class Raw:
    """One HTTP/1.1 connection driven by hand."""

    def __init__(self, api: ApiServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self, timeout: float = 5.0) -> tuple[int, dict[str, str]]:
        """The next status line and headers (a 100 Continue counts as an answer)."""
        self.sock.settimeout(timeout)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before an answer; got {self.buf!r}")
            self.buf += chunk
        text, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, *lines = text.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        return int(status.split()[1]), headers

    def answer(self, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        status, headers = self.head(timeout)
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection (dropping whatever else it sends)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def stored(api: ApiServer) -> set[str]:
    images = api.data_dir / "images"
    return {p.name for p in images.iterdir()} if images.exists() else set()


def status_of(api: ApiServer, image_id: str) -> str | None:
    return requests.head(f"{api.url}/v1/images/{image_id}", timeout=5).headers.get(
        "x-image-meta-status"
    )


def peak_rss_kib(api: ApiServer) -> int:
    for line in Path(f"/proc/{api.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


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
    conn = Raw(api)
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
    conn = Raw(api)
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
    conn = Raw(api)
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
    conn = Raw(api)
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
    conn = Raw(api)
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
    conn = Raw(api)
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
    conn = Raw(api)
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


def test_slow_and_silent_clients_do_not_stop_the_api(start_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """More silent and dripping connections than worker threads (the reliability
    issue's finding: 16 took all of cheroot's), and a head that never ends gets 408 at
    ``[api] header_timeout``."""
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nthreads = 4\nheader_timeout = 1.5\n")
    api = start_api("--config", str(config))
    silent = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(20)]
    dripping = [Raw(api) for _ in range(20)]
    try:
        for conn in dripping:
            conn.send(b"GET /v1/images HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        with requests.Session() as session:
            for _ in range(10):
                assert session.get(f"{api.url}/v1/images", timeout=5).status_code == 200
        status, _, body = dripping[0].answer(timeout=10)
        assert status == 408 and json.loads(body)["error"]["code"] == 408
        assert dripping[0].closed()
    finally:
        for sock in silent:
            sock.close()
        for conn in dripping:
            conn.close()


def test_sigterm_during_an_upload_answers_503_not_a_client_error(start_api) -> None:  # type: ignore[no-untyped-def]
    """The reliability issue's finding: the server ending an upload at shutdown said
    the client had closed the connection (400)."""
    api = start_api()
    image_id = str(uuid.uuid4())
    conn = Raw(api)
    try:
        conn.send(post(64 << 20, image_id=image_id) + b"x" * (1 << 20))
        deadline = time.monotonic() + 10
        while status_of(api, image_id) != "saving" and time.monotonic() < deadline:
            time.sleep(0.05)
        api.proc.terminate()
        status, _, body = conn.answer(timeout=30)
    finally:
        conn.close()
    assert status == 503, body
    assert "shutting down" in json.loads(body)["error"]["message"]
    assert api.proc.wait(30) == 0
    assert "ending them (503)" in api.log()
    restarted = start_api("--data-dir", str(api.data_dir))
    assert status_of(restarted, image_id) == "killed"


def test_an_upload_trickled_below_the_floor_gets_408_and_the_image_is_killed(  # type: ignore[no-untyped-def]
    start_api, tmp_path: Path
) -> None:
    """The outside probe's finding: 16 uploads that stall after their head held every
    worker thread (the API answered nobody) for as long as they liked."""
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nthreads = 2\nmin_rate = 1000\nrate_window = 1\n")
    api = start_api("--config", str(config))
    image_id = str(uuid.uuid4())
    conn = Raw(api)
    try:
        conn.send(post(1 << 20, image_id=image_id) + b"x" * 10)
        status, _, body = conn.answer(timeout=20)
    finally:
        conn.close()
    assert status == 408, body
    assert "less than the 1000 required" in json.loads(body)["error"]["message"]
    assert status_of(api, image_id) == "killed"
    assert requests.get(f"{api.url}/v1/images", timeout=5).status_code == 200


def test_a_truncated_stored_file_is_never_served_as_a_whole_image(start_api) -> None:  # type: ignore[no-untyped-def]
    """The reliability issue's finding: a stored file cut short was served 200 with a
    short Content-Length and a Content-Range built from the short file."""
    api = start_api()
    data = os.urandom(3 << 20)
    image_id = upload(api, "cut", data)
    os.truncate(api.data_dir / "images" / image_id, 1 << 20)
    url = f"{api.url}/v1/images/{image_id}"
    for headers in ({}, {"Range": "bytes=0-99"}, {"Range": "bytes=-100"}):
        got = requests.get(url, headers=headers, timeout=10)
        assert got.status_code == 500, (headers, got.status_code)
        assert "integrity fault" in got.json()["error"]["message"]
    assert requests.head(url, timeout=10).headers["x-image-meta-size"] == str(3 << 20)
    assert "integrity fault: image " + image_id in api.log()


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
