"""The Registry REST API on the wire: malformed requests are 400 (never 500) with the
error format clients map back, names that are awkward in URLs and headers survive, and
every error class crosses the wire as itself."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import requests

from tank import errors
from tank.model import Context, Image
from tank.registry import Registry
from tank.registry_http import wire
from tank.registry_http.client import HttpRegistry

ADMIN_HEADERS = {"X-Is-Admin": "true"}


@pytest.fixture
def image(local_registry: Registry) -> Image:
    return local_registry.create(Image(name="served", owner="t1", properties={"os": "linux"}))


def malformed(image_id: str) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    json_type = {"Content-Type": "application/json"}
    return [
        ("POST", "/images", json_type, b"{not json"),
        ("POST", "/images", json_type, b"[" * 500_000),
        ("POST", "/images", json_type, b'"just a string"'),
        ("POST", "/images", json_type, b'{"image": []}'),
        ("POST", "/images", json_type, b'{"image": {"id": 5}}'),
        ("POST", "/images", json_type, b'{"image": {"id": "not-a-uuid"}}'),
        ("POST", "/images", json_type, b'{"image": {"size": -1}}'),
        ("POST", "/images", json_type, b'{"image": {"size": 1e400}}'),
        ("POST", "/images", json_type, b'{"image": {"status": "bogus"}}'),
        ("POST", "/images", json_type, b'{"image": {"properties": {"a": {"b": 1}}}}'),
        ("POST", "/images", json_type, b'{"image": {"created_at": "yesterday"}}'),
        ("POST", "/images", json_type, b'{"image": {"name": "a\\u0000b"}}'),
        ("POST", "/images", json_type, b"\xff\xfe\x00"),
        ("PUT", f"/images/{image_id}", json_type, b'{"changes": {"name": "old format"}}'),
        ("PUT", f"/images/{image_id}", json_type, b'{"image": {"status": 5}}'),
        ("PUT", f"/images/{image_id}", json_type, b'{"image": {"min_ram": "lots"}}'),
        ("PUT", f"/images/{image_id}", json_type, b'{"image": {}, "purge_props": "maybe"}'),
        ("PUT", f"/images/{image_id}", json_type, b'{"image": {}, "expected_status": [1]}'),
        ("PUT", f"/images/{image_id}", json_type, b'{"image": {"id": "x"}}'),
        ("PUT", f"/images/{image_id}/members", json_type, b'{"memberships": [{}]}'),
        ("PUT", f"/images/{image_id}/members", json_type, b'{"memberships": [{"member_id": 5}]}'),
        ("PUT", f"/images/{image_id}/members", json_type, b'{"memberships": {"a": 1}}'),
        ("PUT", f"/images/{image_id}/members/m", json_type, b'{"can_share": true}'),
        ("PUT", f"/images/{image_id}/members/m", json_type, b'{"member": {"can_share": 2}}'),
        ("PUT", f"/images/{image_id}/members/%ff", {}, None),
        ("GET", "/images/detail?limit=lots", {}, None),
        ("GET", "/images/detail?limit=-1", {}, None),
        ("GET", "/images/detail?sort_key=password", {}, None),
        ("GET", "/images/detail?sort_dir=sideways", {}, None),
        ("GET", "/images/detail?marker=not-a-uuid", {}, None),
        ("GET", "/images/detail?colour=red", {}, None),
        ("GET", "/images/detail?size_min=big", {}, None),
        ("GET", "/images?is_public=perhaps", {}, None),
        ("GET", "/images/detail?status=bogus", {}, None),
        ("GET", "/images/detail?property-=x", {}, None),
        ("GET", "/images", {"X-Is-Admin": "sometimes"}, None),
        ("POST", "/leases/job", json_type, b'{"holder": "a"}'),
        ("POST", "/leases/job", json_type, b'{"holder": "a", "seconds": 0}'),
        ("POST", "/leases/job", json_type, b'{"holder": "a", "seconds": true}'),
        ("POST", "/leases/job", json_type, b'{"holder": 5, "seconds": 10}'),
        ("POST", "/leases/job", json_type, b'{"holder": "", "seconds": 10}'),
        ("POST", "/leases/job", json_type, b'["a", 10]'),
        ("POST", "/leases/job/release", json_type, b"{}"),
    ]


def test_malformed_requests_are_400_with_a_typed_error(
    served: str, local_registry: Registry, image: Image
) -> None:
    for method, path, headers, body in malformed(image.id):
        resp = requests.request(
            method, served + path, headers={**ADMIN_HEADERS, **headers}, data=body, timeout=10
        )
        assert resp.status_code == 400, (method, path, body, resp.status_code, resp.text)
        error = resp.json()["error"]
        assert (error["code"], error["title"]) == (400, "Bad Request"), error
        assert error["type"] in ("Invalid", "ValidationError"), error
        assert error["message"], error
        if error["type"] == "ValidationError":
            assert isinstance(error["field"], str), error
    assert local_registry.get(image.id, context=Context.admin()) == image


def test_leases_are_for_admins(served: str, local_registry: Registry) -> None:
    name = f"job-{uuid.uuid4().hex}"
    body = {"holder": "a", "seconds": 30}
    user = {"X-Tenant-Id": "t1"}
    for path, payload in ((name, body), (f"{name}/release", {"holder": "a"})):
        resp = requests.post(f"{served}/leases/{path}", json=payload, headers=user, timeout=10)
        assert resp.status_code == 403 and resp.json()["error"]["type"] == "Forbidden"
    assert local_registry.hold_lease(name, "b", 30)  # a's attempt changed nothing
    resp = requests.post(f"{served}/leases/{name}", json=body, headers=ADMIN_HEADERS, timeout=10)
    assert resp.status_code == 200 and resp.json() == {"held": False}


def test_unknown_paths_and_methods(served: str, image: Image) -> None:
    resp = requests.get(served + "/nothing/here", timeout=10)
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "NotFound"
    resp = requests.post(served + f"/images/{image.id}", headers=ADMIN_HEADERS, timeout=10)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "DELETE, GET, PUT"
    assert resp.json()["error"]["title"] == "Method Not Allowed"


def test_brief_and_detail_listings(served: str, image: Image) -> None:
    params = {"property-os": "linux", "name": "served"}
    brief = requests.get(served + "/images", params=params, headers=ADMIN_HEADERS, timeout=10)
    assert brief.json() == {
        "images": [
            {
                "id": image.id,
                "name": "served",
                "disk_format": None,
                "container_format": None,
                "size": None,
                "checksum": None,
            }
        ]
    }
    detail = requests.get(served + "/images/detail", params=params, headers=ADMIN_HEADERS)
    assert detail.json() == {"images": [image.to_dict()]}
    # The context travels in headers: another tenant sees nothing of a private image.
    other = requests.get(served + "/images/detail", params=params, headers={"X-Tenant-Id": "t2"})
    assert other.json() == {"images": []}
    mine = requests.get(served + "/images/detail", params=params, headers={"X-Tenant-Id": "t1"})
    assert [i["id"] for i in mine.json()["images"]] == [image.id]


AWKWARD = ["a%41b", "ünï ✓", "sp ace", "?q=1#f", "a+b", "%2F", "-", "a.b", "..."]
#: Refused as member ids (the model's rule): they would be other paths in a URL.
PATHLIKE = ["x/y", "..", ".", "/"]


@pytest.mark.parametrize("where", ["in-process", "tank-registry"])
def test_awkward_member_names_round_trip(
    where: str, request: pytest.FixtureRequest, connect: Callable[..., HttpRegistry]
) -> None:
    if where == "tank-registry":  # the command's own server, as deployed
        url = request.getfixturevalue("registry_server").url
    else:
        url = request.getfixturevalue("served")
    registry = connect(url)
    admin = Context.admin()
    image = registry.create(Image(name="awkward"))
    for name in AWKWARD:
        member = registry.add_member(image.id, name, can_share=True, context=admin)
        assert member.member == name
        assert image.id in [m.image_id for m in registry.shared_with(name, context=admin)]
    listed = registry.list_members(image.id, context=admin)
    assert sorted(m.member for m in listed) == sorted(AWKWARD)
    for name in AWKWARD:
        registry.remove_member(image.id, name, context=admin)
    assert registry.list_members(image.id, context=admin) == []
    for name in PATHLIKE:
        with pytest.raises(errors.ValidationError) as caught:
            registry.add_member(image.id, name, can_share=True, context=admin)
        assert caught.value.field == "member"
    assert registry.list_members(image.id, context=admin) == []
    assert registry.get(image.id, context=admin).deleted is False  # ".." deleted nothing


def test_same_answers_as_in_process_for_odd_input(
    served: str, local_registry: Registry, image: Image, connect: Callable[..., HttpRegistry]
) -> None:
    """What the REST path cannot carry (empty names, ids that are not UUIDs) still gets
    the in-process registry's answer."""
    remote = connect(served)
    admin = Context.admin()
    for registry in (local_registry, remote):
        for bad_id in ("", "detail", "..", "not-a-uuid", image.id + "/members"):
            with pytest.raises(errors.NotFound):
                registry.get(bad_id, context=admin)
            with pytest.raises(errors.NotFound):
                registry.delete(bad_id, context=admin)
        with pytest.raises(errors.ValidationError) as caught:
            registry.add_member(image.id, "", context=admin)
        assert caught.value.field == "member"
        with pytest.raises(errors.NotFound):
            registry.remove_member(image.id, "", context=admin)
        assert registry.shared_with("", context=admin) == []
    assert local_registry.get(image.id, context=admin) == image


