"""Interoperable import as OpenStack's clients drive it: openstacksdk and
python-glanceclient (v2) staging + glance-direct, web-download and copy-image, then
downloading with the clients' own checksum and multihash verification."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

DATA = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(40_000))  # 1.2 MiB
SHA256 = hashlib.sha256(DATA).hexdigest()


def until(check: Any, what: str, timeout: float = 60) -> Any:
    """Poll ``check()`` until it returns something true (a deadline for the test)."""
    end = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > end:
            raise AssertionError(f"never {what}")
        time.sleep(0.1)
    return result


def test_openstacksdk(tank: Any, web: Any, tmp_path: Path) -> None:
    openstack = pytest.importorskip("openstack")
    conn = openstack.connect(auth_type="none", auth={"endpoint": tank.url})
    path = tmp_path / "sdk.raw"
    path.write_bytes(DATA)
    staged = conn.image.create_image(
        name="sdk-direct",
        filename=str(path),
        disk_format="raw",
        container_format="bare",
        use_import=True,  # stage + glance-direct
        validate_checksum=False,
    )
    staged = until(
        lambda: (i := conn.image.get_image(staged.id)).status == "active" and i, "active"
    )
    assert (staged.hash_algo, staged.hash_value) == ("sha256", SHA256)
    body = conn.image.download_image(staged)  # the sdk checks the MD5
    assert hashlib.sha256(body.content).hexdigest() == SHA256

    web.files["/sdk.raw"] = DATA
    fetched = conn.image.create_image(
        name="sdk-web", disk_format="raw", container_format="bare", allow_duplicates=True
    )
    conn.image.import_image(fetched, method="web-download", uri=web.url("/sdk.raw"))
    fetched = conn.image.wait_for_status(fetched, "active", failures=["queued"], wait=60)
    assert hashlib.sha256(conn.image.download_image(fetched).content).hexdigest() == SHA256

    conn.image.import_image(staged, method="copy-image", stores=["second"])
    until(lambda: tank.show(staged.id).get("stores") == "file,second", "copied")
    assert conn.image.get_image(staged.id).status == "active"
    assert tank.files("second") == [staged.id]


def test_glanceclient(tank: Any, web: Any, tmp_path: Path) -> None:
    glanceclient = pytest.importorskip("glanceclient")
    client = glanceclient.Client("2", endpoint=tank.url, token="unused")
    path = tmp_path / "gc.raw"
    path.write_bytes(DATA)
    image = client.images.create(name="gc-direct", disk_format="raw", container_format="bare")
    with path.open("rb") as f:
        client.images.stage(image.id, f)
    assert client.images.get(image.id).status == "uploading"
    client.images.image_import(image.id, method="glance-direct")
    until(lambda: client.images.get(image.id).status == "active", "active")
    # data() verifies the multihash (os_hash_value) while it streams
    assert hashlib.sha256(b"".join(client.images.data(image.id))).hexdigest() == SHA256

    web.files["/gc.raw"] = DATA
    other = client.images.create(name="gc-web", disk_format="raw", container_format="bare")
    client.images.image_import(other.id, method="web-download", uri=web.url("/gc.raw"))
    until(lambda: client.images.get(other.id).status == "active", "active")
    assert hashlib.sha256(b"".join(client.images.data(other.id))).hexdigest() == SHA256

    client.images.image_import(image.id, method="copy-image", stores=["second"])
    until(lambda: client.images.get(image.id).get("stores") == "file,second", "copied")
    info = client.images.get_import_info()
    assert info["import-methods"]["value"] == ["glance-direct", "web-download", "copy-image"]
