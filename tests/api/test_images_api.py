"""The Glance v1 Images API over HTTP, against a real tank-api process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import requests

from tank.testing.api_server import ApiServer

RAW = {"x-image-meta-disk_format": "raw", "x-image-meta-container_format": "bare"}


def meta(name: str, **extra: str) -> dict[str, str]:
    return {"x-image-meta-name": name, **RAW, **extra}


def create(api: ApiServer, name: str, data: bytes | None = None, **headers: str) -> dict:
    hdrs = meta(name, **headers)
    if data is not None:
        hdrs["Content-Type"] = "application/octet-stream"
    resp = requests.post(f"{api.url}/v1/images", headers=hdrs, data=data, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.json()["image"]


def stored(api: ApiServer) -> set[str]:
    images = api.data_dir / "images"
    return {p.name for p in images.iterdir()} if images.exists() else set()


def error(resp: requests.Response, status: int) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()["error"]
    assert body["code"] == status
    return str(body["message"])


curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def test_versions(api: ApiServer) -> None:
    """Glance's version document: v2.17 current, older v2 supported, v1 too, with
    links built from the host the client addressed (keystoneauth follows them)."""
    for path in ("/", "/versions", "/v1/", "/v2", "/v2/"):
        resp = requests.get(api.url + path, timeout=5)
        assert resp.status_code == 300, path
        versions = resp.json()["versions"]
        assert versions[0] == {
            "id": "v2.17",
            "status": "CURRENT",
            "links": [{"rel": "self", "href": f"{api.url}/v2/"}],
        }
        ids = [v["id"] for v in versions]
        assert ids == [f"v2.{n}" for n in range(17, -1, -1)] + ["v1.1", "v1.0"]
        assert versions[-1]["links"] == [{"rel": "self", "href": f"{api.url}/v1/"}]


def test_upload_show_download_round_trip(api: ApiServer) -> None:
    data = os.urandom(3 * (1 << 20) + 7)
    image = create(api, "round-trip", data, **{"x-image-meta-property-os_distro": "cirros"})
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_value"] == hashlib.sha256(data).hexdigest()
    assert image["properties"] == {"os_distro": "cirros"}
    assert "location" not in image
    for prefix in ("/v1", ""):
        head = requests.head(f"{api.url}{prefix}/images/{image['id']}", timeout=5)
        assert head.status_code == 200
        assert head.headers["x-image-meta-status"] == "active"
        assert head.headers["x-image-meta-is_public"] == "False"
        assert head.headers["x-image-meta-property-os_distro"] == "cirros"
        assert head.headers["ETag"] == image["checksum"]
    got = requests.get(f"{api.url}/v1/images/{image['id']}", timeout=30)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Length"] == str(len(data))
    assert got.headers["x-image-meta-checksum"] == image["checksum"]
    assert got.content == data


@curl
def test_curl_upload_is_not_stalled_by_expect_100_continue(api: ApiServer, tmp_path: Path) -> None:
    data = os.urandom(2 << 20)
    src = tmp_path / "img"
    src.write_bytes(data)
    # curl sends the body without "100 Continue" after --expect100-timeout; made longer
    # than the subprocess timeout, the upload can only finish if the server answers 100.
    args = ["curl", "-sS", "--expect100-timeout", "120", "-X", "POST", "-T", str(src)]
    for key, value in meta("curl").items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run(
        [*args, f"{api.url}/v1/images"], capture_output=True, check=True, timeout=60
    )
    image = json.loads(out.stdout)["image"]
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    down = subprocess.run(
        ["curl", "-sS", "-f", f"{api.url}/v1/images/{image['id']}"], capture_output=True, check=True
    )
    assert down.stdout == data


@curl
def test_chunked_upload_from_stdin(api: ApiServer) -> None:
    data = os.urandom(1_500_000)
    args = ["curl", "-sS", "-f", "-X", "POST", "-T", "-", "-H", "Transfer-Encoding: chunked"]
    for key, value in meta("chunked").items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run(
        [*args, f"{api.url}/v1/images"], input=data, capture_output=True, check=True
    )
    image = json.loads(out.stdout)["image"]
    assert image["size"] == len(data) and image["checksum"] == hashlib.md5(data).hexdigest()


def test_range_requests(api: ApiServer) -> None:
    data = os.urandom(10_000)
    url = f"{api.url}/v1/images/{create(api, 'ranged', data)['id']}"
    part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=5)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == "bytes 100-199/10000"
    assert part.content == data[100:200]
    tail = requests.get(url, headers={"Range": "bytes=-10"}, timeout=5)
    assert tail.status_code == 206 and tail.content == data[-10:]
    open_end = requests.get(url, headers={"Range": "bytes=9990-"}, timeout=5)
    assert open_end.content == data[9990:]
    clipped = requests.get(url, headers={"Range": "bytes=9995-20000"}, timeout=5)
    assert clipped.status_code == 206 and clipped.content == data[9995:]
    beyond = requests.get(url, headers={"Range": "bytes=10000-"}, timeout=5)
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == "bytes */10000"
    ignored = requests.get(url, headers={"Range": "bytes=5-2"}, timeout=5)
    assert ignored.status_code == 200 and ignored.content == data


def test_queued_image_then_put_data(api: ApiServer) -> None:
    image = create(api, "queued")
    assert image["status"] == "queued" and image["size"] is None
    url = f"{api.url}/v1/images/{image['id']}"
    assert requests.get(url, timeout=5).status_code == 404  # not active, as Glance v1
    put = requests.put(
        url, data=b"payload", timeout=5, headers={"Content-Type": "application/octet-stream"}
    )
    assert put.status_code == 200, put.text
    assert put.json()["image"]["status"] == "active"
    assert requests.get(url, timeout=5).content == b"payload"
    again = requests.put(url, data=b"more", timeout=5)
    assert "queued" in error(again, 409)


def test_zero_byte_image(api: ApiServer) -> None:
    image = create(api, "empty", b"", **{"x-image-meta-size": "0"})
    assert image["status"] == "active" and image["size"] == 0
    assert image["checksum"] == hashlib.md5(b"").hexdigest()
    got = requests.get(f"{api.url}/v1/images/{image['id']}", timeout=5)
    assert got.status_code == 200 and got.content == b""


@pytest.mark.parametrize(
    "headers,message",
    [
        ({"x-image-meta-checksum": "0" * 32}, "checksum"),
        ({"x-image-meta-size": "3"}, "3 bytes"),
        ({"x-image-meta-size": "100"}, "100"),
    ],
)
def test_mismatch_kills_and_keeps_nothing(api: ApiServer, headers: dict, message: str) -> None:
    before = stored(api)
    image_id = str(uuid.uuid4())
    hdrs = {**meta("bad"), **headers, "x-image-meta-id": image_id}
    resp = requests.post(f"{api.url}/v1/images", headers=hdrs, data=b"0123456789", timeout=5)
    assert message in error(resp, 400)
    head = requests.head(f"{api.url}/v1/images/{image_id}", timeout=5)
    assert head.headers["x-image-meta-status"] == "killed"
    assert stored(api) == before


def test_client_disconnect_mid_upload_kills_the_image(api: ApiServer) -> None:
    before = stored(api)
    image_id = str(uuid.uuid4())
    request = (
        f"POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {4 << 20}\r\n"
        f"Content-Type: application/octet-stream\r\nx-image-meta-id: {image_id}\r\n"
        "x-image-meta-name: abandoned\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", api.port)) as sock:
        sock.sendall(request + b"x" * (1 << 20))
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        head = requests.head(f"{api.url}/v1/images/{image_id}", timeout=5)
        status = head.headers.get("x-image-meta-status")
        if status == "killed":
            break
        time.sleep(0.1)
    assert status == "killed"
    assert stored(api) == before


def test_update_purges_or_merges_properties(api: ApiServer) -> None:
    image = create(api, "props", **{"x-image-meta-property-a": "1", "x-image-meta-property-b": "2"})
    url = f"{api.url}/v1/images/{image['id']}"
    merged = requests.put(
        url,
        headers={"x-image-meta-property-b": "3", "x-glance-registry-purge-props": "false"},
        timeout=5,
    )
    assert merged.json()["image"]["properties"] == {"a": "1", "b": "3"}
    purged = requests.put(url, headers={"x-image-meta-property-c": "4"}, timeout=5)
    assert purged.json()["image"]["properties"] == {"c": "4"}
    renamed = requests.put(url, headers={"x-image-meta-name": "renamed"}, timeout=5)
    body = renamed.json()["image"]
    assert body["name"] == "renamed" and body["properties"] == {}


def test_formats_of_an_active_image_cannot_change(api: ApiServer) -> None:
    """Glance v1 let any user relabel an active image's formats (only size and checksum
    were fixed); Tank applies v2's rule to both APIs: the data was inspected as the
    format it was uploaded with. Echoing the current formats (as from a HEAD) is fine."""
    image = create(api, "relabel", b"payload")
    url = f"{api.url}/v1/images/{image['id']}"
    before = requests.head(url, timeout=5).headers
    for header, value in (("disk_format", "qcow2"), ("container_format", "ovf")):
        headers = {"x-image-meta-name": "renamed", f"x-image-meta-{header}": value}
        message = error(requests.put(url, headers=headers, timeout=5), 403)
        assert f"{header} can be only replaced for a queued image" in message
        assert "active" in message
    after = requests.head(url, timeout=5).headers
    assert {k: v for k, v in after.items() if k.lower().startswith("x-image-meta-")} == {
        k: v for k, v in before.items() if k.lower().startswith("x-image-meta-")
    }
    echoed = requests.put(url, headers={**RAW, "x-image-meta-name": "renamed"}, timeout=5)
    assert echoed.status_code == 200, echoed.text
    assert echoed.json()["image"]["name"] == "renamed"
    queued = create(api, "relabel-queued")
    qurl = f"{api.url}/v1/images/{queued['id']}"
    resp = requests.put(qurl, headers={"x-image-meta-disk_format": "qcow2"}, timeout=5)
    assert resp.status_code == 200, resp.text
    assert resp.json()["image"]["disk_format"] == "qcow2"


def test_delete_and_protected(api: ApiServer) -> None:
    image = create(api, "doomed", b"bytes", **{"x-image-meta-protected": "True"})
    url = f"{api.url}/v1/images/{image['id']}"
    assert image["id"] in stored(api)
    assert "protected" in error(requests.delete(url, timeout=5), 403)
    requests.put(url, headers={"x-image-meta-protected": "False"}, timeout=5).raise_for_status()
    assert requests.delete(url, timeout=5).status_code == 200
    assert image["id"] not in stored(api)
    assert requests.get(url, timeout=5).status_code == 404
    assert requests.delete(url, timeout=5).status_code == 404


def test_listing_filters_sort_and_pages(api: ApiServer) -> None:
    tag = uuid.uuid4().hex
    ids = [
        create(api, f"list-{i}", os.urandom(100 * (i + 1)), **{"x-image-meta-property-tag": tag})[
            "id"
        ]
        for i in range(5)
    ]
    base = f"{api.url}/v1/images"
    brief = requests.get(base, params={"property-tag": tag}, timeout=5).json()["images"]
    assert {i["id"] for i in brief} == set(ids)
    assert set(brief[0]) == {"id", "name", "disk_format", "container_format", "size", "checksum"}
    detail = requests.get(f"{base}/detail", params={"property-tag": tag}, timeout=5).json()[
        "images"
    ]
    assert all(i["properties"]["tag"] == tag for i in detail)
    by_size = requests.get(
        f"{base}/detail",
        params={"property-tag": tag, "sort_key": "size", "sort_dir": "asc"},
        timeout=5,
    ).json()["images"]
    assert [i["id"] for i in by_size] == ids
    sized = requests.get(
        base, params={"property-tag": tag, "size_min": 200, "size_max": 400}, timeout=5
    ).json()["images"]
    assert {i["id"] for i in sized} == set(ids[1:4])
    named = requests.get(base, params={"name": "list-3", "property-tag": tag}, timeout=5).json()
    assert [i["id"] for i in named["images"]] == [ids[3]]
    pages, marker = [], None
    while True:
        params = {"property-tag": tag, "sort_key": "size", "sort_dir": "desc", "limit": 2}
        if marker:
            params["marker"] = marker
        page = requests.get(base, params=params, timeout=5).json()["images"]
        if not page:
            break
        pages.append([i["id"] for i in page])
        marker = page[-1]["id"]
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]


@pytest.mark.parametrize(
    "params,fragment",
    [
        ({"sort_key": "owner; drop"}, "sort_key"),
        ({"sort_dir": "sideways"}, "sort_dir"),
        ({"marker": str(uuid.uuid4())}, "marker"),
        ({"marker": "not-a-uuid"}, "marker"),
        ({"limit": "many"}, "limit"),
        ({"size_min": "-4"}, "size_min"),
        ({"is_public": "perhaps"}, "is_public"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_listing_parameters(api: ApiServer, params: dict, fragment: str) -> None:
    assert fragment in error(requests.get(f"{api.url}/v1/images", params=params, timeout=5), 400)


@pytest.mark.parametrize(
    "headers,fragment",
    [
        ({"x-image-meta-min_ram": "lots"}, "min_ram"),
        ({"x-image-meta-disk_format": "floppy"}, "disk_format"),
        ({"x-image-meta-is_public": "maybe"}, "is_public"),
        ({"x-image-meta-id": "not-a-uuid"}, "id"),
        ({"x-image-meta-colour": "red"}, "colour"),
        ({"x-image-meta-store": "nowhere"}, "nowhere"),
        ({"x-image-meta-size": "big"}, "size"),
        ({"x-image-meta-location": "gopher://x/y"}, "gopher"),
        ({"x-image-meta-location": "file:///etc/passwd"}, "passwd"),
    ],
)
def test_bad_create_headers(api: ApiServer, headers: dict, fragment: str) -> None:
    resp = requests.post(f"{api.url}/v1/images", headers={**meta("bad"), **headers}, timeout=5)
    assert fragment in error(resp, 400)


def test_duplicate_id_and_bad_paths(api: ApiServer) -> None:
    image = create(api, "first")
    dup = requests.post(
        f"{api.url}/v1/images", headers={**meta("dup"), "x-image-meta-id": image["id"]}, timeout=5
    )
    error(dup, 409)
    assert requests.get(f"{api.url}/v1/images/not-a-uuid", timeout=5).status_code == 404
    assert requests.get(f"{api.url}/v1/nothing-here", timeout=5).status_code == 404
    assert requests.patch(f"{api.url}/v1/images", timeout=5).status_code == 405


def test_oversized_headers_are_refused_without_500(api: ApiServer) -> None:
    resp = requests.get(f"{api.url}/v1/images", headers={"x-junk": "y" * 200_000}, timeout=10)
    assert 400 <= resp.status_code < 500


def test_members(api: ApiServer) -> None:
    image = create(api, "shared")
    url = f"{api.url}/v1/images/{image['id']}/members"
    assert requests.put(f"{url}/tenant-b", timeout=5).status_code == 204
    assert (
        requests.put(f"{url}/tenant-c", json={"member": {"can_share": True}}, timeout=5).status_code
        == 204
    )
    members = requests.get(url, timeout=5).json()["members"]
    assert members == [
        {"member_id": "tenant-b", "can_share": False},
        {"member_id": "tenant-c", "can_share": True},
    ]
    shared = requests.get(f"{api.url}/v1/shared-images/tenant-c", timeout=5).json()
    assert {"image_id": image["id"], "can_share": True} in shared["shared_images"]
    assert requests.delete(f"{url}/tenant-b", timeout=5).status_code == 204
    assert requests.delete(f"{url}/tenant-b", timeout=5).status_code == 404
    body = {"memberships": [{"member_id": "tenant-d", "can_share": False}]}
    assert requests.put(url, json=body, timeout=5).status_code == 204
    assert [m["member_id"] for m in requests.get(url, timeout=5).json()["members"]] == ["tenant-d"]
    error(requests.put(url, data=b"{not json", timeout=5), 400)
    error(requests.put(url, json={"memberships": "x"}, timeout=5), 400)


AWKWARD_MEMBERS = ["a%41b", "%2F", "ünï ✓", "sp ace", "?q=1#f", "a+b"]


def test_awkward_member_names_are_decoded_once(api: ApiServer) -> None:
    """A member id travels percent-encoded in the path and is decoded exactly once:
    ``a%2541b`` names the member ``a%41b``, not ``aAb``."""
    image = create(api, "awkward")
    url = f"{api.url}/v1/images/{image['id']}/members"
    for name in AWKWARD_MEMBERS:
        quoted = urllib.parse.quote(name, safe="")
        assert requests.put(f"{url}/{quoted}", timeout=5).status_code == 204, name
        shared = requests.get(f"{api.url}/v1/shared-images/{quoted}", timeout=5).json()
        assert [s["image_id"] for s in shared["shared_images"]] == [image["id"]], name
    members = requests.get(url, timeout=5).json()["members"]
    assert sorted(m["member_id"] for m in members) == sorted(AWKWARD_MEMBERS)
    for name in AWKWARD_MEMBERS:
        quoted = urllib.parse.quote(name, safe="")
        assert requests.delete(f"{url}/{quoted}", timeout=5).status_code == 204, name
    assert requests.get(url, timeout=5).json()["members"] == []
    bad = requests.put(f"{url}/%FF", timeout=5)
    assert "UTF-8" in error(bad, 400)
    for name in ("x/y", ".", ".."):  # the reliability issue: these were accepted
        # dots percent-encoded, or the client itself resolves /members/.. to the image
        quoted = urllib.parse.quote(name, safe="").replace(".", "%2E")
        assert "member" in error(requests.put(f"{url}/{quoted}", timeout=5), 400), name
    body = {"memberships": [{"member_id": "..", "can_share": False}]}
    error(requests.put(url, json=body, timeout=5), 400)
    assert requests.get(url, timeout=5).json()["members"] == []


def test_auth_visibility(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--auth")

    def who(tenant: str, *roles: str) -> dict[str, str]:
        return {
            "X-Identity-Status": "Confirmed",
            "X-Tenant-Id": tenant,
            "X-User-Id": f"user-{tenant}",
            "X-Roles": ",".join(roles or ("member",)),
        }

    assert requests.get(f"{api.url}/v1/images", timeout=5).status_code == 401
    private = requests.post(
        f"{api.url}/v1/images", headers={**meta("private"), **who("alice")}, timeout=5
    ).json()["image"]
    assert private["owner"] == "alice"
    refused = requests.post(  # publicize_image is for admins, on v1 as on v2
        f"{api.url}/v1/images",
        headers={**meta("public"), **who("alice"), "x-image-meta-is_public": "true"},
        timeout=5,
    )
    assert refused.status_code == 403, refused.text
    public = requests.post(
        f"{api.url}/v1/images",
        headers={
            **meta("public"),
            **who("alice", "member", "admin"),
            "x-image-meta-is_public": "true",
        },
        timeout=5,
    ).json()["image"]
    url = f"{api.url}/v1/images/{private['id']}"
    assert requests.head(url, headers=who("bob"), timeout=5).status_code == 404
    seen = requests.get(f"{api.url}/v1/images", headers=who("bob"), timeout=5).json()["images"]
    assert [i["id"] for i in seen] == [public["id"]]
    assert (
        requests.delete(
            f"{api.url}/v1/images/{public['id']}", headers=who("bob"), timeout=5
        ).status_code
        == 403
    )
    assert requests.put(f"{url}/members/bob", headers=who("alice"), timeout=5).status_code == 204
    assert requests.head(url, headers=who("bob"), timeout=5).status_code == 200
    everything = requests.get(f"{api.url}/v1/images", headers=who("ops", "admin"), timeout=5)
    assert {i["id"] for i in everything.json()["images"]} == {private["id"], public["id"]}


def test_direct_url_only_for_admins_when_enabled(start_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nshow_image_direct_url = true\n")
    api = start_api("--config", str(config), "--auth")
    admin = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "ops", "X-Roles": "admin"}
    user = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "ops", "X-Roles": "member"}
    hdrs = {**meta("direct"), **admin, "x-image-meta-is_public": "true"}
    image = requests.post(f"{api.url}/v1/images", headers=hdrs, data=b"abc", timeout=5).json()
    image_id = image["image"]["id"]
    assert image["image"]["location"].startswith("file://")
    detail = requests.get(f"{api.url}/v1/images/detail", headers=user, timeout=5).json()
    assert [i["id"] for i in detail["images"]] == [image_id]
    assert "location" not in detail["images"][0]


def test_head_errors_have_no_body(api: ApiServer) -> None:
    missing = f"/v1/images/{uuid.uuid4()}"
    with socket.create_connection(("127.0.0.1", api.port)) as sock:
        sock.sendall(f"HEAD {missing} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sock.sendall(b"GET /versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 404")
    assert rest.startswith(b"HTTP/1.1 300"), "the HEAD answer leaked a body onto the connection"


def test_sigterm_stops_tank_api_quickly(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api()
    api.proc.terminate()
    assert api.proc.wait(15) == 0  # a deadline for the exit, not a speed measurement


def test_deeply_nested_json_is_a_400(api: ApiServer) -> None:
    image = create(api, "deep-json")
    body = b"[" * 500_000
    resp = requests.put(f"{api.url}/v1/images/{image['id']}/members", data=body, timeout=10)
    error(resp, 400)


GLANCECLIENT_V1 = {  # what python-glanceclient's v1 image-create and image-update send
    "Content-Type": "application/octet-stream",
    "x-image-meta-is_public": "None",
    "x-image-meta-disk_format": "raw",
    "x-image-meta-container_format": "bare",
}


def test_glanceclient_create_without_a_file_registers_a_queued_private_image(
    api: ApiServer,
) -> None:
    """The reliability issue's finding: Tank made an active 0-byte image of the empty
    body, and refused is_public None (Glance reads it as false)."""
    headers = {**GLANCECLIENT_V1, "x-image-meta-name": "gc-queued"}
    resp = requests.post(f"{api.url}/v1/images", headers=headers, data=b"", timeout=10)
    assert resp.status_code == 201, resp.text
    image = resp.json()["image"]
    assert (image["status"], image["is_public"], image["size"]) == ("queued", False, None)


def test_glanceclient_update_of_an_active_image_changes_only_metadata(api: ApiServer) -> None:
    """It was 409 "data can only be uploaded to a queued image": the client's empty body
    was taken for data."""
    image = create(api, "gc-active", b"payload")
    url = f"{api.url}/v1/images/{image['id']}"
    headers = {**GLANCECLIENT_V1, "x-image-meta-name": "gc-renamed"}
    resp = requests.put(url, headers=headers, data=b"", timeout=10)
    assert resp.status_code == 200, resp.text
    updated = resp.json()["image"]
    assert (updated["name"], updated["status"], updated["size"]) == ("gc-renamed", "active", 7)
    assert requests.get(url, timeout=10).content == b"payload"
