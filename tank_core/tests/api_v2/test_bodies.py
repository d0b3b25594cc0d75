"""POST /v2/images and member bodies: Glance 33's rules, as Tank's errors."""

from __future__ import annotations

from typing import Any

import pytest

from tank import errors, model
from tank.api.v2.bodies import parse_create, parse_member_create, parse_member_status

IMAGE_ID = "1B4E28BA-2FA1-11D2-883F-0016D3CCA427"


def _create(body: Any, *, is_admin: bool = False, tenant: str | None = "t1") -> dict[str, Any]:
    return parse_create(body, is_admin=is_admin, tenant=tenant)


def test_full_body_becomes_image_fields() -> None:
    fields = _create(
        {
            "id": IMAGE_ID,
            "name": "debian",
            "disk_format": "qcow2",
            "container_format": "bare",
            "visibility": "community",
            "protected": True,
            "os_hidden": True,
            "min_ram": 512,
            "min_disk": 3,
            "owner": "t1",
            "tags": ["b", "a", "b"],
            "os_distro": "debian",
            "hw_disk_bus": "scsi",
        }
    )
    assert fields == {
        "id": IMAGE_ID.lower(),
        "name": "debian",
        "disk_format": "qcow2",
        "container_format": "bare",
        "visibility": "community",
        "protected": True,
        "os_hidden": True,
        "min_ram": 512,
        "min_disk": 3,
        "owner": "t1",
        "tags": ("a", "b"),
        "properties": {"os_distro": "debian", "hw_disk_bus": "scsi"},
    }


def test_empty_body_gives_only_empty_tags_and_properties() -> None:
    assert _create({}) == {"tags": (), "properties": {}}


@pytest.mark.parametrize(
    "key",
    [
        "status", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
        "created_at", "updated_at", "direct_url", "self", "file", "schema", "stores",
        "locations", "location", "deleted", "deleted_at", "os_glance_import_task",
        "os_glance_", "os_glance_stage_host",
    ],
)  # fmt: skip
def test_reserved_and_read_only_attributes_are_forbidden(key: str) -> None:
    value: Any = {
        "status": "active", "size": 1, "virtual_size": 1, "checksum": "0" * 32,
        "os_hash_algo": "sha512", "os_hash_value": "ab", "locations": [],
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
    }.get(key, "x")  # fmt: skip
    with pytest.raises(errors.Forbidden) as info:
        _create({"name": "x", key: value}, is_admin=True)
    assert info.value.http_status == 403
    assert f"'{key}'" in str(info.value)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"disk_format": "floppy"}, "disk_format"),
        ({"container_format": "tar"}, "container_format"),
        ({"disk_format": "QCOW2"}, "disk_format"),
        ({"name": 5}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"protected": "true"}, "protected"),
        ({"os_hidden": 1}, "os_hidden"),
        ({"min_ram": "1"}, "min_ram"),
        ({"min_ram": True}, "min_ram"),
        ({"min_disk": 1.5}, "min_disk"),
        ({"min_disk": -1}, "min_disk"),
        ({"min_ram": 2**63}, "min_ram"),  # past the registry's BIGINT
        ({"visibility": "everyone"}, "visibility"),
        ({"tags": "a,b"}, "tags"),
        ({"tags": [1]}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"tags": ["a\nb"]}, "tags"),
        ({"id": "not-a-uuid"}, "id"),
        ({"hw_disk_bus": 7}, "hw_disk_bus"),
        ({"hw_disk_bus": None}, "hw_disk_bus"),
        ({"hw_disk_bus": ["scsi"]}, "hw_disk_bus"),
        ({"kernel_id": "vmlinuz"}, "kernel_id"),
        ({"cinder_encryption_key_deletion_policy": "never"}, "cinder_encryption"),
        ({"k" * 256: "v"}, "kkkk"),
        ({"": "v"}, "properties"),
        ({"big": "v" * 65536}, "big"),
        ({"status": 5}, "status"),  # Glance checks types before read-only attributes
    ],
)
def test_bad_values_are_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        _create(body, is_admin=True)
    assert info.value.http_status == 400
    assert field in str(info.value)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("body", [None, [], [{"name": "x"}], "name", 5, True])
