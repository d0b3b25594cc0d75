"""Bad v2 requests over raw HTTP: each gets its 4xx with a JSON message naming what was
wrong, and none a 500 (the module's server log is checked for one at the end)."""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import pytest

from tank.testing.api_server import ApiServer

from .conftest import Caller, Http

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


def error(resp: Any, status: int) -> str:
    """The error message, once the status and the JSON error body are as expected."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
    body = resp.json()["error"]
    assert body["code"] == status
    return str(body["message"])


@pytest.fixture(scope="module")
def queued(http_a: Http) -> dict[str, Any]:
    return http_a.create(name="errors-queued", colour="red")


@pytest.fixture(scope="module")
def active(http_a: Http) -> dict[str, Any]:
    image = http_a.create(name="errors-active")
    resp = http_a(
        "PUT",
        f"/v2/images/{image['id']}/file",
        data=b"data",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204, resp.text
    return http_a.image(image["id"])


# -- create ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"name": "x",', "json"),
        (b"\xff\xfe not utf-8", "json"),
        (b"[1, 2]", "object"),
        (b'"just a string"', "object"),
        (b"null", "object"),
        (b"", "body"),
    ],
)
def test_create_body_that_is_not_a_json_object(http_a: Http, body: bytes, fragment: str) -> None:
    resp = http_a("POST", "/v2/images", data=body, headers={"Content-Type": "application/json"})
    assert fragment in error(resp, 400).lower()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"disk_format": "floppy"}, "disk_format"),
        ({"container_format": "crate"}, "container_format"),
        ({"visibility": "everyone"}, "visibility"),
        ({"min_ram": -1}, "min_ram"),
        ({"min_disk": "lots"}, "min_disk"),
        ({"protected": "yes"}, "protected"),
        ({"os_hidden": 1}, "os_hidden"),
        ({"name": "n" * 256}, "name"),
        ({"tags": "not-a-list"}, "tags"),
        ({"tags": ["t" * 256]}, "tag"),
        ({"id": "not-a-uuid"}, "id"),
        ({"colour": 5}, "colour"),
    ],
)
def test_create_with_invalid_values(http_a: Http, body: dict[str, Any], fragment: str) -> None:
    resp = http_a("POST", "/v2/images", json={"name": "bad", **body})
    assert fragment in error(resp, 400)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("status", "active"),
        ("size", 5),
        ("virtual_size", 5),
        ("checksum", "0" * 32),
        ("os_hash_algo", "sha512"),
        ("os_hash_value", "0" * 128),
        ("locations", []),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("updated_at", "2020-01-01T00:00:00Z"),
        ("direct_url", "file:///etc/passwd"),
        ("self", "/v2/images/x"),
        ("file", "/v2/images/x/file"),
        ("schema", "/v2/schemas/image"),
        ("os_glance_import_task", "x"),
    ],
)
def test_create_with_a_reserved_attribute_is_forbidden(http_a: Http, key: str, value: Any) -> None:
    """Well-formed values too: what is refused is setting the attribute at all."""
    resp = http_a("POST", "/v2/images", json={"name": "reserved", key: value})
    assert key in error(resp, 403)


def test_create_with_a_taken_id_is_a_conflict(http_a: Http, queued: dict[str, Any]) -> None:
    resp = http_a("POST", "/v2/images", json={"id": queued["id"], "name": "again"})
    assert queued["id"] in error(resp, 409)


def test_public_image_by_a_non_admin_is_forbidden(http_a: Http) -> None:
    resp = http_a("POST", "/v2/images", json={"name": "pub", "visibility": "public"})
    assert "public" in error(resp, 403)


# -- patch ----------------------------------------------------------------------------


def patch(http: Http, image_id: str, body: Any, media: str = PATCH_TYPE) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http("PATCH", f"/v2/images/{image_id}", data=data, headers={"Content-Type": media})


@pytest.mark.parametrize(
    "media", ["application/json", "application/json-patch+json", "text/plain", "bogus"]
)
def test_patch_with_another_media_type_is_415(
    http_a: Http, queued: dict[str, Any], media: str
) -> None:
    resp = patch(http_a, queued["id"], [{"op": "replace", "path": "/name", "value": "x"}], media)
    assert "openstack-images-v2.1-json-patch" in error(resp, 415)


def test_both_patch_dialects_are_accepted(http_a: Http, queued: dict[str, Any]) -> None:
    resp = patch(http_a, queued["id"], [{"op": "replace", "path": "/name", "value": "v21"}])
    assert resp.status_code == 200 and resp.json()["name"] == "v21", resp.text
    media = "application/openstack-images-v2.0-json-patch"
    resp = patch(http_a, queued["id"], [{"replace": "/name", "value": "v20"}], media)
    assert resp.status_code == 200 and resp.json()["name"] == "v20", resp.text


@pytest.mark.parametrize(
    "path", ["/status", "/size", "/checksum", "/id", "/created_at", "/os_hash_value", "/owner"]
)
def test_patch_on_a_read_only_attribute_is_forbidden(
    http_a: Http, queued: dict[str, Any], path: str
) -> None:
    resp = patch(http_a, queued["id"], [{"op": "replace", "path": path, "value": "x"}])
    assert path.strip("/") in error(resp, 403).lower()


def test_patch_removing_a_base_attribute_is_forbidden(http_a: Http, queued: dict[str, Any]) -> None:
    resp = patch(http_a, queued["id"], [{"op": "remove", "path": "/disk_format"}])
    assert "disk_format" in error(resp, 403)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "json"),
        (b'{"op": "replace"}', "array"),
        (b'"replace"', "array"),
        ([{"op": "move", "path": "/name", "from": "/x"}], "move"),
        ([{"path": "/name", "value": "x"}], "op"),
        ([{"op": "replace", "value": "x"}], "path"),
        ([{"op": "replace", "path": "name", "value": "x"}], "name"),
        ([{"op": "replace", "path": "/name"}], "value"),
        ([{"op": "replace", "path": "/min_ram", "value": "lots"}], "min_ram"),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], "disk_format"),
        ([{"op": "add", "path": "/tags/-", "value": "t" * 256}], "tag"),
        ([{"op": "replace", "path": "/colour", "value": 5}], "colour"),
        (["not an operation"], "operation"),
    ],
)
def test_malformed_patch_is_a_400(
    http_a: Http, queued: dict[str, Any], body: Any, fragment: str
) -> None:
    resp = patch(http_a, queued["id"], body)
    assert fragment in error(resp, 400).lower()


def test_patch_removing_a_missing_property_is_a_conflict(
    http_a: Http, queued: dict[str, Any]
) -> None:
    resp = patch(http_a, queued["id"], [{"op": "remove", "path": "/never_set"}])
    assert "never_set" in error(resp, 409)


def test_patch_of_a_reserved_property_is_forbidden(http_a: Http, queued: dict[str, Any]) -> None:
    op = {"op": "add", "path": "/os_glance_import_task", "value": "x"}
    resp = patch(http_a, queued["id"], [op])
    assert "os_glance_import_task" in error(resp, 403)


# -- listing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("sort_key=colour", "colour"),
        ("sort_key=name&sort_dir=sideways", "sideways"),
        ("sort=name:up", "up"),
        ("sort=bogus:asc", "bogus"),
        ("sort=name:asc&sort_key=name", "sort"),
        ("limit=-1", "limit"),
        ("limit=many", "limit"),
        ("marker=" + str(uuid.uuid4()), "marker"),
        ("marker=not-an-image", "marker"),
        ("created_at=gt:yesterday", "created_at"),
        ("created_at=around:2020-01-01T00:00:00Z", "around"),
        ("size_min=big", "size_min"),
        ("size_max=-3", "size_max"),
        ("visibility=everyone", "visibility"),
        ("member_status=maybe", "member_status"),
        ("protected=perhaps", "protected"),
        ("os_hidden=perhaps", "os_hidden"),
        ("status=in:", "status"),
        ("name=in:a,%22b", "quotes"),
    ],
)
def test_bad_listing_parameters_are_a_400(http_a: Http, query: str, fragment: str) -> None:
    resp = http_a("GET", f"/v2/images?{query}")
    assert fragment in error(resp, 400)


# -- data -----------------------------------------------------------------------------


def test_upload_with_another_content_type_is_415(http_a: Http, queued: dict[str, Any]) -> None:
    resp = http_a(
        "PUT",
        f"/v2/images/{queued['id']}/file",
        data=b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert "application/octet-stream" in error(resp, 415)


def test_second_upload_is_a_conflict(http_a: Http, active: dict[str, Any]) -> None:
    resp = http_a(
        "PUT",
        f"/v2/images/{active['id']}/file",
        data=b"more",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert "active" in error(resp, 409)
    assert http_a("GET", f"/v2/images/{active['id']}/file").content == b"data"


def test_import_bodies(http_a: Http, queued: dict[str, Any]) -> None:
    url = f"/v2/images/{queued['id']}/import"
    for body, fragment in (
        (b"not json", "json"),
        (b"[]", "object"),
        (b"{}", "method"),
        (b'{"method": "glance-direct"}', "method"),
        (b'{"method": {"name": "teleport"}}', "teleport"),
        (b'{"method": {"name": "web-download"}}', "uri"),
        (b'{"method": {"name": "web-download", "uri": "ftp://x/y"}}', "ftp://x/y"),
    ):
        resp = http_a("POST", url, data=body, headers={"Content-Type": "application/json"})
        assert fragment in error(resp, 400).lower(), body
    assert http_a.image(queued["id"])["status"] == "queued"


def test_copy_image_bodies(http_admin: Http, active: dict[str, Any]) -> None:
    """copy-image copies an active image (an admin's call, as in Glance)."""
    url = f"/v2/images/{active['id']}/import"
    for body, status, fragment in (
        (b'{"method": {"name": "copy-image"}, "stores": "slow"}', 400, "stores"),
        (b'{"method": {"name": "copy-image"}, "all_stores": "yes"}', 400, "all_stores"),
        # Glance's answer to a store it does not have
        (b'{"method": {"name": "copy-image"}, "stores": ["nowhere"]}', 409, "nowhere"),
    ):
        resp = http_admin("POST", url, data=body, headers={"Content-Type": "application/json"})
        assert fragment in error(resp, status).lower(), body
    shown = http_admin.image(active["id"])
    assert (shown["status"], shown["stores"]) == ("active", "fast")


# -- members --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "json"),
        (b"[]", "member"),
        (b"{}", "member"),
        (b'{"member": 5}', "member"),
        (b'{"member": ""}', "member"),
    ],
)
def test_malformed_member_body_is_a_400(
    http_a: Http, queued: dict[str, Any], body: bytes, fragment: str
) -> None:
    resp = http_a(
        "POST",
        f"/v2/images/{queued['id']}/members",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert fragment in error(resp, 400).lower()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "json"),
        (b"{}", "status"),
        (b'{"status": "maybe"}', "maybe"),
        (b'{"status": 1}', "status"),
    ],
)
def test_malformed_member_status_is_a_400(
    tank_v2: ApiServer, http_a: Http, bob: Caller, body: bytes, fragment: str
) -> None:
    image = http_a.create(name="member-status")
    member = http_a("POST", f"/v2/images/{image['id']}/members", json={"member": bob.project})
    assert member.status_code == 200, member.text
    resp = Http(tank_v2, bob)(
        "PUT",
        f"/v2/images/{image['id']}/members/{bob.project}",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert fragment in error(resp, 400).lower()


# -- headers and paths ----------------------------------------------------------------


def raw_request(server: ApiServer, head: bytes) -> tuple[int, dict[str, Any]]:
    """Send a request head as bytes (requests would re-encode the headers)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head_part, _, body = data.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ", 2)[1])
    return status, json.loads(body)


@pytest.mark.parametrize("header", ["X-Project-Id", "X-Roles", "X-User-Id"])
def test_identity_header_that_is_not_utf8_is_a_400(
    tank_v2: ApiServer, alice: Caller, header: str
) -> None:
    fields = {**alice.headers(), header: "\udcffproject"}
    lines = b"".join(
        k.encode() + b": " + v.encode("utf-8", "surrogateescape") + b"\r\n"
        for k, v in fields.items()
    )
    head = b"GET /v2/images HTTP/1.1\r\nHost: tank\r\nConnection: close\r\n" + lines + b"\r\n"
    status, body = raw_request(tank_v2, head)
    assert status == 400, body
    assert header.lower() in body["error"]["message"].lower()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/images/%FF%FE"),
        ("GET", "/v2/images/%ZZ"),
        ("PUT", "/v2/images/x/tags/%FF"),
        ("GET", "/v2/images/x/members/%C3"),
    ],
)
def test_paths_that_do_not_decode_are_not_a_500(http_a: Http, method: str, path: str) -> None:
    resp = http_a(method, path)
    assert resp.status_code in (400, 404), (resp.status_code, resp.text)
    assert resp.json()["error"]["message"]


def test_unknown_paths_and_methods(http_a: Http, queued: dict[str, Any]) -> None:
    assert http_a("GET", "/v2/nothing-here").status_code == 404
    assert http_a("GET", "/v3/images").status_code == 404
    resp = http_a("POST", f"/v2/images/{queued['id']}")
    assert error(resp, 405)
    assert "PATCH" in resp.headers["Allow"]


def test_unauthenticated_request_is_a_401(tank_v2: ApiServer) -> None:
    resp = Http(tank_v2, None)("GET", "/v2/images")
    assert "X-Identity-Status" in error(resp, 401)
