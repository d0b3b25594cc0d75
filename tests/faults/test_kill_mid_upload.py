"""kill -9 mid-upload, with real tank-api processes (issue 15, "a crash leaves images
in ``saving`` forever"): a tank-api killed (SIGKILL) mid-upload leaves an image that a
tank-api on the same registry kills once its lease expired, with nothing left in the
store (fs on SQLite and on PostgreSQL; s3 on Ceph RGW, where the crash leaves an
unfinished multipart upload); an upload that is slow but alive is never killed by
another tank-api's sweep.

The lease is 2 s here, so each tank-api sweeps every second.
"""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tank import upload_lease
from tank.config import load
from tank.model import Context, Image
from tank.service import ImageService
from tank.testing import api_server, require_env
from tank.testing.api_server import ApiServer, stop_all
from tank.testing.postgresql import db_upgrade, pg_schema
from tank.upload_lease import HEARTBEAT

LEASE = 2
CHUNK = 64 * 1024


class Site:
    """One data dir (SQLite registry and fs store) that several tank-api processes share."""

    def __init__(self, root: Path, registry: str = "", top: str = "", stores: str = "") -> None:
        """``top``: top-level keys (``default_store``); ``stores``: more store sections."""
        self.root = root
        self.data_dir = root / "data"
        self.store_dir = root / "store"
        self.config = root / "tank.toml"
        self.config.write_text(
            f'{top}[stores.file]\ndatadir = "{self.store_dir}"\n{stores}'
            f"[scrubber]\nupload_lease = {LEASE}\n{registry}"
        )
        self.servers: list[ApiServer] = []

    def start(self, name: str) -> ApiServer:
        server = ApiServer(self.data_dir, self.root / f"{name}.log", ["--config", str(self.config)])
        self.servers.append(server)
        return server

    def registry_image(self, image_id: str) -> Image:
        """The image as the registry holds it (hidden properties included)."""
        with ImageService.from_config(load(self.config, data_dir=self.data_dir)) as service:
            return service.registry.get(image_id, context=Context.admin())

    def files(self) -> list[str]:
        return sorted(p.name for p in self.store_dir.iterdir()) if self.store_dir.exists() else []


@pytest.fixture(params=["sqlite", "postgresql"])
def site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    """The processes share an SQLite registry in the data dir, or a PostgreSQL schema
    of their own (``TANK_TEST_PG_URL``) that ``tank-manage db upgrade`` migrates."""
    if request.param == "sqlite":
        yield from _serve(Site(tmp_path))
        return
    with pg_schema("lease") as dsn:
        site = Site(tmp_path, f'[registry]\nconnection = "{dsn}"\n')
        db_upgrade(site.config)
        yield from _serve(site)


def _serve(site: Site) -> Iterator[Site]:
    yield site
    stop_all(site.servers)


