"""The Images API v2 over HTTP with identity headers (``--auth``): who sees what, listings,
data, members' answers, deactivation, and v1 and v2 agreeing on one image."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tank.testing.api_server import ApiServer

PATCH = "application/openstack-images-v2.1-json-patch"


def who(tenant: str | None, *roles: str) -> dict[str, str]:
    headers = {"X-Identity-Status": "Confirmed", "X-Roles": ",".join(roles or ("member",))}
    if tenant is not None:
        headers["X-Project-Id"] = tenant
    return headers


ADMIN = who("ops", "admin")
ALICE = who("alice")
BOB = who("bob")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    tmp = tmp_path_factory.mktemp("v2")
    server = ApiServer(tmp / "data", tmp / "tank-api.log", ["--auth"])
    yield server
    server.stop()


class Client:
    def __init__(self, api: ApiServer, headers: dict[str, str]) -> None:
        self.url = api.url + "/v2"
        self.headers = headers

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kw)

    def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        resp = self.call("POST", "/images", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def upload(self, image_id: str, data: bytes) -> requests.Response:
        headers = {"Content-Type": "application/octet-stream"}
        return self.call("PUT", f"/images/{image_id}/file", data=data, headers=headers)

    def names(self, query: str = "") -> list[str]:
        resp = self.call("GET", "/images" + query)
        assert resp.status_code == 200, resp.text
        return [i["name"] for i in resp.json()["images"]]


@pytest.fixture
def as_(api: ApiServer) -> Callable[[dict[str, str]], Client]:
    """A client of the API acting as the caller the identity headers name."""
    return lambda headers: Client(api, headers)


def unique() -> str:
    return os.urandom(6).hex()


def test_upload_download_round_trip_with_both_checksums(as_: Callable[..., Client]) -> None:
    alice = as_(ALICE)
    data = os.urandom(3 << 20)
    image = alice.create(name="round-trip")
    assert image["status"] == "queued" and image["owner"] == "alice"
    assert alice.upload(image["id"], data).status_code == 204
    shown = alice.call("GET", f"/images/{image['id']}").json()
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert (shown["os_hash_algo"], shown["os_hash_value"]) == (
        "sha256",
        hashlib.sha256(data).hexdigest(),
    )
    got = alice.call("GET", f"/images/{image['id']}/file")
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-MD5"] == shown["checksum"]
    part = alice.call("GET", f"/images/{image['id']}/file", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]


def test_an_image_without_data_downloads_as_204(as_: Callable[..., Client]) -> None:
    alice = as_(ALICE)
    image = alice.create(name="empty")
    assert alice.call("GET", f"/images/{image['id']}/file").status_code == 204


def test_upload_needs_formats_octet_stream_and_a_queued_image(as_: Callable[..., Client]) -> None:
    alice = as_(ALICE)
    bare = alice.call("POST", "/images", json={"name": "no formats"}).json()
    resp = alice.upload(bare["id"], b"abc")
    assert resp.status_code == 400 and "disk_format" in resp.json()["error"]["message"]
    image = alice.create(name="typed")
    resp = alice.call(
        "PUT", f"/images/{image['id']}/file", data=b"abc", headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 415
    assert alice.upload(image["id"], b"abc").status_code == 204
    assert alice.upload(image["id"], b"abc").status_code == 409


def test_a_failed_upload_leaves_the_image_queued_to_try_again(
    api: ApiServer, as_: Callable[..., Client]
) -> None:
    """Glance v2 puts a failed upload's image back to queued (v1 kills it)."""
    alice = as_(ALICE)
    image = alice.create(name="retry")
    headers = {"Content-Type": "application/octet-stream", "Content-Length": "100"}
    # a body shorter than announced: the server sees the client go away mid-upload
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in {**ALICE, **headers}.items())
        sock.sendall(
            f"PUT /v2/images/{image['id']}/file HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode()
            + b"only ten.."
        )
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)
    shown = alice.call("GET", f"/images/{image['id']}").json()
    assert shown["status"] == "queued"
    data = b"the whole thing"
    assert alice.upload(image["id"], data).status_code == 204
    assert alice.call("GET", f"/images/{image['id']}/file").content == data
    leftovers = list((api.data_dir / "images").iterdir())
    assert len([p for p in leftovers if p.name.startswith(image["id"])]) == 1


