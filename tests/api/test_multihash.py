"""``[api] hashing_algorithm`` through a real tank-api: the image names the algorithm its
multihash was computed with, and clients verify the bytes they download against it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import requests

from tank.testing.api_server import ApiServer

RAW = {"x-image-meta-disk_format": "raw", "x-image-meta-container_format": "bare"}


def test_uploads_carry_the_configured_multihash(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    config = tmp_path / "tank.toml"
    config.write_text('[api]\nhashing_algorithm = "sha3_256"\n')
    api = start_api("--config", str(config))
    data = os.urandom(3 * (1 << 20) + 1)
    resp = requests.post(
        f"{api.url}/v1/images",
        headers={"x-image-meta-name": "mh", **RAW, "Content-Type": "application/octet-stream"},
        data=data,
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha3_256"
    assert image["os_hash_value"] == hashlib.sha3_256(data).hexdigest()
    got = requests.get(f"{api.url}/v1/images/{image['id']}", timeout=30)
    algo = got.headers["x-image-meta-os_hash_algo"]
    assert hashlib.new(algo, got.content).hexdigest() == got.headers["x-image-meta-os_hash_value"]
