"""Slow and silent clients against a real tank-api (issue 15: "16 slow connections stop
the API"): connections that send nothing, or drip a head a byte at a time, or trickle a
body, hold no worker thread; everyone else is served meanwhile, and each slow one is
ended at its deadline (``[api] header_timeout``; ``min_rate`` over ``rate_window`` for
bodies), not before."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

from tank.testing.api_server import ApiServer, stored_image
from tank.testing.raw_http import RawHttp

HEADER_TIMEOUT = 3.0
THREADS = 4


def status_of(api: ApiServer, image_id: str) -> str | None:
    return requests.head(f"{api.url}/v1/images/{image_id}", timeout=5).headers.get(
        "x-image-meta-status"
    )


def closed_after(sock: socket.socket, opened: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed
    (seconds after ``opened``)."""
    sock.settimeout(HEADER_TIMEOUT + 15)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    return got, time.monotonic() - opened


def test_slow_and_silent_clients_do_not_stop_the_api(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    """Ten times more silent and dripping connections than worker threads (16 took all
    of cheroot's): GETs, an upload and a download are served meanwhile; a dripped head
    gets 408 and a silent connection is closed, each at ``header_timeout``."""
    config = tmp_path / "tank.toml"
    config.write_text(f"[api]\nthreads = {THREADS}\nheader_timeout = {HEADER_TIMEOUT}\n")
    api = start_api("--config", str(config))
    opened = time.monotonic()
    silent = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(10 * THREADS)]
    dripping = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(10 * THREADS)]
    stop = threading.Event()

    def drip() -> None:  # a byte a connection every 0.1 s: never a whole head
        for sock in dripping:
            sock.sendall(b"GET /v1/images HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        while not stop.wait(0.1):
            for sock in dripping:
                try:
                    sock.send(b"z")
                except OSError:
                    pass

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        with requests.Session() as session:
            for _ in range(10):
                assert session.get(f"{api.url}/v1/images", timeout=5).status_code == 200
            data = os.urandom(1 << 20)
            created = session.post(
                f"{api.url}/v1/images",
                data=data,
                headers={"Content-Type": "application/octet-stream", "x-image-meta-name": "ok"},
                timeout=10,
            )
            assert created.status_code == 201, created.text
            image = created.json()["image"]
            assert image["checksum"] == hashlib.md5(data).hexdigest()
            got = session.get(f"{api.url}/v1/images/{image['id']}", timeout=10)
            assert got.content == data
        served = time.monotonic() - opened
        assert served < HEADER_TIMEOUT, "normal requests waited for the slow ones' deadline"

        for sock in dripping:
            answer, when = closed_after(sock, opened)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == 408
            assert when >= HEADER_TIMEOUT - 0.1  # at the deadline, not before
        for sock in silent:
            answer, when = closed_after(sock, opened)
            assert answer == b""  # closed quietly: it asked nothing
            assert when >= HEADER_TIMEOUT - 0.1
        assert requests.get(f"{api.url}/v1/images", timeout=5).status_code == 200
    finally:
        stop.set()
        dripper.join(5)
        for sock in silent + dripping:
            sock.close()


def post(length: int, *, image_id: str) -> bytes:
    return (
        f"POST /v1/images HTTP/1.1\r\nHost: tank\r\nContent-Length: {length}\r\n"
        f"Content-Type: application/octet-stream\r\nx-image-meta-id: {image_id}\r\n"
        "x-image-meta-name: raw\r\nx-image-meta-disk_format: raw\r\n"
        "x-image-meta-container_format: bare\r\n\r\n"
    ).encode()


def test_an_upload_trickled_below_the_floor_gets_408_and_the_image_is_killed(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    """The outside probe's finding: 16 uploads that stall after their head held every
    worker thread (the API answered nobody) for as long as they liked."""
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nthreads = 2\nmin_rate = 1000\nrate_window = 1\n")
    api = start_api("--config", str(config))
    image_id = str(uuid.uuid4())
    conn = RawHttp(api.port)
    try:
        conn.send(post(1 << 20, image_id=image_id) + b"x" * 10)
        status, _, body = conn.answer(timeout=20)
    finally:
        conn.close()
    assert status == 408, body
    assert "less than the 1000 required" in json.loads(body)["error"]["message"]
    assert status_of(api, image_id) == "killed"
    assert not (api.data_dir / "images" / image_id).exists()
    assert requests.get(f"{api.url}/v1/images", timeout=5).status_code == 200


def test_slow_uploads_leave_threads_for_requests_without_a_body(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    """The outside probe's finding (session 6): 60 uploads each sending just above
    ``min_rate`` held every worker thread, and the API and the console answered nobody
    until they ended. Bodies may take ``body_threads`` (3 of 4 here); one more upload gets
    503 at once, while listings, the console and downloads are still served."""
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nthreads = 4\nmin_rate = 64\nrate_window = 5\n")
    api = start_api("--config", str(config))
    stop = threading.Event()
    trickling = []
    for _ in range(3):
        conn = RawHttp(api.port)
        conn.send(post(1 << 20, image_id=str(uuid.uuid4())))
        trickling.append(conn)

    def trickle() -> None:  # 1 KiB/s each: well above the floor, for as long as the test
        while not stop.wait(0.1):
            for conn in trickling:
                conn.send(b"x" * 100)

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    # workers take body threads in parallel: had the fourth upload's worker taken one
    # before a trickle's, that trickle would be refused and the fourth would wait for
    # a body that never comes
    time.sleep(0.5)
    try:
        deadline = time.monotonic() + 10
        while True:  # the three are being read once a fourth body is refused
            extra = RawHttp(api.port)
            extra.send(post(1 << 20, image_id=str(uuid.uuid4())))
            status, headers, body = extra.answer(timeout=5)
            extra.close()
            if status == 503 or time.monotonic() > deadline:
                break
        assert status == 503, body
        assert headers["retry-after"] == "2"  # a thread frees when any upload ends
        message = json.loads(body)["error"]["message"]
        assert "busy with 3 uploads" in message and "at most 3 request bodies" in message
        for n in range(5):  # everyone else: answered, and quickly (not after the uploads)
            started = time.monotonic()
            assert requests.get(f"{api.url}/v2/images", timeout=5).status_code == 200
            assert requests.get(f"{api.url}/console/", timeout=5).status_code == 200
            # small bodies (creates, edits: the outside probe's second finding) are read
            # with their heads and need no body thread
            made = requests.post(f"{api.url}/v2/images", json={"name": f"n{n}"}, timeout=5)
            assert made.status_code == 201, made.text
            edited = requests.patch(
                f"{api.url}/v2/images/{made.json()['id']}",
                data=json.dumps([{"op": "replace", "path": "/name", "value": "edited"}]),
                headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
                timeout=5,
            )
            assert edited.status_code == 200, edited.text
            assert time.monotonic() - started < 5
    finally:
        stop.set()
        feeder.join()
        for conn in trickling:
            conn.close()


def stall_downloads(api: ApiServer, image_id: str, count: int) -> list[RawHttp]:
    """``count`` downloads of the image that read its answer's head, then nothing more."""
    stalled = []
    for _ in range(count):
        conn = RawHttp(api.port)
        stalled.append(conn)
        conn.send(f"GET /v2/images/{image_id}/file HTTP/1.1\r\nHost: tank\r\n\r\n".encode())
        status, _ = conn.head(timeout=10)
        assert status == 200
    return stalled


def test_stalled_downloads_leave_threads_for_everyone_else(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    """Downloads are capped as uploads are: readers that stop reading a large image hold
    at most ``download_threads`` (3 of 4 here); one more download gets 503 at once, in
    both APIs, and so does an upload (uploads and downloads together take at most 3),
    while listings and the console are still answered; once the stalled readers hang up,
    their threads are free again and a download goes through whole."""
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nthreads = 4\nmin_rate = 0\n")  # stalled readers stay
    api = start_api("--config", str(config))
    data = os.urandom(1 << 20) * 48  # more than loopback's socket buffers hold
    image_id = stored_image(api, data, "big")
    stalled = stall_downloads(api, image_id, 3)
    try:
        refused = requests.get(f"{api.url}/v2/images/{image_id}/file", timeout=10)
        assert refused.status_code == 503, refused.text[:300]
        assert refused.headers["Retry-After"] == "2"
        message = refused.json()["error"]["message"]
        assert "busy with 3 downloads" in message and "to at most 3 clients" in message
        refused = requests.get(f"{api.url}/v1/images/{image_id}", timeout=10)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
        upload = RawHttp(api.port)  # a thread for its body is one more long transfer
        upload.send(post(1 << 20, image_id=str(uuid.uuid4())))
        status, headers, answer = upload.answer(timeout=5)
        upload.close()
        assert status == 503, answer
        assert headers["retry-after"] == "2"
        assert "at most 3 uploads and downloads together" in json.loads(answer)["error"]["message"]
        for _ in range(5):  # everyone else: answered, and quickly
            started = time.monotonic()
            assert requests.get(f"{api.url}/v2/images", timeout=5).status_code == 200
            assert requests.get(f"{api.url}/console/", timeout=5).status_code == 200
            assert requests.head(f"{api.url}/v1/images/{image_id}", timeout=5).status_code == 200
            assert time.monotonic() - started < 5
    finally:
        for conn in stalled:
            conn.close()
    deadline = time.monotonic() + 15
    while True:  # the server learns of the hang-ups as its sends fail
        got = requests.get(f"{api.url}/v2/images/{image_id}/file", timeout=30)
        if got.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got.status_code == 200, got.text[:300]
    assert hashlib.md5(got.content).hexdigest() == hashlib.md5(data).hexdigest()
    for _ in range(4):  # no slot leaked: more downloads than the cap, one after another
        assert requests.get(f"{api.url}/v1/images/{image_id}", timeout=30).status_code == 200


def test_a_small_body_is_read_with_its_head_and_has_a_deadline(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    """A create whose small body stalls holds no worker thread: with every thread's worth
    of such requests open, the API still answers; each gets 408 once ``header_timeout``
    has passed since its head, and creates nothing."""
    config = tmp_path / "tank.toml"
    config.write_text(f"[api]\nthreads = 2\nheader_timeout = {HEADER_TIMEOUT}\n")
    api = start_api("--config", str(config))
    body = json.dumps({"name": "stalled"}).encode()
    head = (
        f"POST /v2/images HTTP/1.1\r\nHost: tank\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    stalled = []
    for _ in range(6):  # three times the threads
        conn = RawHttp(api.port)
        conn.send(head + body[:5])
        stalled.append(conn)
    opened = time.monotonic()
    try:
        for _ in range(3):
            assert requests.get(f"{api.url}/v2/images", timeout=2).status_code == 200
            made = requests.post(f"{api.url}/v2/images", json={"name": "quick"}, timeout=2)
            assert made.status_code == 201, made.text
        for conn in stalled:
            status, _, answer = conn.answer(timeout=HEADER_TIMEOUT + 5)
            assert status == 408, answer
            assert "request body did not arrive" in json.loads(answer)["error"]["message"]
        assert time.monotonic() - opened < HEADER_TIMEOUT + 5
    finally:
        for conn in stalled:
            conn.close()
    names = [i["name"] for i in requests.get(f"{api.url}/v2/images", timeout=5).json()["images"]]
    assert "stalled" not in names and names.count("quick") == 3


def test_one_thread_stays_free_whatever_the_caps_say(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    """Caps equal to ``threads`` (the second outside probe) still leave one thread for
    everything else: stalled downloads take at most ``threads - 1``; HEAD of the data takes
    no download slot at all."""
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nthreads = 3\nbody_threads = 3\ndownload_threads = 3\nmin_rate = 0\n")
    api = start_api("--config", str(config))
    image_id = stored_image(api, os.urandom(1 << 20) * 48, "big")
    file = f"{api.url}/v2/images/{image_id}/file"
    stalled = stall_downloads(api, image_id, 2)
    try:
        assert requests.get(file, timeout=10).status_code == 503
        for _ in range(3):
            assert requests.get(f"{api.url}/healthcheck", timeout=5).status_code == 200
            assert requests.head(file, timeout=5).status_code == 200
    finally:
        for conn in stalled:
            conn.close()


def test_a_burst_of_fast_downloads_is_served_on_the_defaults(
    start_api: Callable[..., ApiServer],
) -> None:
    """Twenty clients downloading at once, on tank-api's default threads and two worker
    processes (the second outside probe saw 503s with 16 threads a worker): all served."""
    api = start_api("--workers", "2")
    data = os.urandom(1 << 20) * 8
    file = f"{api.url}/v2/images/{stored_image(api, data, 'burst')}/file"
    results: list[tuple[int, str]] = []

    def fetch() -> None:
        got = requests.get(file, timeout=60)
        results.append((got.status_code, hashlib.md5(got.content).hexdigest()))

    for _ in range(3):
        results.clear()
        workers = [threading.Thread(target=fetch) for _ in range(20)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert results == [(200, hashlib.md5(data).hexdigest())] * 20


def test_a_small_body_held_back_for_100_continue_needs_no_body_thread(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    """``Expect: 100-continue`` on a create (the second outside probe: 503 while uploads
    held every body thread): the listener says 100 Continue at once, reads the small body
    and the create is served; the worker does not say it again."""
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nthreads = 2\nbody_threads = 1\nmin_rate = 0\n")
    api = start_api("--config", str(config))
    upload = RawHttp(api.port)  # holds the one body thread
    upload.send(post(1 << 20, image_id=str(uuid.uuid4())) + b"x" * 1000)
    try:
        time.sleep(0.5)
        body = json.dumps({"name": "expecting"}).encode()
        conn = RawHttp(api.port)
        conn.send(
            b"POST /v2/images HTTP/1.1\r\nHost: tank\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        conn.sock.settimeout(5)
        got = b""
        while b"\r\n\r\n" not in got:
            got += conn.sock.recv(4096)
        assert got == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.send(body)
        status, _, answer = conn.answer(timeout=5)
        conn.close()
        assert status == 201, answer
        assert json.loads(answer)["name"] == "expecting"
    finally:
        upload.close()