def test_visibility_decides_who_sees_an_image(as_: Callable[..., Client]) -> None:
    alice, bob, admin = as_(ALICE), as_(BOB), as_(ADMIN)
    tag = unique()
    made = {v: alice.create(name=f"{v}-{tag}", visibility=v, tags=[tag]) for v in
            ("private", "shared", "community")}  # fmt: skip
    public = admin.create(name=f"public-{tag}", visibility="public", tags=[tag])
    # public needs an admin (Glance's default policy)
    assert alice.call("POST", "/images", json={"visibility": "public"}).status_code == 403
    for v, image in made.items():
        status = bob.call("GET", f"/images/{image['id']}").status_code
        assert status == (200 if v == "community" else 404), v
    assert sorted(bob.names(f"?tag={tag}")) == [f"public-{tag}"]
    assert sorted(bob.names(f"?tag={tag}&visibility=community")) == [f"community-{tag}"]
    assert sorted(alice.names(f"?tag={tag}")) == sorted(
        [f"private-{tag}", f"shared-{tag}", f"community-{tag}", f"public-{tag}"]
    )
    assert public["visibility"] == "public"


def test_members_see_a_shared_image_in_listings_once_they_accept(
    as_: Callable[..., Client],
) -> None:
    alice, bob = as_(ALICE), as_(BOB)
    tag = unique()
    image = alice.create(name=f"shared-{tag}", tags=[tag])
    private = alice.create(name=f"private-{tag}", visibility="private")
    refused = alice.call("POST", f"/images/{private['id']}/members", json={"member": "bob"})
    assert refused.status_code == 403  # only shared images take members
    added = alice.call("POST", f"/images/{image['id']}/members", json={"member": "bob"})
    assert added.status_code == 200 and added.json()["status"] == "pending"
    again = alice.call("POST", f"/images/{image['id']}/members", json={"member": "bob"})
    assert again.status_code == 409
    assert bob.call("GET", f"/images/{image['id']}").status_code == 200  # by id: yes
    assert bob.names(f"?tag={tag}") == []  # listed: not until accepted
    assert bob.names(f"?tag={tag}&member_status=pending") == [f"shared-{tag}"]
    member = f"/images/{image['id']}/members/bob"
    assert alice.call("PUT", member, json={"status": "accepted"}).status_code == 403
    assert bob.call("PUT", member, json={"status": "maybe"}).status_code == 400
    assert bob.call("PUT", member, json={"status": "accepted"}).json()["status"] == "accepted"
    assert bob.names(f"?tag={tag}") == [f"shared-{tag}"]
    assert bob.call("PUT", member, json={"status": "rejected"}).status_code == 200
    assert bob.names(f"?tag={tag}") == []
    assert alice.call("DELETE", member).status_code == 204
    assert bob.call("GET", f"/images/{image['id']}").status_code == 404


def test_listing_filters_sorting_and_next_links(as_: Callable[..., Client]) -> None:
    alice = as_(ALICE)
    tag = unique()
    for name, size in [("c", 3), ("a", 1), ("b", 2), ("a", 5)]:
        image = alice.create(name=name, tags=[tag], min_ram=size)
        alice.upload(image["id"], b"x" * size)
    assert alice.names(f"?tag={tag}&sort=name:asc,size:desc") == ["a", "a", "b", "c"]
    resp = alice.call("GET", f"/images?tag={tag}&sort_key=size&sort_dir=asc")
    assert [i["size"] for i in resp.json()["images"]] == [1, 2, 3, 5]
    assert sorted(alice.names(f"?tag={tag}&name=in:a,c")) == ["a", "a", "c"]
    assert alice.names(f"?tag={tag}&size_min=3&sort=size:asc") == ["c", "a"]
    # walk the pages through the next links
    seen, path = [], f"/images?tag={tag}&limit=3&sort=size:asc"
    while path:
        body = alice.call("GET", path.removeprefix("/v2")).json()
        seen += [i["size"] for i in body["images"]]
        path = body.get("next")
    assert seen == [1, 2, 3, 5]
    later = alice.names(f"?tag={tag}&created_at=gt:2000-01-01T00:00:00Z")
    assert len(later) == 4
    for bad in ("sort_key=colour", "sort_dir=sideways&sort_key=name", "limit=-1",
                "marker=nope", "created_at=after:2020", "member_status=maybe",
                "visibility=everyone", "size=3"):  # fmt: skip
        resp = alice.call("GET", f"/images?{bad}")
        assert resp.status_code == 400, (bad, resp.text)
        assert resp.json()["error"]["message"]