def create(server: ApiServer, name: str) -> str:
    resp = requests.post(
        f"{server.url}/v2/images",
        json={"name": name, "disk_format": "raw", "container_format": "bare"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def show(server: ApiServer, image_id: str) -> dict[str, Any]:
    resp = requests.get(f"{server.url}/v2/images/{image_id}", timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def wait(
    server: ApiServer, image_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """Poll until ``done(image)``; a deadline for the test, not a speed measure."""
    end = time.monotonic() + timeout
    while True:
        image = show(server, image_id)
        if done(image):
            return image
        if time.monotonic() > end:
            raise AssertionError(f"image never got there: {image}\n{server.log()}")
        time.sleep(0.05)


def wait_for_log(server: ApiServer, text: str, timeout: float = 60) -> str:
    """The server's log once it has ``text`` (the sweep marks an image killed, then
    removes its partial data: wait for the removal's line before looking at the store)."""
    end = time.monotonic() + timeout
    while text not in (log := server.log_path.read_text()):
        assert time.monotonic() < end, f"never logged {text!r}:\n{server.log()}"
        time.sleep(0.05)
    return log


def start_upload(server: ApiServer, path: str, size: int) -> socket.socket:
    """A client that sends the head of a PUT of ``size`` bytes, and the body only as
    the test sends it through the returned socket."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def status_line(sock: socket.socket) -> str:
    reply = b""
    while b"\r\n" not in reply:
        got = sock.recv(4096)
        if not got:
            break
        reply += got
    return reply.split(b"\r\n", 1)[0].decode()


def test_an_upload_cut_by_sigkill_is_killed_after_its_lease_and_leaves_nothing(
    site: Site,
) -> None:
    first = site.start("tank-api")
    image_id = create(first, "interrupted")
    sock = start_upload(first, f"/v1/images/{image_id}", 16 * CHUNK)
    sock.sendall(b"x" * 4 * CHUNK)
    wait(first, image_id, lambda i: i["status"] == "saving")
    in_flight = site.registry_image(image_id)
    assert HEARTBEAT in in_flight.properties  # the lease is held...
    assert HEARTBEAT not in show(first, image_id)  # ...and never shown (v2)
    head = requests.head(f"{first.url}/v1/images/{image_id}", timeout=10)
    assert not any(HEARTBEAT in key.lower() for key in head.headers)  # nor by v1

    first.proc.kill()  # SIGKILL: no clean-up of any kind
    first.proc.wait(10)
    sock.close()
    # What a store without O_TMPFILE leaves: the named temporary file of the upload.
    site.store_dir.mkdir(exist_ok=True)
    (site.store_dir / f".tank-tmp-{image_id}.0123456789ab").write_bytes(b"x" * CHUNK)
    assert show_registry_status(site, image_id) == "saving"  # what the dead process left

    restarted = site.start("tank-api-restarted")
    killed = wait(restarted, image_id, lambda i: i["status"] == "killed")
    assert HEARTBEAT not in site.registry_image(image_id).properties
    log = wait_for_log(restarted, f"image {image_id}: partial data in store file")
    assert site.files() == []
    assert f"image {image_id} killed: the upload stopped" in log
    assert killed["size"] is None

    # the same data uploads fine to a new image
    data = b"y" * 3 * CHUNK
    again = create(restarted, "again")
    resp = requests.put(
        f"{restarted.url}/v2/images/{again}/file",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert resp.status_code == 204, resp.text
    done = show(restarted, again)
    assert done["status"] == "active" and done["checksum"] == hashlib.md5(data).hexdigest()
    assert requests.get(f"{restarted.url}/v2/images/{again}/file", timeout=30).content == data
    assert HEARTBEAT not in site.registry_image(again).properties
    assert site.files() == [again]


def show_registry_status(site: Site, image_id: str) -> str:
    return str(site.registry_image(image_id).status)


# --- the same on a remote store: s3 on Ceph RGW ----------------------------------------


class Bucket:
    """A bucket of its own on the RGW test server, seen through plain botocore."""

    def __init__(self) -> None:
        pytest.importorskip("tank_store_s3", reason="tank-store-s3 is not installed")
        import botocore.session
        from botocore.config import Config

        prefix = "TANK_TEST_RGW_S3_"
        env = require_env(prefix + "ENDPOINT", prefix + "ACCESS_KEY", prefix + "SECRET_KEY")
        self.endpoint = env[prefix + "ENDPOINT"]
        self.access_key = env[prefix + "ACCESS_KEY"]
        self.secret_key = env[prefix + "SECRET_KEY"]
        self.name = f"tank-faults-{uuid.uuid4().hex[:12]}"
        self.client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        self.client.create_bucket(Bucket=self.name)

    def config(self) -> str:
        """``[stores.s3]`` on this bucket, in 5 MiB parts (the smallest S3 allows)."""
        return (
            f'[stores.s3]\nendpoint = "{self.endpoint}"\naccess_key = "{self.access_key}"\n'
            f'secret_key = "{self.secret_key}"\nbucket = "{self.name}"\n'
            'region = "us-east-1"\naddressing_style = "path"\n'
            f"large_object_size = {5 << 20}\nlarge_object_chunk_size = {5 << 20}\n"
        )

    def leftovers(self) -> set[str]:
        """Object keys, and ``upload:<key>`` for each unfinished multipart upload."""
        found = {
            o["Key"] for o in self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        }
        uploads = self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])
        return found | {f"upload:{u['Key']}" for u in uploads}

    def delete(self) -> None:
        for upload in self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", []):
            self.client.abort_multipart_upload(
                Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for key in self.leftovers():
            if not key.startswith("upload:"):
                self.client.delete_object(Bucket=self.name, Key=key)
        self.client.delete_bucket(Bucket=self.name)


@pytest.fixture
def s3_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Site, Bucket]]:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)  # loopback, whatever proxy is configured
    # botocore's import and S3 model take seconds more to load on a busy machine: a
    # deadline for the start, not a speed measure
    monkeypatch.setattr(api_server, "STARTUP_TIMEOUT", 60.0)
    bucket = Bucket()
    try:
        site = Site(tmp_path, top='default_store = "s3"\n', stores=bucket.config())
        for _ in _serve(site):
            yield site, bucket
    finally:
        bucket.delete()


def test_an_upload_to_s3_cut_by_sigkill_is_killed_after_its_lease_and_leaves_nothing(
    s3_site: tuple[Site, Bucket],
) -> None:
    site, bucket = s3_site
    first = site.start("tank-api")
    image_id = create(first, "interrupted on s3")
    sock = start_upload(first, f"/v2/images/{image_id}/file", 32 << 20)
    sock.sendall(b"s" * (12 << 20))  # two 5 MiB parts and some
    deadline = time.monotonic() + 30
    while f"upload:{image_id}" not in bucket.leftovers():
        assert time.monotonic() < deadline, f"no multipart upload started\n{first.log()}"
        time.sleep(0.1)

    first.proc.kill()  # SIGKILL: the multipart upload stays unfinished on the server
    first.proc.wait(10)
    sock.close()
    assert bucket.leftovers() == {f"upload:{image_id}"}
    assert show_registry_status(site, image_id) == "saving"

    restarted = site.start("tank-api-restarted")
    killed = wait(restarted, image_id, lambda i: i["status"] == "killed")
    assert killed["size"] is None
    log = wait_for_log(restarted, f"image {image_id}: partial data in store s3")
    assert "unfinished multipart upload" in log
    assert bucket.leftovers() == set()  # the parts are aborted, no object was made
    assert f"image {image_id} killed: the upload stopped" in log
    assert bucket.secret_key not in log


def test_a_slow_live_upload_is_not_killed_by_another_tank_api(site: Site) -> None:
    sweeping = site.start("tank-api-a")  # sweeps every second, as does the uploader
    uploading = site.start("tank-api-b")
    image_id = create(uploading, "slow but alive")
    total = 64 * CHUNK
    sock = start_upload(uploading, f"/v2/images/{image_id}/file", total)
    sock.sendall(b"\0" * CHUNK)
    digest = hashlib.md5(b"\0" * CHUNK)
    sent = CHUNK
    wait(uploading, image_id, lambda i: i["status"] == "saving")
    beats = set()
    # Send a chunk at a time until the heartbeat was refreshed 4 times: two leases at
    # least, through several sweeps of both processes.
    while len(beats) < 5:
        assert sent < total - CHUNK, "the heartbeat was not refreshed while data flowed"
        chunk = bytes([sent // CHUNK % 256]) * CHUNK
        sock.sendall(chunk)
        digest.update(chunk)
        sent += CHUNK
        image = site.registry_image(image_id)
        assert str(image.status) == "saving", image
        if HEARTBEAT in image.properties:
            beats.add(image.properties[HEARTBEAT])
        time.sleep(0.15)
    rest = b"z" * (total - sent)
    sock.sendall(rest)
    digest.update(rest)
    assert status_line(sock).startswith("HTTP/1.1 204"), uploading.log()
    sock.close()
    done = show(sweeping, image_id)
    assert done["status"] == "active" and done["size"] == total
    assert done["checksum"] == digest.hexdigest()
    assert HEARTBEAT not in site.registry_image(image_id).properties
    for server in (sweeping, uploading):
        assert "killed" not in server.log_path.read_text()


# --- the sweep itself, in this process -----------------------------------------------


def saving(service: ImageService, name: str, heartbeat: str | None) -> Image:
    """An image left ``saving`` by an upload that is not running here."""
    admin = Context.admin()
    image = service.create({"name": name}, context=admin)
    props = {HEARTBEAT: heartbeat} if heartbeat is not None else {}
    return service.registry.update(
        image.id, {"status": "saving", "properties": props}, context=admin
    )


def test_the_sweep_kills_only_expired_leases(service: ImageService, recorder: Any) -> None:
    stale = saving(service, "stale", f"{time.time() - service.upload_lease - 5:.3f}")
    fresh = saving(service, "fresh", f"{time.time():.3f}")
    purged = saving(service, "no heartbeat, just changed", None)  # e.g. a v1 PUT purged it
    service.registry.update(stale.id, {"properties": {"kept": "yes"}}, context=Context.admin())
    # an unrecorded file of the stale upload, and the data of an active image
    datadir = Path(service.stores.get("file").config.datadir)
    datadir.mkdir(parents=True, exist_ok=True)
    (datadir / stale.id).write_bytes(b"partial")
    active = service.create({"name": "active"}, iter([b"data"]), context=Context.admin())

    assert upload_lease.sweep(service) == [stale.id]
    killed = service.get(stale.id, context=Context.admin())
    assert str(killed.status) == "killed"
    assert killed.properties == {"kept": "yes"}  # only the lease went
    assert [e for e in recorder.events if e[0] == "killed"] == [
        ("killed", stale.id, recorder.events[-1][2])
    ]
    assert "no sign of life" in recorder.events[-1][2]
    for image in (fresh, purged):
        assert str(service.get(image.id, context=Context.admin()).status) == "saving"
    assert sorted(p.name for p in datadir.iterdir()) == [active.id]
    assert upload_lease.sweep(service) == []  # nothing twice
