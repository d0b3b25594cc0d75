"""Quotas (issue 15) through real tank-api processes: each of Glance's four limits in
v1 and v2 (413 naming the limit, nothing left behind), admins exempt, a project's own
limits, ``GET /v2/info/usage``, and two tank-api processes on one PostgreSQL racing
for the last slots without ever overshooting.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.testing.api_server import ApiServer, stop_all
from tank.testing.postgresql import db_upgrade, pg_schema

MIB = 1 << 20
#: The project with the default limits, and one with its own.
SMALL = f"small-{uuid.uuid4().hex[:8]}"
BIG = f"big-{uuid.uuid4().hex[:8]}"

QUOTAS = f"""
[quotas]
image_count_total = 3
image_count_uploading = 1
image_size_total = 1      # MiB
image_stage_total = 1     # MiB

[quotas.projects.{BIG}]
image_count_total = -1
image_count_uploading = -1
image_size_total = 3
"""


def who(project: str, *roles: str) -> dict[str, str]:
    return {
        "X-Identity-Status": "Confirmed",
        "X-Project-Id": project,
        "X-Roles": ",".join(roles or ("member", "reader")),
    }


class Site:
    """A config with quotas, an fs store and a registry that tank-api processes share."""

    def __init__(self, root: Path, extra: str = "") -> None:
        self.root = root
        self.data_dir = root / "data"
        self.store_dir = root / "store"
        self.config = root / "tank.toml"
        self.config.write_text(
            f'[stores.file]\ndatadir = "{self.store_dir}"\n'
            f"[import]\nallow_private_networks = true\n{QUOTAS}{extra}"
        )
        self.servers: list[ApiServer] = []

    def start(self, name: str = "api") -> ApiServer:
        server = ApiServer(
            self.data_dir, self.root / f"{name}.log", ["--auth", "--config", str(self.config)]
        )
        self.servers.append(server)
        return server

    def stored(self) -> list[str]:
        return sorted(p.name for p in self.store_dir.iterdir()) if self.store_dir.exists() else []

    def staged(self) -> list[str]:
        staging = self.data_dir / "staging"
        return sorted(p.name for p in staging.iterdir()) if staging.exists() else []

    def stop(self) -> None:
        stop_all(self.servers)


class Caller:
    def __init__(self, server: ApiServer, project: str, *roles: str) -> None:
        self.url = server.url
        self.project = project
        self.headers = who(project, *roles)

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def create(self, **body: Any) -> requests.Response:
        body = {"disk_format": "raw", "container_format": "bare", **body}
        return self.call("POST", "/v2/images", json=body)

    def new_image(self) -> str:
        resp = self.create()
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def upload(self, image_id: str, data: Any, path: str = "file") -> requests.Response:
        headers = {"Content-Type": "application/octet-stream"}
        return self.call("PUT", f"/v2/images/{image_id}/{path}", data=data, headers=headers)

    def show(self, image_id: str) -> dict[str, Any]:
        resp = self.call("GET", f"/v2/images/{image_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def wait(self, image_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            image = self.show(image_id)
            if done(image):
                return image
            time.sleep(0.1)
        raise AssertionError(f"image {image_id} never got there: {image}")

    def import_(self, image_id: str, method: dict[str, str]) -> requests.Response:
        return self.call("POST", f"/v2/images/{image_id}/import", json={"method": method})

    def usage(self) -> dict[str, dict[str, int]]:
        resp = self.call("GET", "/v2/info/usage")
        assert resp.status_code == 200, resp.text
        return resp.json()["usage"]  # type: ignore[no-any-return]

    def delete_all(self) -> None:
        for image in self.call("GET", "/v2/images?limit=1000").json()["images"]:
            if image["owner"] == self.project:
                assert self.call("DELETE", f"/v2/images/{image['id']}").status_code == 204


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body of unknown length (requests sends it chunked)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def over(resp: requests.Response, limit: str) -> str:
    assert resp.status_code == 413, (resp.status_code, resp.text)
    message = str(resp.json()["error"]["message"])
    assert message.startswith(f"quota exceeded: {limit} is "), message
    return message


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = Site(tmp_path_factory.mktemp("quotas"))
    site.start()
    yield site
    site.stop()


@pytest.fixture
def as_(site: Site) -> Iterator[Callable[..., Caller]]:
    """Callers of the test's own projects (``small`` and ``big`` quotas), their images
    deleted afterwards."""
    made: list[Caller] = []

    def caller(project: str, *roles: str) -> Caller:
        made.append(Caller(site.servers[0], project, *roles))
        return made[-1]

    yield caller
    for caller_ in made:
        Caller(site.servers[0], caller_.project, "admin").delete_all()


def test_image_count_total_in_v2_and_v1(as_: Callable[..., Caller]) -> None:
    small = as_(SMALL)
    for _ in range(3):
        small.new_image()
    message = over(small.create(name="fourth"), "image_count_total")
    assert message == (
        f"quota exceeded: image_count_total is 3 images for project {SMALL}, "
        "3 images in use; 1 image more requested"
    )
    v1 = small.call("POST", "/v1/images", headers={"x-image-meta-name": "v1"})
    over(v1, "image_count_total")
    names = [i["name"] for i in small.call("GET", "/v2/images").json()["images"]]
    assert "fourth" not in names and "v1" not in names and len(names) == 3


def test_admins_are_exempt_and_a_project_may_have_its_own_limits(
    as_: Callable[..., Caller],
) -> None:
    small, admin = as_(SMALL), as_(SMALL, "admin", "member")
    for _ in range(3):
        small.new_image()
    assert admin.create().status_code == 201  # an admin of the project: not checked
    over(small.create(), "image_count_total")
    big = as_(BIG)
    for _ in range(5):  # -1: unlimited for this project
        big.new_image()


def test_image_size_total_declared_size_is_refused_before_the_data(
    site: Site, as_: Callable[..., Caller]
) -> None:
    small = as_(SMALL)
    first, second = small.new_image(), small.new_image()
    assert small.upload(first, os.urandom(600 * 1024)).status_code == 204
    before = site.stored()
    message = over(small.upload(second, os.urandom(600 * 1024)), "image_size_total")
    assert "image_size_total is 1 MiB (1048576 bytes)" in message
    assert "0.59 MiB (614400 bytes) in use" in message, message
    assert small.show(second)["status"] == "queued"  # v2: may be uploaded again
    assert site.stored() == before
    assert small.upload(second, os.urandom(400 * 1024)).status_code == 204


def test_image_size_total_stops_a_stream_at_the_limit(
    site: Site, as_: Callable[..., Caller]
) -> None:
    small = as_(SMALL)
    first, second = small.new_image(), small.new_image()
    assert small.upload(first, chunked(os.urandom(700 * 1024))).status_code == 204
    before = site.stored()
    over(small.upload(second, chunked(os.urandom(700 * 1024))), "image_size_total")
    shown = small.show(second)
    assert shown["status"] == "queued" and shown["size"] is None
    assert site.stored() == before  # nothing of the refused stream is left
    assert small.usage()["image_size_total"] == {"limit": 1, "usage": 0}  # 700 KiB
    assert small.upload(second, chunked(os.urandom(300 * 1024))).status_code == 204


def test_v1_upload_over_the_size_quota_is_killed_and_leaves_nothing(
    site: Site, as_: Callable[..., Caller]
) -> None:
    small = as_(SMALL)
    before = site.stored()
    body = os.urandom(2 * MIB)
    headers = {"x-image-meta-name": "big", "Content-Type": "application/octet-stream"}
    message = over(small.call("POST", "/v1/images", data=body, headers=headers), "image_size_total")
    assert "2 MiB (2097152 bytes) more requested" in message
    streamed = small.call("POST", "/v1/images", data=chunked(body), headers=headers)
    over(streamed, "image_size_total")
    assert site.stored() == before
    assert small.usage()["image_count_total"]["usage"] == 0  # both killed


def test_image_stage_total_and_count_uploading(site: Site, as_: Callable[..., Caller]) -> None:
    small = as_(SMALL)
    first, second = small.new_image(), small.new_image()
    over(small.upload(first, chunked(os.urandom(MIB + 1)), path="stage"), "image_stage_total")
    assert small.show(first)["status"] == "queued"
    assert site.staged() == []
    assert small.upload(first, os.urandom(1000), path="stage").status_code == 204
    assert small.show(first)["status"] == "uploading"
    assert small.usage()["image_count_uploading"] == {"limit": 1, "usage": 1}
    # a second image in flight: one is allowed
    message = over(small.upload(second, os.urandom(10), path="stage"), "image_count_uploading")
    assert "1 image in use" in message
    over(small.upload(second, os.urandom(10)), "image_count_uploading")
    assert small.show(second)["status"] == "queued"


def test_usage_document(as_: Callable[..., Caller]) -> None:
    big = as_(BIG)
    image = big.new_image()
    assert big.upload(image, os.urandom(MIB + 5)).status_code == 204
    big.new_image()
    assert big.usage() == {
        "image_size_total": {"limit": 3, "usage": 1},
        "image_stage_total": {"limit": 1, "usage": 0},
        "image_count_total": {"limit": -1, "usage": 2},
        "image_count_uploading": {"limit": -1, "usage": 0},
    }


def test_import_needs_room_in_the_stores(site: Site, as_: Callable[..., Caller]) -> None:
    small = as_(SMALL)
    first, second = small.new_image(), small.new_image()
    assert small.upload(first, os.urandom(900 * 1024), path="stage").status_code == 204
    assert small.import_(first, {"name": "glance-direct"}).status_code == 202
    small.wait(first, lambda i: i["status"] == "active")
    assert small.upload(second, os.urandom(900 * 1024), path="stage").status_code == 204
    message = over(small.import_(second, {"name": "glance-direct"}), "image_size_total")
    assert "0.88 MiB (921600 bytes) in use" in message, message
    assert small.show(second)["status"] == "uploading"  # still staged: may be imported later
    assert len(site.stored()) == 1


class Web(ThreadingHTTPServer):
    daemon_threads = True
    body = b""


class _Serve(BaseHTTPRequestHandler):
    server: Web

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[Web]:
    server = Web(("127.0.0.1", 0), _Serve)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_web_download_is_held_to_the_staging_and_store_quotas(
    site: Site, as_: Callable[..., Caller], web: Web
) -> None:
    small = as_(SMALL)
    uri = f"http://127.0.0.1:{web.server_address[1]}/image"
    first, second = small.new_image(), small.new_image()
    web.body = os.urandom(MIB + 100)  # more than image_stage_total
    assert small.import_(first, {"name": "web-download", "uri": uri}).status_code == 202
    failed = small.wait(first, lambda i: "os_glance_failed_import" in i)
    assert failed["status"] == "queued"
    reason = failed["os_glance_failed_import_reason"]
    assert reason.startswith("quota exceeded: image_stage_total is 1 MiB"), reason
    web.body = os.urandom(600 * 1024)
    assert small.import_(first, {"name": "web-download", "uri": uri}).status_code == 202
    small.wait(first, lambda i: i["status"] == "active")
    # fits in the staging area, not in the stores (600 KiB are there already)
    assert small.import_(second, {"name": "web-download", "uri": uri}).status_code == 202
    failed = small.wait(second, lambda i: "os_glance_failed_import" in i)
    assert failed["status"] == "queued" and failed["size"] is None
    reason = failed["os_glance_failed_import_reason"]
    assert reason.startswith("quota exceeded: image_size_total is 1 MiB"), reason
    assert len(site.stored()) == 1
    deadline = time.monotonic() + 10  # the failed import removes its staging files last
    while second in str(site.staged()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert second not in str(site.staged()), site.staged()


# --- two tank-api processes on one PostgreSQL ----------------------------------------


@pytest.fixture
def pg_site(tmp_path: Path) -> Iterator[Site]:
    with pg_schema("quota") as dsn:
        site = Site(tmp_path, f'\n[registry]\nconnection = "{dsn}"\n')
        db_upgrade(site.config)
        site.start("one"), site.start("two")
        yield site
        site.stop()


def race(count: int, work: Callable[[int], requests.Response]) -> list[requests.Response]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_quota_race_from_two_processes_on_postgresql(pg_site: Site) -> None:
    one, two = (Caller(server, BIG) for server in pg_site.servers)
    callers = [one, two]
    # creates: BIG has no count limit; SMALL has 3
    small = [Caller(server, SMALL) for server in pg_site.servers]
    made = race(16, lambda i: small[i % 2].create(name=f"racer{i}"))
    assert sorted(r.status_code for r in made) == [201] * 3 + [413] * 13
    for refused in (r for r in made if r.status_code == 413):
        over(refused, "image_count_total")
    listed = small[0].call("GET", "/v2/images").json()["images"]
    assert len(listed) == 3
    # uploads of 1 MiB announced, 3 MiB allowed to BIG: exactly three fit
    images = [callers[i % 2].new_image() for i in range(8)]
    uploads = race(8, lambda i: callers[i % 2].upload(images[i], os.urandom(MIB)))
    assert sorted(r.status_code for r in uploads) == [204] * 3 + [413] * 5, [
        r.text for r in uploads
    ]
    # streams of unknown length: never more than the limit, whatever the timing
    assert one.usage()["image_size_total"] == {"limit": 3, "usage": 3}
    active = [i for i in images if one.show(i)["status"] == "active"]
    for image_id in active:
        assert one.call("DELETE", f"/v2/images/{image_id}").status_code == 204
    images = [callers[i % 2].new_image() for i in range(8)]
    streams = race(8, lambda i: callers[i % 2].upload(images[i], chunked(os.urandom(MIB - 1000))))
    codes = sorted(r.status_code for r in streams)
    assert codes.count(204) >= 1 and set(codes) <= {204, 413}, [r.text for r in streams]
    sizes = [one.show(i) for i in images]
    total = sum(s["size"] for s in sizes if s["status"] == "active")
    assert total <= 3 * MIB
    assert len(pg_site.stored()) == codes.count(204)
    assert one.usage()["image_size_total"]["usage"] * MIB <= 3 * MIB
