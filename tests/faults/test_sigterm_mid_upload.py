"""SIGTERM mid-upload, with a real tank-api (issue 15: "SIGTERM during an upload answers
400 blaming the client"): the server that ends an upload at shutdown answers 503, says so
in its log, exits 0, and the image it could not finish is ``killed``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import requests

from tank.testing.api_server import ApiServer
from tank.testing.raw_http import RawHttp


def status_of(api: ApiServer, image_id: str) -> str | None:
    return requests.head(f"{api.url}/v1/images/{image_id}", timeout=5).headers.get(
        "x-image-meta-status"
    )


def post(length: int, *, image_id: str) -> bytes:
    return (
        f"POST /v1/images HTTP/1.1\r\nHost: tank\r\nContent-Length: {length}\r\n"
        f"Content-Type: application/octet-stream\r\nx-image-meta-id: {image_id}\r\n"
        "x-image-meta-name: raw\r\nx-image-meta-disk_format: raw\r\n"
        "x-image-meta-container_format: bare\r\n\r\n"
    ).encode()


def test_sigterm_during_an_upload_answers_503_not_a_client_error(
    start_api: Callable[..., ApiServer],
) -> None:
    api = start_api()
    image_id = str(uuid.uuid4())
    conn = RawHttp(api.port)
    try:
        conn.send(post(64 << 20, image_id=image_id) + b"x" * (1 << 20))
        deadline = time.monotonic() + 30
        while status_of(api, image_id) != "saving" and time.monotonic() < deadline:
            time.sleep(0.05)
        api.proc.terminate()
        status, _, body = conn.answer(timeout=30)
    finally:
        conn.close()
    assert status == 503, body
    assert "shutting down" in json.loads(body)["error"]["message"]
    assert api.proc.wait(30) == 0
    log = api.log_path.read_text()
    assert "requests still running after" in log and "ending them (503)" in log
    assert "the client sent" not in log  # never blamed on the client
    restarted = start_api("--data-dir", str(api.data_dir))
    assert status_of(restarted, image_id) == "killed"
    assert not (api.data_dir / "images" / image_id).exists()