def test_contexts_with_unicode_tenants(
    served: str, connect: Callable[..., HttpRegistry], local_registry: Registry
) -> None:
    registry = connect(served)
    tenant = Context(tenant="tënänt ✓ 租户", user="ü", roles=frozenset({"rôle", "member"}))
    image = registry.create(Image(owner=tenant.tenant))
    assert registry.get(image.id, context=tenant).owner == tenant.tenant
    assert registry.update(image.id, {"name": "mine"}, context=tenant).name == "mine"
    with pytest.raises(errors.NotFound):
        registry.get(image.id, context=Context(tenant="tënänt"))
    for bad in (Context(tenant="a\nX-Is-Admin: true"), Context(tenant=" padded")):
        with pytest.raises(errors.ValidationError, match="cannot travel in a header"):
            registry.get(image.id, context=bad)
    with pytest.raises(errors.ValidationError, match="role"):
        registry.get(image.id, context=Context(tenant="t", roles=frozenset({"a,admin"})))


MESSAGE_ERRORS = sorted(
    (cls for cls in wire.ERRORS.values() if cls.http_status < 500), key=lambda c: c.__name__
)


@pytest.mark.parametrize("cls", MESSAGE_ERRORS, ids=lambda c: c.__name__)
def test_client_errors_cross_the_wire_as_themselves(cls: type[errors.TankError]) -> None:
    body = wire.error_to_json(cls("what went wrong"))
    assert body["error"]["code"] == cls.http_status
    back = wire.error_from_json(body, cls.http_status, "http://r")
    assert type(back) is cls and str(back) == "what went wrong"


def test_validation_errors_keep_their_field() -> None:
    body = wire.error_to_json(errors.ValidationError("min_ram", "must be >= 0, got -1"))
    assert body["error"]["field"] == "min_ram"
    back = wire.error_from_json(body, 400, "http://r")
    assert type(back) is errors.ValidationError
    assert (back.field, str(back)) == ("min_ram", "min_ram: must be >= 0, got -1")