def test_patch_changes_attributes_properties_and_tags_all_or_nothing(
    as_: Callable[..., Client],
) -> None:
    alice = as_(ALICE)
    image = alice.create(name="before", os_distro="debian", tags=["a"])
    path, ctype = f"/images/{image['id']}", {"Content-Type": PATCH}
    ops = [
        {"op": "replace", "path": "/name", "value": "after"},
        {"op": "add", "path": "/arch", "value": "x86_64"},
        {"op": "remove", "path": "/os_distro"},
        {"op": "replace", "path": "/tags", "value": ["b", "c"]},
    ]
    resp = alice.call("PATCH", path, json=ops, headers=ctype)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["name"], body["arch"], body["tags"]) == ("after", "x86_64", ["b", "c"])
    assert "os_distro" not in body
    failing = [{"op": "replace", "path": "/name", "value": "lost"},
               {"op": "replace", "path": "/status", "value": "active"}]  # fmt: skip
    assert alice.call("PATCH", path, json=failing, headers=ctype).status_code == 403
    assert alice.call("GET", path).json()["name"] == "after"  # nothing changed
    plain = {"Content-Type": "application/json"}
    assert alice.call("PATCH", path, json=ops, headers=plain).status_code == 415
    assert as_(BOB).call("PATCH", path, json=ops, headers=ctype).status_code == 404


def test_tags_deactivation_and_protected_delete(as_: Callable[..., Client]) -> None:
    alice, bob, admin = as_(ALICE), as_(BOB), as_(ADMIN)
    image = admin.create(name="lifecycle", visibility="public")
    iid = image["id"]
    admin.upload(iid, b"data")
    assert admin.call("PUT", f"/images/{iid}/tags/blue").status_code == 204
    assert admin.call("PUT", f"/images/{iid}/tags/blue").status_code == 204  # idempotent
    assert admin.call("GET", f"/images/{iid}").json()["tags"] == ["blue"]
    assert admin.call("DELETE", f"/images/{iid}/tags/red").status_code == 404
    assert admin.call("DELETE", f"/images/{iid}/tags/blue").status_code == 204
    assert alice.call("POST", f"/images/{iid}/actions/deactivate").status_code == 403
    assert admin.call("POST", f"/images/{iid}/actions/deactivate").status_code == 204
    assert bob.call("GET", f"/images/{iid}").json()["status"] == "deactivated"
    assert bob.call("GET", f"/images/{iid}/file").status_code == 403
    assert admin.call("GET", f"/images/{iid}/file").content == b"data"
    assert admin.call("POST", f"/images/{iid}/actions/reactivate").status_code == 204
    assert bob.call("GET", f"/images/{iid}/file").content == b"data"
    protect = [{"op": "replace", "path": "/protected", "value": True}]
    admin.call("PATCH", f"/images/{iid}", json=protect, headers={"Content-Type": PATCH})
    assert admin.call("DELETE", f"/images/{iid}").status_code == 403
    protect[0]["value"] = False
    admin.call("PATCH", f"/images/{iid}", json=protect, headers={"Content-Type": PATCH})
    assert admin.call("DELETE", f"/images/{iid}").status_code == 204
    assert admin.call("GET", f"/images/{iid}").status_code == 404


def test_v1_and_v2_show_one_image_alike(api: ApiServer, as_: Callable[..., Client]) -> None:
    alice = as_(ALICE)
    image = alice.create(name="both", visibility="private", os_distro="arch")
    alice.upload(image["id"], b"payload")
    v1 = requests.head(f"{api.url}/v1/images/{image['id']}", headers=ALICE, timeout=10)
    assert v1.headers["x-image-meta-status"] == "active"
    assert v1.headers["x-image-meta-is_public"] == "False"
    assert v1.headers["x-image-meta-property-os_distro"] == "arch"
    assert v1.headers["x-image-meta-checksum"] == hashlib.md5(b"payload").hexdigest()
    # v1 is_public=true makes it public in v2; false afterwards keeps v1's "not public"
    # without losing v2's private
    admin_v1 = {**ADMIN, "x-image-meta-is_public": "true"}
    requests.put(f"{api.url}/v1/images/{image['id']}", headers=admin_v1, timeout=10)
    assert alice.call("GET", f"/images/{image['id']}").json()["visibility"] == "public"


def test_discovery_documents(api: ApiServer, as_: Callable[..., Client]) -> None:
    alice = as_(ALICE)
    for name in ("image", "images", "member", "members"):
        resp = alice.call("GET", f"/schemas/{name}")
        assert resp.status_code == 200 and resp.json()["name"] == name
    assert alice.call("GET", "/schemas/nope").status_code == 404
    stores = alice.call("GET", "/info/stores").json()["stores"]
    assert stores == [{"id": "file", "description": "file store", "default": True}]
    assert "import-methods" in alice.call("GET", "/info/import").json()


