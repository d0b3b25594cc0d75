"""Locations for services (``POST|GET /v2/images/{id}/locations``, ``DELETE
/v2/stores/{store}/{id}``) and multi-store reads, against a real tank-api with
``--auth`` and two filesystem stores, ``east`` (the default) and ``west``.

Data is "handed over" the way Nova's RBD snapshot does it: written into a store's
namespace under the new image's id, out of band, then announced by a service.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.config import load
from tank.model import Context, Location
from tank.service import ImageService
from tank.testing import require_env
from tank.testing.api_server import ApiServer

WAIT = 30.0


def who(tenant: str, *roles: str, service_roles: str = "") -> dict[str, str]:
    headers = {
        "X-Identity-Status": "Confirmed",
        "X-Tenant-Id": tenant,
        "X-User-Id": f"{tenant}-user",
        "X-Roles": ",".join(roles),
    }
    if service_roles:
        headers["X-Service-Roles"] = service_roles
    return headers


ALICE = who("alice", "member", "reader")
#: Nova acting for alice: alice's token plus a service token (keystonemiddleware's headers)
NOVA = who("alice", "member", "reader", service_roles="service")
SERVICE = who("alice", "service")
ADMIN = who("ops", "admin")


class Cloud:
    """A tank-api with two fs stores, and what a test needs around it."""

    def __init__(self, api: ApiServer, root: Path, config: Path) -> None:
        self.api = api
        self.url = api.url
        self.config = config
        self.east = root / "east"
        self.west = root / "west"

    def create(self, name: str = "snap", headers: dict[str, str] = ALICE) -> str:
        resp = requests.post(
            f"{self.url}/v2/images",
            json={"name": name, "disk_format": "raw", "container_format": "bare"},
            headers=headers,
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def show(self, image_id: str, headers: dict[str, str] = ALICE) -> dict[str, Any]:
        resp = requests.get(f"{self.url}/v2/images/{image_id}", headers=headers, timeout=10)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def add_location(
        self,
        image_id: str,
        url: str,
        validation: dict[str, str] | None = None,
        headers: dict[str, str] = SERVICE,
    ) -> requests.Response:
        body: dict[str, Any] = {"url": url}
        if validation is not None:
            body["validation_data"] = validation
        return requests.post(
            f"{self.url}/v2/images/{image_id}/locations", json=body, headers=headers, timeout=10
        )

    def locations(self, image_id: str, headers: dict[str, str] = SERVICE) -> requests.Response:
        return requests.get(
            f"{self.url}/v2/images/{image_id}/locations", headers=headers, timeout=10
        )

    def settled(self, image_id: str) -> dict[str, Any]:
        """The image once its handed-over location is verified (or refused)."""
        deadline = time.monotonic() + WAIT
        while True:
            image = self.show(image_id, ADMIN)
            if image["status"] != "importing" or time.monotonic() > deadline:
                return image
            time.sleep(0.05)

    def download(self, image_id: str, version: str = "v2") -> requests.Response:
        return requests.get(
            f"{self.url}/{version}/images/{image_id}" + ("/file" if version == "v2" else ""),
            headers=ALICE,
            timeout=30,
        )

    def registry_set_locations(self, image_id: str, locations: list[Location]) -> None:
        """What a copy-image import leaves: the image in several stores (written through
        the shared registry, as the import would)."""
        config = load(self.config, data_dir=self.api.data_dir, environ={})
        with ImageService.from_config(config) as service:
            service.registry.update(image_id, {"locations": locations}, context=Context.admin())


@pytest.fixture
def cloud(start_api: Callable[..., ApiServer], tmp_path: Path) -> Iterator[Cloud]:
    root = tmp_path / "stores"
    config = tmp_path / "tank.toml"
    config.write_text(
        'default_store = "east"\n'
        f'[stores.east]\ntype = "file"\ndatadir = "{root / "east"}"\n'
        f'[stores.west]\ntype = "file"\ndatadir = "{root / "west"}"\n'
        "[stores.http]\nallow_private_networks = true\n"
    )
    api = start_api("--auth", "--config", str(config))
    yield Cloud(api, root, config)
    assert "unexpected error" not in api.log(), api.log()


def sums(data: bytes, algo: str = "sha256") -> dict[str, str]:
    return {
        "checksum": hashlib.md5(data).hexdigest(),
        "os_hash_algo": algo,
        "os_hash_value": hashlib.new(algo, data).hexdigest(),
    }


def file_url(path: Path) -> str:
    return f"file://{path}"


def test_a_service_hands_over_data_and_the_image_downloads_right(cloud: Cloud) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    image_id = cloud.create()
    (cloud.west / image_id).write_bytes(data)  # the service's out-of-band copy
    resp = cloud.add_location(image_id, file_url(cloud.west / image_id), sums(data, "sha512"))
    assert resp.status_code == 202, resp.text

    image = cloud.settled(image_id)
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert image["stores"] == "west"
    assert "os_glance_hash_op_host" not in image
    for version in ("v2", "v1"):
        got = cloud.download(image_id, version)
        assert got.status_code == 200 and got.content == data, version
    assert cloud.locations(image_id).json() == [
        {"url": file_url(cloud.west / image_id), "metadata": {"store": "west"}}
    ]
    # handed over: deleting the image deletes the data, as Glance does
    assert requests.delete(f"{cloud.url}/v2/images/{image_id}", headers=ALICE, timeout=10).ok
    assert not (cloud.west / image_id).exists()


def test_nova_with_a_service_token_hands_over_without_validation_data(cloud: Cloud) -> None:
    """Nova sends the user's token and its own service token; with no validation data
    Tank still computes the checksums it shows."""
    data = b"snapshot bytes " * 1000
    image_id = cloud.create()
    (cloud.east / image_id).write_bytes(data)
    assert (
        cloud.add_location(image_id, file_url(cloud.east / image_id), headers=NOVA).status_code
        == 202
    )
    image = cloud.settled(image_id)
    assert image["status"] == "active"
    assert (image["checksum"], image["os_hash_algo"], image["os_hash_value"]) == (
        hashlib.md5(data).hexdigest(),
        "sha256",
        hashlib.sha256(data).hexdigest(),
    )
    assert cloud.download(image_id).content == data
    # only once: the first location is the image's data
    again = cloud.add_location(image_id, file_url(cloud.east / image_id), headers=NOVA)
    assert again.status_code == 409


@pytest.mark.parametrize("wrong", ["checksum", "os_hash_value"])
def test_wrong_validation_data_never_yields_an_active_image(cloud: Cloud, wrong: str) -> None:
    data = os.urandom(200_000)
    image_id = cloud.create()
    path = cloud.west / image_id
    path.write_bytes(data)
    claimed = sums(data)
    claimed[wrong] = sums(b"other data")[wrong]
    assert cloud.add_location(image_id, file_url(path), claimed).status_code == 202

    image = cloud.settled(image_id)
    assert image["status"] == "queued"
    assert image["checksum"] is None and image["os_hash_value"] is None
    assert "stores" not in image
    assert cloud.locations(image_id).json() == []
    assert cloud.download(image_id).status_code == 204
    assert path.read_bytes() == data  # never shown to be this image's: not Tank's to delete
    assert f"image {image_id}: handed-over location refused" in cloud.api.log()
    assert f"{wrong} is" in cloud.api.log()
    # the image is queued again: the right data can still be handed over
    assert cloud.add_location(image_id, file_url(path), sums(data)).status_code == 202
    assert cloud.settled(image_id)["status"] == "active"
    assert cloud.download(image_id).content == data


def test_users_may_not_add_list_or_remove_locations(cloud: Cloud) -> None:
    data = b"x" * 1000
    image_id = cloud.create()
    (cloud.east / image_id).write_bytes(data)
    url = file_url(cloud.east / image_id)
    for headers in (ALICE, who("alice", "member", service_roles="member")):
        assert cloud.add_location(image_id, url, sums(data), headers=headers).status_code == 403
        assert cloud.locations(image_id, headers).status_code == 403
    assert cloud.show(image_id)["status"] == "queued"
    # a service may, and then the owner still cannot see where the data is
    assert cloud.add_location(image_id, url, sums(data)).status_code == 202
    assert cloud.settled(image_id)["status"] == "active"
    assert cloud.locations(image_id, ALICE).status_code == 403
    assert "locations" not in cloud.show(image_id) and "direct_url" not in cloud.show(image_id)
    resp = requests.delete(f"{cloud.url}/v2/stores/east/{image_id}", headers=ALICE, timeout=10)
    assert resp.status_code == 403
    # a service adding to an image it cannot see is told nothing about it
    hidden = cloud.create(headers=who("bob", "member"))
    assert cloud.add_location(hidden, url, headers=who("carol", "service")).status_code == 404


def test_locations_outside_a_store_or_of_another_image_are_refused(cloud: Cloud) -> None:
    other = cloud.create("other")
    put = requests.put(
        f"{cloud.url}/v2/images/{other}/file",
        data=b"another tenant's image",
        headers={**ALICE, "Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert put.status_code == 204
    assert (cloud.east / other).exists()
    image_id = cloud.create()
    (cloud.west / "x").write_bytes(b"x")
    refused = {
        "file:///etc/passwd": 400,
        f"file://{cloud.west}/../x": 400,
        f"file://{cloud.west}/../west/x": 400,
        f"file://{cloud.east}/{other}": 400,  # another image's data
        f"file://{cloud.west}/{image_id}": 400,  # no data there
        "gopher://example.com/x": 400,
        "not a url": 400,
    }
    for url, status in refused.items():
        resp = cloud.add_location(image_id, url)
        assert resp.status_code == status, (url, resp.text)
        assert cloud.show(image_id)["status"] == "queued", url
    assert "names image" in cloud.add_location(image_id, f"file://{cloud.east}/{other}").text
    for body in ({}, {"url": 5}, {"url": "file:///x", "extra": 1}, []):
        resp = requests.post(
            f"{cloud.url}/v2/images/{image_id}/locations", json=body, headers=SERVICE, timeout=10
        )
        assert resp.status_code == 400, body
    for validation in (
        {"os_hash_algo": "sha256"},
        {"os_hash_algo": "crc32", "os_hash_value": "00"},
        {"os_hash_algo": "sha256", "os_hash_value": "ab"},
        {"checksum": "not hex"},
    ):
        resp = cloud.add_location(image_id, f"file://{cloud.west}/x", validation)
        assert resp.status_code == 400, validation
    assert cloud.show(image_id)["status"] == "queued"
    assert requests.get(f"{cloud.url}/v2/images/{other}/file", headers=ALICE, timeout=10).ok


class _Data(http.server.BaseHTTPRequestHandler):
    data = b""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.data)))
        self.end_headers()

    def do_GET(self) -> None:
        self.do_HEAD()
        self.wfile.write(self.data)

    def log_message(self, *args: object) -> None:
        pass


def test_location_urls_never_show_secrets(cloud: Cloud) -> None:
    """A read-only (http) location handed over with a signed URL: listed without the
    signature, never in the log, and not owned (deleting the image leaves it)."""
    data = os.urandom(50_000)
    _Data.data = data
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Data)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/snap.raw?sig=TOPSECRET1&x=1"
        image_id = cloud.create()
        assert cloud.add_location(image_id, url, sums(data)).status_code == 202
        assert cloud.settled(image_id)["status"] == "active"
        assert cloud.download(image_id).content == data
        for headers in (SERVICE, ADMIN):
            listed = cloud.locations(image_id, headers)
            assert listed.status_code == 200
            assert "TOPSECRET1" not in listed.text
            (location,) = listed.json()
            assert location["metadata"] == {"store": "http"}
            assert location["url"].startswith(f"http://127.0.0.1:{server.server_port}/snap.raw?")
        assert "TOPSECRET1" not in cloud.api.log()
        assert requests.delete(f"{cloud.url}/v2/images/{image_id}", headers=ALICE, timeout=10).ok
    finally:
        server.shutdown()
        server.server_close()


def _two_copies(cloud: Cloud, data: bytes) -> str:
    """An image uploaded to east, with a second copy in west."""
    image_id = cloud.create()
    put = requests.put(
        f"{cloud.url}/v2/images/{image_id}/file",
        data=data,
        headers={**ALICE, "Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert put.status_code == 204
    (cloud.west / image_id).write_bytes(data)
    cloud.registry_set_locations(
        image_id,
        [
            Location(url=file_url(cloud.east / image_id), store="east"),
            Location(url=file_url(cloud.west / image_id), store="west"),
        ],
    )
    assert cloud.show(image_id)["stores"] == "east,west"
    return image_id


def test_removing_one_store_leaves_the_other_copy_downloadable(cloud: Cloud) -> None:
    data = os.urandom(1_000_000)
    image_id = _two_copies(cloud, data)
    stores = f"{cloud.url}/v2/stores"

    def remove(store: str, headers: dict[str, str] = ADMIN) -> requests.Response:
        return requests.delete(f"{stores}/{store}/{image_id}", headers=headers, timeout=10)

    assert remove("east", SERVICE).status_code == 403
    assert remove("nowhere").status_code == 409
    assert remove("east").status_code == 204
    assert not (cloud.east / image_id).exists()
    assert cloud.show(image_id)["stores"] == "west"
    assert cloud.download(image_id).content == data
    assert cloud.download(image_id, "v1").content == data
    assert cloud.locations(image_id, ADMIN).json() == [
        {"url": file_url(cloud.west / image_id), "metadata": {"store": "west"}}
    ]
    assert remove("east").status_code == 404  # no longer there
    assert remove("west").status_code == 403  # the only copy: delete the image instead
    assert (cloud.west / image_id).read_bytes() == data
    queued = cloud.create()
    resp = requests.delete(f"{stores}/east/{queued}", headers=ADMIN, timeout=10)
    assert resp.status_code == 409


def test_v1_download_falls_back_to_the_next_readable_store(cloud: Cloud) -> None:
    data = os.urandom(2_000_000)
    image_id = _two_copies(cloud, data)
    (cloud.east / image_id).unlink()  # the first copy is lost
    for version in ("v1", "v2"):
        got = cloud.download(image_id, version)
        assert got.status_code == 200 and got.content == data, version
    assert f"image {image_id}: location in store east could not be read" in cloud.api.log()

    (cloud.west / image_id).unlink()  # and now the second
    for version in ("v1", "v2"):
        got = cloud.download(image_id, version)
        assert got.status_code == 404, version
        assert got.json()["error"]["code"] == 404 and got.json()["error"]["message"]
    assert f"image {image_id}: no location of its data could be read (2 tried" in cloud.api.log()


def test_glanceclient_adds_lists_and_removes_locations(cloud: Cloud) -> None:
    """python-glanceclient's calls (what Nova and Cinder use): it asks /versions for
    v2.17 before adding or listing locations."""
    glanceclient = pytest.importorskip("glanceclient")
    as_service = glanceclient.Client("2", endpoint=cloud.url, identity_headers=dict(SERVICE))
    as_admin = glanceclient.Client("2", endpoint=cloud.url, identity_headers=dict(ADMIN))
    data = os.urandom(300_000)
    image = as_service.images.create(name="snap", disk_format="raw", container_format="bare")
    (cloud.west / image.id).write_bytes(data)
    url = file_url(cloud.west / image.id)
    validation = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(data).hexdigest()}
    as_service.images.add_image_location(image.id, url, validation_data=validation)
    assert cloud.settled(image.id)["status"] == "active"
    assert b"".join(as_service.images.data(image.id)) == data
    locations = as_service.images.get_image_locations(image.id)
    assert list(locations) == [{"url": url, "metadata": {"store": "west"}}]

    two = _two_copies(cloud, data)
    as_admin.images.delete_from_store("east", two)
    assert not (cloud.east / two).exists()
    assert b"".join(as_admin.images.data(two)) == data


def test_nova_hands_over_an_rbd_snapshot(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    """Nova's direct snapshot: an RBD image named after the new image, snapshotted and
    protected, then announced; Tank reads it back, serves it, and deletes it with the
    image."""
    env = require_env("CEPH_CONF", "TANK_TEST_RBD_POOL")
    rados = pytest.importorskip("rados")
    rbd = pytest.importorskip("rbd")
    config = tmp_path / "tank.toml"
    config.write_text(
        'default_store = "file"\n'
        f'[stores.file]\ndatadir = "{tmp_path / "images"}"\n'
        f'[stores.rbd]\npool = "{env["TANK_TEST_RBD_POOL"]}"\nceph_conf = "{env["CEPH_CONF"]}"\n'
    )
    api = start_api("--auth", "--config", str(config))
    cloud = Cloud(api, tmp_path, config)
    data = os.urandom(5 * 1024 * 1024 + 3)
    image_id = cloud.create()
    cluster = rados.Rados(conffile=env["CEPH_CONF"], rados_id="admin")
    cluster.connect()
    try:
        with cluster.open_ioctx(env["TANK_TEST_RBD_POOL"]) as ioctx:
            rbd.RBD().create(ioctx, image_id, len(data), old_format=False, features=1)
            try:
                with rbd.Image(ioctx, image_id) as disk:
                    disk.write(data, 0)
                    disk.create_snap("snap")
                    disk.protect_snap("snap")
                url = f"rbd://{cluster.get_fsid()}/{env['TANK_TEST_RBD_POOL']}/{image_id}/snap"
                assert cloud.add_location(image_id, url, sums(data), NOVA).status_code == 202
                image = cloud.settled(image_id)
                assert image["status"] == "active" and image["stores"] == "rbd"
                assert image["checksum"] == hashlib.md5(data).hexdigest()
                assert cloud.download(image_id).content == data
                assert cloud.locations(image_id).json() == [
                    {"url": url, "metadata": {"store": "rbd"}}
                ]
                delete = requests.delete(
                    f"{cloud.url}/v2/images/{image_id}", headers=ALICE, timeout=30
                )
                assert delete.status_code == 204
                assert image_id not in rbd.RBD().list(ioctx)
            finally:
                if image_id in rbd.RBD().list(ioctx):
                    with rbd.Image(ioctx, image_id) as disk:
                        for snap in list(disk.list_snaps()):
                            if disk.is_protected_snap(snap["name"]):
                                disk.unprotect_snap(snap["name"])
                            disk.remove_snap(snap["name"])
                    rbd.RBD().remove(ioctx, image_id)
    finally:
        cluster.shutdown()
    assert "unexpected error" not in api.log(), api.log()


def test_openstacksdk_adds_and_lists_locations(cloud: Cloud) -> None:
    openstack = pytest.importorskip("openstack")
    from keystoneauth1 import session as ks_session
    from keystoneauth1.noauth import NoAuth

    def connect(headers: dict[str, str]) -> Any:
        sess = ks_session.Session(auth=NoAuth(), additional_headers=headers)
        return openstack.connection.Connection(
            session=sess, image_endpoint_override=cloud.url, image_api_version="2"
        )

    conn = connect(SERVICE)
    data = os.urandom(100_000)
    image = conn.image.create_image(name="snap", disk_format="raw", container_format="bare")
    (cloud.east / image.id).write_bytes(data)
    url = file_url(cloud.east / image.id)
    conn.image.add_image_location(image, url, validation_data=sums(data))
    assert cloud.settled(image.id)["status"] == "active"
    listed = [(loc.url, loc.metadata) for loc in conn.image.image_locations(image)]
    assert listed == [(url, {"store": "east"})]
    assert conn.image.download_image(image).content == data


def spellings(directory: Path, name: str) -> list[str]:
    """Other spellings of ``file://<directory>/<name>`` (issue #15), each naming that file."""
    quoted = "".join(f"%{ord(c):02X}" for c in name[:3]) + name[3:]
    return [
        f"FILE://{directory}/{name}",
        f"file://localhost{directory}/{name}",
        f"File://LOCALHOST{directory}/{name}",
        f"file:///{directory}/{name}",  # file:////...
        f"file://{str(directory).replace('/', '//')}//{name}",
        f"file://{directory}/{quoted}",
    ]


