"""Interoperable import as clients drive it: stage + glance-direct, web-download from a
local HTTP server, copy-image into the second store, and removing one store's copy."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import glanceclient.exc
import openstack.connection
import pytest

from tank.testing.api_server import ApiServer

from .conftest import Caller, Http, glance, sdk, start_tank, stop_checked, stored_files

MIB = 1 << 20


class Source:
    """A local HTTP server holding one file; it records the paths asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.requests: list[str] = []
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                source.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(source.data)))
                self.end_headers()
                self.wfile.write(source.data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/images/disk.img"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def source() -> Iterator[Source]:
    src = Source(os.urandom(MIB + 5))
    yield src
    src.close()


def settled(image: dict[str, Any]) -> bool:
    """Done importing: active, or back to where it was with the failure recorded."""
    return image["status"] in ("active", "killed") or bool(image.get("os_glance_failed_import"))


def copied(image: dict[str, Any]) -> bool:
    """Done copying into ``slow`` (a copy keeps the image active; a failure is recorded)."""
    return "slow" in image.get("stores", "") or bool(image.get("os_glance_failed_import"))


def staged_files(server: ApiServer) -> list[Path]:
    staging = server.data_dir / "staging"
    return [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else []


def assert_holds(image: dict[str, Any], data: bytes, stores: set[str]) -> None:
    assert image["status"] == "active", image
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha256"
    assert image["os_hash_value"] == hashlib.sha256(data).hexdigest()
    assert set(image["stores"].split(",")) == stores
    assert not image.get("os_glance_failed_import")


def test_openstacksdk_stage_and_glance_direct_import(
    tank_v2: ApiServer, sdk_a: openstack.connection.Connection, http_a: Http, name: str
) -> None:
    data = os.urandom(2 * MIB + 1)
    image = sdk_a.image.create_image(
        name,
        data=data,
        disk_format="raw",
        container_format="bare",
        use_import=True,  # stage, then import with glance-direct
        allow_duplicates=True,
    )
    shown = http_a.wait(image.id, settled)
    assert_holds(shown, data, {"fast"})
    assert sdk_a.image.download_image(image.id).content == data
    assert not [p for p in staged_files(tank_v2) if image.id in str(p)]


def test_glanceclient_stage_then_import(
    tank_v2: ApiServer, glance_a: Any, http_a: Http, name: str
) -> None:
    data = os.urandom(MIB + 17)
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    glance_a.images.stage(image.id, io.BytesIO(data), len(data))
    staged = glance_a.images.get(image.id)
    assert staged.status == "uploading"
    assert staged.size is None or staged.size == len(data)

    glance_a.images.image_import(image.id, method="glance-direct")
    shown = http_a.wait(image.id, settled)
    assert_holds(shown, data, {"fast"})
    assert b"".join(glance_a.images.data(image.id)) == data
    assert not [p for p in staged_files(tank_v2) if image.id in str(p)]


def test_glance_direct_without_staged_data_is_a_conflict(glance_a: Any, name: str) -> None:
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    with pytest.raises(glanceclient.exc.HTTPConflict):
        glance_a.images.image_import(image.id, method="glance-direct")
    assert glance_a.images.get(image.id).status == "queued"


def test_staging_into_an_active_image_is_a_conflict(glance_a: Any, name: str) -> None:
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    glance_a.images.upload(image.id, io.BytesIO(b"already here"))
    with pytest.raises(glanceclient.exc.HTTPConflict):
        glance_a.images.stage(image.id, io.BytesIO(b"more"))
    assert b"".join(glance_a.images.data(image.id)) == b"already here"


def test_web_download_from_a_loopback_address_is_refused_by_default(
    glance_a: Any, http_a: Http, source: Source, name: str
) -> None:
    """SSRF guard: without ``[import] allow_private_networks`` nothing is fetched from a
    loopback address, whether the refusal comes at once or from the import worker."""
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    try:
        glance_a.images.image_import(image.id, method="web-download", uri=source.url)
    except glanceclient.exc.HTTPBadRequest:
        pass
    else:
        shown = http_a.wait(image.id, settled)
        assert shown["status"] != "active"
        assert shown["os_glance_failed_import"]
    assert source.requests == []
    assert glance_a.images.get(image.id).status == "queued"


@pytest.fixture(scope="module")
def private_tank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A tank-api that may fetch from private networks (the web-download tests' own)."""
    root = tmp_path_factory.mktemp("private-tank")
    server = start_tank(root, "\n[import]\nallow_private_networks = true\n")
    yield server
    stop_checked(server)


def test_web_download_fetches_the_uri(
    private_tank: ApiServer, alice: Caller, source: Source, name: str
) -> None:
    gc = glance(private_tank.url, alice)
    http = Http(private_tank, alice)
    image = gc.images.create(name=name, disk_format="raw", container_format="bare")
    gc.images.image_import(image.id, method="web-download", uri=source.url)
    shown = http.wait(image.id, settled)
    assert_holds(shown, source.data, {"fast"})
    assert source.requests == ["/images/disk.img"]
    assert b"".join(gc.images.data(image.id)) == source.data


def test_web_download_through_openstacksdk(
    private_tank: ApiServer, alice: Caller, source: Source, name: str
) -> None:
    conn = sdk(private_tank.url, alice)
    image = conn.image.create_image(
        name,
        disk_format="raw",
        container_format="bare",
        use_import=True,
        import_method="web-download",
        uri=source.url,
        allow_duplicates=True,
    )
    shown = Http(private_tank, alice).wait(image.id, settled)
    assert_holds(shown, source.data, {"fast"})


def test_copy_image_into_the_second_store_then_drop_the_first(
    tank_v2: ApiServer,
    glance_a: Any,
    sdk_admin: openstack.connection.Connection,
    glance_admin: Any,
    http_a: Http,
    name: str,
) -> None:
    data = os.urandom(MIB + 9)
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    glance_a.images.upload(image.id, io.BytesIO(data))
    assert http_a.image(image.id)["stores"] == "fast"

    # the sdk wants the image itself (it checks the formats), not its id
    resp = sdk_admin.image.import_image(
        sdk_admin.image.get_image(image.id), method="copy-image", stores=["slow"]
    )
    assert resp.status_code == 202, resp.text  # the sdk hands back the answer unchecked
    shown = http_a.wait(image.id, copied)
    assert_holds(shown, data, {"fast", "slow"})
    [copy] = [p for p in stored_files(tank_v2, "slow") if image.id in p.name]
    assert copy.read_bytes() == data

    glance_admin.images.delete_from_store("fast", image.id)
    shown = http_a.image(image.id)
    assert_holds(shown, data, {"slow"})
    assert not [p for p in stored_files(tank_v2, "fast") if image.id in p.name]
    assert b"".join(glance_a.images.data(image.id)) == data  # from the slow store

    glance_a.images.delete(image.id)
    for store in ("fast", "slow"):
        assert not [p for p in stored_files(tank_v2, store) if image.id in p.name]


def test_copy_image_to_all_stores(
    glance_a: Any, glance_admin: Any, http_a: Http, name: str
) -> None:
    data = os.urandom(300_000)
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    glance_a.images.upload(image.id, io.BytesIO(data))
    glance_admin.images.image_import(image.id, method="copy-image", all_stores=True)
    shown = http_a.wait(image.id, copied)
    assert_holds(shown, data, {"fast", "slow"})


def test_copy_image_of_an_image_without_data_is_a_conflict(glance_admin: Any, name: str) -> None:
    image = glance_admin.images.create(name=name, disk_format="raw", container_format="bare")
    with pytest.raises(glanceclient.exc.HTTPConflict):
        glance_admin.images.image_import(image.id, method="copy-image", stores=["slow"])