def test_upload_headers_name_the_store_and_the_size(as_: Callable[..., Client]) -> None:
    """Glance's ``X-Image-Meta-Store`` and ``x-openstack-image-size`` on PUT /file."""
    alice = as_(ALICE)
    image = alice.create(name="headers")
    path = f"/images/{image['id']}/file"
    octet = {"Content-Type": "application/octet-stream"}
    resp = alice.call("PUT", path, data=b"1234567", headers={**octet, "X-Image-Meta-Store": "nope"})
    assert resp.status_code == 400 and "nope" in resp.json()["error"]["message"]
    assert alice.call("GET", f"/images/{image['id']}").json()["status"] == "queued"
    resp = alice.call(
        "PUT", path, data=b"1234567", headers={**octet, "x-openstack-image-size": "3"}
    )
    assert resp.status_code == 400
    assert alice.call("GET", f"/images/{image['id']}").json()["status"] == "queued"
    resp = alice.call("PUT", path, data=b"1234567", headers={**octet, "X-Image-Meta-Store": "file"})
    assert resp.status_code == 204
    assert alice.call("GET", f"/images/{image['id']}").json()["stores"] == "file"


def test_identity_rules_found_by_the_outside_probe(as_: Callable[..., Client]) -> None:
    bob = as_(BOB)
    image = bob.create(name="bob's", visibility="private")
    # a client's own X-Tenant-Id does not override the proxy's X-Project-Id
    spoof = as_({**ALICE, "X-Tenant-Id": "bob"})
    assert spoof.call("GET", f"/images/{image['id']}").status_code == 404
    assert spoof.call("DELETE", f"/images/{image['id']}").status_code == 404
    # a reader reads and changes nothing
    reader = as_(who("bob", "reader"))
    assert reader.call("GET", f"/images/{image['id']}").status_code == 200
    ops = [{"op": "replace", "path": "/name", "value": "by reader"}]
    patch = reader.call("PATCH", f"/images/{image['id']}", json=ops,
                        headers={"Content-Type": PATCH})  # fmt: skip
    assert patch.status_code == 403
    assert reader.call("DELETE", f"/images/{image['id']}").status_code == 403
    assert reader.call("POST", "/images", json={"name": "x"}).status_code == 403
    # a confirmed identity without a project cannot make images nobody could reach
    assert as_(who(None)).call("POST", "/images", json={"name": "x"}).status_code == 403
    assert bob.call("GET", f"/images/{image['id']}").json()["name"] == "bob's"


def test_checksum_and_multihash_filters(as_: Callable[..., Client]) -> None:
    alice = as_(ALICE)
    image = alice.create(name="digest")
    alice.upload(image["id"], b"digest me")
    md5, sha = hashlib.md5(b"digest me").hexdigest(), hashlib.sha256(b"digest me").hexdigest()
    assert alice.names(f"?checksum={md5}") == ["digest"]
    assert alice.names(f"?checksum=in:{'0' * 32},{md5}") == ["digest"]
    assert alice.names(f"?os_hash_value={sha}") == ["digest"]
    assert alice.names(f"?os_hash_value={'0' * 64}") == []


def test_uploading_to_a_deleted_image_is_404(as_: Callable[..., Client]) -> None:
    alice = as_(ALICE)
    image = alice.create(name="gone")
    assert alice.call("DELETE", f"/images/{image['id']}").status_code == 204
    assert alice.upload(image["id"], b"late").status_code == 404


def test_glance_quotas_are_413(as_: Callable[..., Client]) -> None:
    """128 properties, tags and members per image, as Glance's default quotas (the
    outside probe created 5,000 properties and 135 members)."""
    alice = as_(ALICE)
    many = {f"p{i}": "v" for i in range(129)}
    resp = alice.call("POST", "/images", json={"name": "props", **many})
    assert resp.status_code == 413 and "128" in resp.json()["error"]["message"]
    image = alice.create(name="props", **{f"p{i}": "v" for i in range(128)})
    ops = [{"op": "add", "path": "/one-more", "value": "v"}]
    resp = alice.call("PATCH", f"/images/{image['id']}", json=ops, headers={"Content-Type": PATCH})
    assert resp.status_code == 413
    resp = alice.call(
        "POST", "/images", json={"name": "tags", "tags": [str(i) for i in range(129)]}
    )
    assert resp.status_code == 413
    shared = alice.create(name="members")
    for i in range(128):
        member = {"member": f"project-{i}"}
        assert alice.call("POST", f"/images/{shared['id']}/members", json=member).status_code == 200
    resp = alice.call("POST", f"/images/{shared['id']}/members", json={"member": "one-more"})
    assert resp.status_code == 413