def v1_register(cloud: Cloud, url: str, headers: dict[str, str] = ADMIN) -> requests.Response:
    return requests.post(
        f"{cloud.url}/v1/images",
        headers={
            **headers,
            "x-image-meta-name": "alias",
            "x-image-meta-disk_format": "raw",
            "x-image-meta-container_format": "bare",
            "x-image-meta-location": url,
        },
        timeout=10,
    )


def test_no_spelling_of_another_images_file_can_be_registered(cloud: Cloud) -> None:
    """An alias of an image's data is refused as its plain spelling is, through both
    APIs, so deleting that image cannot leave another active on nothing."""
    original = cloud.create("original")
    put = requests.put(
        f"{cloud.url}/v2/images/{original}/file",
        data=b"the original's data",
        headers={**ALICE, "Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert put.status_code == 204
    queued = cloud.create()
    for url in [file_url(cloud.east / original), *spellings(cloud.east, original)]:
        resp = cloud.add_location(queued, url)
        assert resp.status_code == 400 and "names image" in resp.text, (url, resp.text)
        resp = v1_register(cloud, url)
        assert resp.status_code == 400 and "names image" in resp.text, (url, resp.text)
    assert cloud.show(queued)["status"] == "queued"
    listed = requests.get(f"{cloud.url}/v2/images", headers=ADMIN, timeout=10).json()["images"]
    assert {i["id"] for i in listed} == {original, queued}  # no alias was created
    assert requests.delete(f"{cloud.url}/v2/images/{original}", headers=ALICE, timeout=10).ok
    assert not (cloud.east / original).exists()
    listed = requests.get(f"{cloud.url}/v2/images", headers=ADMIN, timeout=10).json()["images"]
    assert [i["status"] for i in listed] == ["queued"]


def test_every_spelling_of_a_file_is_registered_as_one_location(cloud: Cloud) -> None:
    """A file that is no image's (an operator's base image) may back several v1
    registrations, whatever the spelling: each is recorded as the store spells it, and
    deleting one (registered data is not Tank's) leaves the file and the others."""
    data = b"an operator's base image"
    (cloud.east / "base.img").write_bytes(data)
    canonical = file_url(cloud.east / "base.img")
    ids = []
    for url in [canonical, *spellings(cloud.east, "base.img")]:
        resp = v1_register(cloud, url)
        assert resp.status_code == 201, (url, resp.text)
        image = resp.json()["image"]
        assert image["status"] == "active" and image["size"] == len(data)
        ids.append(image["id"])
        shown = cloud.locations(image["id"], ADMIN).json()
        assert shown == [{"url": canonical, "metadata": {"store": "east"}}], url
    assert requests.delete(f"{cloud.url}/v1/images/{ids[0]}", headers=ADMIN, timeout=10).ok
    assert (cloud.east / "base.img").read_bytes() == data
    for image_id in ids[1:]:
        got = requests.get(f"{cloud.url}/v1/images/{image_id}", headers=ADMIN, timeout=10)
        assert got.status_code == 200 and got.content == data


def test_a_handed_over_alias_is_recorded_as_the_store_spells_it(cloud: Cloud) -> None:
    data = os.urandom(4096)
    image_id = cloud.create()
    (cloud.west / image_id).write_bytes(data)
    alias = f"FILE://localhost/{str(cloud.west).replace('/', '//')}//{image_id}"
    assert cloud.add_location(image_id, alias, sums(data)).status_code == 202
    assert cloud.settled(image_id)["status"] == "active"
    assert cloud.locations(image_id).json() == [
        {"url": file_url(cloud.west / image_id), "metadata": {"store": "west"}}
    ]
    # owned, as handed-over data is: deleting the image deletes the file it spelled
    assert requests.delete(f"{cloud.url}/v2/images/{image_id}", headers=ALICE, timeout=10).ok
    assert not (cloud.west / image_id).exists()


def test_a_handed_over_location_counts_against_the_owners_size_quota(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    root = tmp_path / "stores"
    config = tmp_path / "tank.toml"
    config.write_text(
        'default_store = "east"\n'
        f'[stores.east]\ntype = "file"\ndatadir = "{root / "east"}"\n'
        f'[stores.west]\ntype = "file"\ndatadir = "{root / "west"}"\n'
        "[quotas.projects.alice]\nimage_size_total = 1\n"
    )
    cloud = Cloud(start_api("--auth", "--config", str(config)), root, config)
    first, second = cloud.create(), cloud.create()
    data = os.urandom(700 * 1024)
    for image_id in (first, second):
        (cloud.west / image_id).write_bytes(data)
    assert cloud.add_location(first, file_url(cloud.west / first), sums(data)).status_code == 202
    assert cloud.settled(first)["status"] == "active"
    refused = cloud.add_location(second, file_url(cloud.west / second), sums(data))
    assert refused.status_code == 413, refused.text
    message = refused.json()["error"]["message"]
    assert message.startswith("quota exceeded: image_size_total is 1 MiB (1048576 bytes) for "), (
        message
    )
    assert cloud.show(second)["status"] == "queued"
    assert "unexpected error" not in cloud.api.log(), cloud.api.log()
