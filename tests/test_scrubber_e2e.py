"""Delayed delete, ``tank-manage restore`` and ``tank-manage scrub`` against real tank-api
processes (issue 15), on a shared SQLite registry and on PostgreSQL.

Users are alice (member) and an admin, through ``--auth`` identity headers.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.testing import require_env
from tank.testing.api_server import ApiServer, find_script, stop_all, stored_image
from tank.testing.ports import free_port
from tank.testing.postgresql import pg_schema

ALICE = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "alice", "X-Roles": "member"}
ADMIN = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "ops", "X-Roles": "admin"}
SCRUB_TIME = 6


class Site:
    """One data dir and config that tank-api processes and tank-manage share."""

    def __init__(self, root: Path, registry: str = "", stores: str | None = None) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.store_dir = root / "store"
        self.config = root / "tank.toml"
        self.registry = registry
        self.stores = stores or f'[stores.file]\ndatadir = "{self.store_dir}"\n'
        self.scrubber = f"delayed_delete = true\nscrub_time = {SCRUB_TIME}\n"
        self.write()
        self.servers: list[ApiServer] = []

    def write(self, path: Path | None = None, stores: str | None = None) -> Path:
        path = path or self.config
        path.write_text(f"{stores or self.stores}[scrubber]\n{self.scrubber}{self.registry}")
        return path

    def start(self, name: str) -> ApiServer:
        args = ["--config", str(self.config), "--auth"]
        server = ApiServer(self.data_dir, self.root / f"{name}.log", args)
        self.servers.append(server)
        return server

    def manage(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        exe = find_script("tank-manage")
        assert exe is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
        return subprocess.run(
            [exe, *args, "--config", str(config or self.config), "--data-dir", str(self.data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def files(self) -> list[str]:
        return sorted(p.name for p in self.store_dir.iterdir()) if self.store_dir.exists() else []


def make_site(root: Path, kind: str, **kwargs: Any) -> Iterator[Site]:
    if kind == "sqlite":
        site = Site(root, **kwargs)
        yield from _serve(site)
        return
    with pg_schema("scrub") as dsn:
        site = Site(root, f'[registry]\nconnection = "{dsn}"\n', **kwargs)
        done = site.manage("db", "upgrade")
        assert done.returncode == 0, done.stderr
        yield from _serve(site)


def _serve(site: Site) -> Iterator[Site]:
    yield site
    stop_all(site.servers)


@pytest.fixture(params=["sqlite", "postgresql"])
def site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    yield from make_site(tmp_path, request.param)


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path, "sqlite")


@pytest.fixture
def pg_site(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path, "postgresql")


def upload(server: ApiServer, data: bytes, name: str = "scrub-me") -> str:
    return stored_image(server, data, name, ALICE, timeout=30)


def v1_head(server: ApiServer, image_id: str, who: dict[str, str]) -> requests.Response:
    return requests.head(f"{server.url}/v1/images/{image_id}", headers=who, timeout=10)


def test_delete_keeps_the_data_restore_brings_it_back_scrub_removes_it(site: Site) -> None:
    api = site.start("tank-api")
    other = site.start("tank-api-2")  # a second process on the same registry
    data = os.urandom(300_000)
    image_id = upload(api, data)
    assert site.files() == [image_id]

    resp = requests.delete(f"{api.url}/v2/images/{image_id}", headers=ALICE, timeout=10)
    assert resp.status_code == 204, resp.text
    assert site.files() == [image_id]  # the data stays
    for server in (api, other):
        for who in (ALICE, ADMIN):  # v2: gone, for admins too
            got = requests.get(f"{server.url}/v2/images/{image_id}", headers=who, timeout=10)
            assert got.status_code == 404, got.text
            listed = requests.get(f"{server.url}/v2/images", headers=who, timeout=10).json()
            assert image_id not in [i["id"] for i in listed["images"]]
            again = requests.delete(f"{server.url}/v2/images/{image_id}", headers=who, timeout=10)
            assert again.status_code == 404, again.text
        # v1 as Glance v1: admins see it pending_delete and deleted; its owner does not
        head = v1_head(server, image_id, ADMIN)
        assert head.status_code == 200
        assert head.headers["x-image-meta-status"] == "pending_delete"
        assert head.headers["x-image-meta-deleted"] == "True"
        assert head.headers["x-image-meta-deleted_at"]
        assert v1_head(server, image_id, ALICE).status_code == 404
        got = requests.get(f"{server.url}/v1/images/{image_id}", headers=ADMIN, timeout=10)
        assert got.status_code == 404
        again = requests.delete(f"{server.url}/v1/images/{image_id}", headers=ADMIN, timeout=10)
        assert again.status_code == 403 and "pending_delete" in again.text

    restored = site.manage("restore", image_id)
    assert restored.returncode == 0, restored.stderr
    assert f"image {image_id} restored: active" in restored.stdout
    shown = requests.get(f"{other.url}/v2/images/{image_id}", headers=ALICE, timeout=10).json()
    assert shown["status"] == "active" and shown["checksum"] == hashlib.md5(data).hexdigest()
    got = requests.get(f"{other.url}/v2/images/{image_id}/file", headers=ALICE, timeout=30)
    assert got.status_code == 200 and hashlib.md5(got.content).hexdigest() == shown["checksum"]

    # deleted again, through v1 this time: scrubbed only once scrub_time has passed
    resp = requests.delete(f"{api.url}/v1/images/{image_id}", headers=ALICE, timeout=10)
    assert resp.status_code == 200, resp.text
    deleted_at = time.monotonic()
    early = site.manage("scrub")
    assert early.returncode == 0, early.stderr
    if time.monotonic() - deleted_at < SCRUB_TIME:  # (a slow machine may take longer)
        assert "scrub pass done: 0 done, 0 failed" in early.stdout
        assert site.files() == [image_id]
    time.sleep(max(0.0, SCRUB_TIME + 0.5 - (time.monotonic() - deleted_at)))
    scrubbed = site.manage("scrub")
    assert scrubbed.returncode == 0, scrubbed.stderr
    line = f"delayed delete: image {image_id} scrubbed (data removed, now deleted)"
    assert (early.stdout + scrubbed.stdout).count(line) == 1
    assert site.files() == []
    head = v1_head(other, image_id, ADMIN)
    assert head.headers["x-image-meta-status"] == "deleted"
    assert head.headers["x-image-meta-deleted"] == "True"
    assert not [k for k in head.headers if "scrub" in k.lower()]  # the claim is not shown

    refused = site.manage("restore", image_id)
    assert refused.returncode == 1
    assert (
        "cannot restore the image from deleted to active (wanted from_state=pending_delete)"
        in refused.stderr
    )
    missing = str(uuid.uuid4())
    unknown = site.manage("restore", missing)
    assert unknown.returncode == 1 and f"No image found with ID {missing}" in unknown.stderr


def test_restore_refuses_to_take_the_owner_over_a_quota_unless_forced(site: Site) -> None:
    api = site.start("tank-api")
    first = upload(api, os.urandom(700_000), "first")
    resp = requests.delete(f"{api.url}/v2/images/{first}", headers=ALICE, timeout=10)
    assert resp.status_code == 204, resp.text
    second = upload(api, os.urandom(700_000), "second")  # fits once first is pending_delete

    def restore_under(quota: str, *args: str) -> subprocess.CompletedProcess[str]:
        path = site.write(site.root / "quota.toml")
        path.write_text(f"{path.read_text()}[quotas]\n{quota}")
        return site.manage("restore", first, *args, config=path)

    def status(image_id: str) -> str:
        return str(v1_head(api, image_id, ADMIN).headers["x-image-meta-status"])

    over_size = restore_under("image_size_total = 1\n")
    assert over_size.returncode == 1, over_size.stdout
    assert (
        f"image {first} not restored: quota exceeded: image_size_total is 1 MiB (1048576 bytes) "
        "for project alice, 0.67 MiB (700000 bytes) in use; 0.67 MiB (700000 bytes) more "
        "requested (--force restores it anyway)"
    ) in over_size.stderr
    over_count = restore_under("image_count_total = 1\n")
    assert over_count.returncode == 1, over_count.stdout
    assert (
        "quota exceeded: image_count_total is 1 image for project alice, 1 image in use; "
        "1 image more requested"
    ) in over_count.stderr
    assert status(first) == "pending_delete"  # nothing changed
    assert site.files() == sorted([first, second])

    # another project's limit, or one the restore stays within, does not stop it
    fits = restore_under("image_count_total = 2\n[quotas.projects.bob]\nimage_count_total = 0\n")
    assert fits.returncode == 0, fits.stderr
    resp = requests.delete(f"{api.url}/v2/images/{first}", headers=ALICE, timeout=10)
    assert resp.status_code == 204, resp.text

    forced = restore_under("image_count_total = 1\n", "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"image {first} restored: active" in forced.stdout
    assert status(first) == "active"
    usage = requests.get(f"{api.url}/v2/info/usage", headers=ALICE, timeout=10).json()
    assert usage["usage"]["image_count_total"]["usage"] == 2


def test_restore_help_documents_force(sqlite_site: Site) -> None:
    exe = find_script("tank-manage")
    assert exe is not None
    shown = subprocess.run([exe, "restore", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "--force" in shown.stdout and "[quotas] limit" in shown.stdout


def test_a_store_that_fails_leaves_it_pending_delete_for_a_later_pass(
    tmp_path: Path,
) -> None:
    """The data is in S3 (Ceph RGW); the first pass runs with the endpoint unreachable."""
    env = require_env(
        "TANK_TEST_RGW_S3_ENDPOINT", "TANK_TEST_RGW_S3_ACCESS_KEY", "TANK_TEST_RGW_S3_SECRET_KEY"
    )
    bucket = f"tank-scrub-{uuid.uuid4().hex[:12]}"

    def s3(endpoint: str) -> str:
        return (
            f'default_store = "s3"\n[stores.s3]\nbucket = "{bucket}"\n'
            f'endpoint = "{endpoint}"\ncreate_bucket_on_put = true\n'
            f'access_key = "{env["TANK_TEST_RGW_S3_ACCESS_KEY"]}"\n'
            f'secret_key = "{env["TANK_TEST_RGW_S3_SECRET_KEY"]}"\n'
        )

    from tank_store_s3 import S3Backend

    store = S3Backend(
        S3Backend.Config(
            bucket=bucket,
            endpoint=env["TANK_TEST_RGW_S3_ENDPOINT"],
            access_key=env["TANK_TEST_RGW_S3_ACCESS_KEY"],
            secret_key=env["TANK_TEST_RGW_S3_SECRET_KEY"],
        ),
        name="s3",
    )
    client = store.client  # botocore: to look behind Tank's back

    gen = make_site(tmp_path, "sqlite", stores=s3(env["TANK_TEST_RGW_S3_ENDPOINT"]))
    site = next(gen)
    try:
        api = site.start("tank-api")
        data = os.urandom(200_000)
        image_id = upload(api, data)
        assert (
            requests.delete(
                f"{api.url}/v2/images/{image_id}", headers=ALICE, timeout=10
            ).status_code
            == 204
        )
        site.scrubber = "delayed_delete = true\nscrub_time = 0\n"
        down = site.write(tmp_path / "down.toml", stores=s3(f"http://127.0.0.1:{free_port()}"))
        failed = site.manage("scrub", config=down)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert f"FAILED image {image_id} stays pending_delete: store s3:" in failed.stdout
        assert "scrub pass done: 0 done, 1 failed" in failed.stdout
        assert env["TANK_TEST_RGW_S3_SECRET_KEY"] not in failed.stdout + failed.stderr
        head = v1_head(api, image_id, ADMIN)
        assert head.headers["x-image-meta-status"] == "pending_delete"
        assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 1  # data still there

        up = site.write(tmp_path / "up.toml")
        done = site.manage("scrub", config=up)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"image {image_id} scrubbed" in done.stdout
        assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
        assert v1_head(api, image_id, ADMIN).headers["x-image-meta-status"] == "deleted"
    finally:
        for _ in gen:
            pass
        objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        for obj in objects:
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
        store.close()


def test_two_scrub_passes_at_once_share_the_work(pg_site: Site) -> None:
    """Two tank-manage scrub processes on one PostgreSQL: each image is scrubbed by
    exactly one of them, and neither reports a failure."""
    api = pg_site.start("tank-api")
    ids = [upload(api, os.urandom(10_000), f"many-{n}") for n in range(24)]
    for image_id in ids:
        resp = requests.delete(f"{api.url}/v2/images/{image_id}", headers=ALICE, timeout=10)
        assert resp.status_code == 204
    time.sleep(SCRUB_TIME + 0.5)
    exe = find_script("tank-manage")
    assert exe is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
    args = [exe, "scrub", "--config", str(pg_site.config), "--data-dir", str(pg_site.data_dir)]
    procs = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out + err
        assert "FAILED" not in out
    scrubbed = [{i for i in ids if f"image {i} scrubbed" in out} for out, _ in outs]
    assert scrubbed[0] | scrubbed[1] == set(ids)
    assert not scrubbed[0] & scrubbed[1]
    assert pg_site.files() == []
    for image_id in ids:
        assert v1_head(api, image_id, ADMIN).headers["x-image-meta-status"] == "deleted"


def wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_in_api_two_tank_api_processes_elect_one_scrubber(pg_site: Site) -> None:
    """``in_api``: of two tank-api processes on one PostgreSQL only one runs the scrub
    pass; stopped (SIGTERM), it gives the lease up and the other one takes over."""
    pg_site.scrubber = "delayed_delete = true\nscrub_time = 0\nin_api = true\ninterval = 0.5\n"
    pg_site.write()
    servers = [pg_site.start("tank-api-a"), pg_site.start("tank-api-b")]
    ids = [upload(servers[n % 2], os.urandom(5_000), f"elect-{n}") for n in range(6)]
    for n, image_id in enumerate(ids):
        url = f"{servers[n % 2].url}/v2/images/{image_id}"
        assert requests.delete(url, headers=ALICE, timeout=10).status_code == 204

    def status(image_id: str) -> str:
        return v1_head(servers[0], image_id, ADMIN).headers["x-image-meta-status"]

    def read_logs() -> list[str]:
        return [s.log_path.read_text() for s in servers]

    # A claim makes an image ``deleted`` before its data is removed and the pass reports
    # it, so the pass's report line, not the status, says a scrub is over.
    wait_for(lambda: all(f"image {i} scrubbed" in "".join(read_logs()) for i in ids), "the scrubs")
    assert all(status(i) == "deleted" for i in ids)
    assert pg_site.files() == []
    logs = read_logs()
    runs = ["scrubber: this tank-api (" in log for log in logs]
    scrubbed = [{i for i in ids if f"image {i} scrubbed" in log} for log in logs]
    leader = 0 if scrubbed[0] else 1
    assert scrubbed[leader] == set(ids) and scrubbed[1 - leader] == set(), scrubbed
    assert runs[leader] and not runs[1 - leader]

    servers[leader].stop()  # SIGTERM: the lease is released
    assert "scrubber: lease released" in servers[leader].log_path.read_text()
    follower = servers[1 - leader]
    late = upload(follower, os.urandom(5_000), "late")
    assert requests.delete(f"{follower.url}/v2/images/{late}", headers=ALICE, timeout=10).ok

    def late_scrubbed() -> bool:
        return f"image {late} scrubbed" in follower.log_path.read_text()

    wait_for(late_scrubbed, "the follower to take over", timeout=30)
    assert "scrubber: this tank-api (" in follower.log_path.read_text()
    assert v1_head(follower, late, ADMIN).headers["x-image-meta-status"] == "deleted"
    assert pg_site.files() == []


def test_scrub_daemon_runs_passes_until_sigterm(sqlite_site: Site) -> None:
    site = sqlite_site
    site.scrubber = "delayed_delete = true\nscrub_time = 0\ninterval = 0.5\n"
    site.write()
    api = site.start("tank-api")
    exe = find_script("tank-manage")
    assert exe is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
    args = ["scrub", "--daemon", "--config", str(site.config), "--data-dir", str(site.data_dir)]
    daemon = subprocess.Popen(
        [exe, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for n in range(2):  # two passes at least: one image each
            image_id = upload(api, os.urandom(5_000), f"daemon-{n}")
            url = f"{api.url}/v2/images/{image_id}"
            assert requests.delete(url, headers=ALICE, timeout=10).status_code == 204

            def gone(image_id: str = image_id) -> bool:
                # deleted from the claim on; the data is removed after it
                head = v1_head(api, image_id, ADMIN)
                deleted = head.headers["x-image-meta-status"] == "deleted"
                return deleted and image_id not in site.files()

            wait_for(gone, "the daemon's pass")
        assert site.files() == []
    finally:
        daemon.terminate()
        out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "scrubber running: a pass every 0.5 s" in err and "scrubber stopped" in err
    assert out.count(" scrubbed (data removed, now deleted)") == 2
    assert "Traceback" not in err