def test_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(errors.ValidationError, match="JSON object"):
        _create(body)


def test_value_in_message_is_truncated() -> None:
    with pytest.raises(errors.ValidationError) as info:
        _create({"disk_format": "x" * 10_000})
    assert "disk_format" in str(info.value) and len(str(info.value)) < 300


def test_public_needs_an_admin_community_does_not() -> None:
    with pytest.raises(errors.Forbidden, match="public"):
        _create({"visibility": "public"})
    assert _create({"visibility": "public"}, is_admin=True)["visibility"] == "public"
    assert _create({"visibility": "community"})["visibility"] == "community"
    assert _create({"visibility": "private"})["visibility"] == "private"


def test_owner_other_than_own_project_needs_an_admin() -> None:
    with pytest.raises(errors.Forbidden, match="'t2'"):
        _create({"owner": "t2"}, tenant="t1")
    with pytest.raises(errors.Forbidden):
        _create({"owner": None}, tenant="t1")
    assert _create({"owner": "t1"}, tenant="t1")["owner"] == "t1"
    assert _create({"owner": "t2"}, is_admin=True)["owner"] == "t2"
    assert "owner" not in _create({"name": "x"})


def test_null_for_a_nullable_property_leaves_it_unset() -> None:
    fields = _create({"kernel_id": None, "ramdisk_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"})
    assert fields["properties"] == {"ramdisk_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}


def test_null_name_and_formats_are_allowed() -> None:
    fields = _create({"name": None, "disk_format": None, "container_format": None})
    assert fields["name"] is None and fields["disk_format"] is None


def test_glance_33_default_formats_are_accepted() -> None:
    for disk in ("vhdx", "ploop", "iso"):
        assert _create({"disk_format": disk})["disk_format"] == disk
    for container in ("ova", "docker", "compressed"):
        assert _create({"container_format": container})["container_format"] == container


# --- members -----------------------------------------------------------------------------


def test_member_create_body() -> None:
    assert parse_member_create({"member": "tenant-b"}) == "tenant-b"
    for body, message in [
        ({}, "not specified"),
        ({"member": ""}, "empty"),
        ({"member": "  "}, "empty"),
        ({"member": 5}, "project id"),
        ({"member": None}, "project id"),
        ([], "form"),
        ("tenant-b", "form"),
    ]:
        with pytest.raises(errors.ValidationError, match=message):
            parse_member_create(body)


def test_member_status_body() -> None:
    for status in ("pending", "accepted", "rejected"):
        assert parse_member_status({"status": status}) is model.MemberStatus(status)
    for body, message in [
        ({}, "not specified"),
        ({"status": "maybe"}, "'maybe' is not one of pending, accepted, rejected"),
        ({"status": ["accepted"]}, "is not one of"),
        ({"status": None}, "is not one of"),
        (None, "form"),
    ]:
        with pytest.raises(errors.ValidationError, match=message):
            parse_member_status(body)


def test_openstacksdk_create_body() -> None:
    """What `conn.image.create_image(...)` posts (Resource.create's body) is accepted."""
    sdk_image = pytest.importorskip(
        "openstack.image.v2.image", reason="openstacksdk is in tank-core[testing]"
    )
    resource = sdk_image.Image.new(
        name="cirros",
        disk_format="qcow2",
        container_format="bare",
        is_protected=True,
        is_hidden=False,
        visibility="private",
        min_disk=1,
        tags=["a"],
        **{"owner_specified.openstack.md5": "", "owner_specified.openstack.object": "c/cirros"},
    )
    body = resource._prepare_request(requires_id=False, prepend_key=False).body
    assert _create(body) == {
        "name": "cirros",
        "disk_format": "qcow2",
        "container_format": "bare",
        "protected": True,
        "os_hidden": False,
        "visibility": "private",
        "min_disk": 1,
        "tags": ("a",),
        "properties": {
            "owner_specified.openstack.md5": "",
            "owner_specified.openstack.object": "c/cirros",
        },
    }
