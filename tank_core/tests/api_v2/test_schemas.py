"""The /v2/schemas documents: Glance 33's, accepted by python-glanceclient's models."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tank import errors, model
from tank.api.v2 import schemas, views
from tank.api.v2.patch import PATCH_V2_1, apply_patch, parse_patch


@pytest.fixture
def jsonschema() -> Any:
    return pytest.importorskip(
        "jsonschema", reason="jsonschema comes with python-glanceclient (tank-core[testing])"
    )


GLANCE_BASE = {
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
    "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size", "container_format",
    "disk_format", "created_at", "updated_at", "tags", "direct_url", "min_ram", "min_disk",
    "self", "file", "stores", "schema", "locations",
}  # fmt: skip
GLANCE_CUSTOM = {
    "kernel_id", "ramdisk_id", "instance_uuid", "architecture", "os_distro", "os_version",
    "description", "cinder_encryption_key_id", "cinder_encryption_key_deletion_policy",
}  # fmt: skip


def _full_image(make_image: Callable[..., model.Image]) -> model.Image:
    return make_image(
        name="debian-12",
        disk_format="qcow2",
        container_format="bare",
        status="active",
        size=1024,
        virtual_size=4096,
        checksum="0" * 32,
        os_hash_algo="sha256",
        os_hash_value="a" * 64,
        owner="tenant-a",
        min_ram=512,
        min_disk=2,
        protected=True,
        os_hidden=True,
        visibility="community",
        tags=["linux", "debian"],
        properties={
            "os_distro": "debian",
            "kernel_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "cinder_encryption_key_deletion_policy": "do_not_delete",
            "os_glance_import_task": "task-1",
            "hw_disk_bus": "scsi",
        },
        locations=[("file:///var/lib/tank/x", "fs"), ("s3://bucket/x", "s3")],
    )


def test_documents_are_rendered_once_as_the_json_of_the_schemas() -> None:
    assert set(schemas.SCHEMA_DOCUMENTS) == {"image", "images", "member", "members"}
    assert json.loads(schemas.SCHEMA_DOCUMENTS["image"]) == schemas.IMAGE_SCHEMA
    assert json.loads(schemas.SCHEMA_DOCUMENTS["images"]) == schemas.IMAGES_SCHEMA
    assert json.loads(schemas.SCHEMA_DOCUMENTS["member"]) == schemas.MEMBER_SCHEMA
    assert json.loads(schemas.SCHEMA_DOCUMENTS["members"]) == schemas.MEMBERS_SCHEMA
    for document in schemas.SCHEMA_DOCUMENTS.values():
        assert isinstance(document, bytes)


@pytest.mark.parametrize("name", ["image", "images", "member", "members"])
def test_documents_are_valid_json_schema(name: str, jsonschema: Any) -> None:
    jsonschema.Draft4Validator.check_schema(json.loads(schemas.SCHEMA_DOCUMENTS[name]))


def test_image_schema_has_glance_properties_links_and_permissive_extras() -> None:
    doc = json.loads(schemas.SCHEMA_DOCUMENTS["image"])
    assert doc["name"] == "image"
    assert set(doc["properties"]) == GLANCE_BASE | GLANCE_CUSTOM
    assert doc["additionalProperties"] == {"type": "string"}
    assert doc["links"] == [
        {"rel": "self", "href": "{self}"},
        {"rel": "enclosure", "href": "{file}"},
        {"rel": "describedby", "href": "{schema}"},
    ]
    # the client adds (not replaces) a custom property the image lacks only if is_base is false
    for name in GLANCE_CUSTOM:
        assert doc["properties"][name]["is_base"] is False
    for name in GLANCE_BASE:
        assert "is_base" not in doc["properties"][name]
    read_only = {k for k, v in doc["properties"].items() if v.get("readOnly")}
    assert read_only == {
        "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
        "created_at", "updated_at", "direct_url", "self", "file", "stores", "schema",
    }  # fmt: skip


def test_image_schema_enums_are_tanks_values() -> None:
    props = schemas.IMAGE_SCHEMA["properties"]
    assert props["disk_format"]["enum"][0] is None
    assert set(props["disk_format"]["enum"][1:]) == model.DISK_FORMATS
    assert set(props["container_format"]["enum"][1:]) == model.CONTAINER_FORMATS
    assert set(props["status"]["enum"]) == {s.value for s in model.Status}
    assert set(props["visibility"]["enum"]) == {v.value for v in model.Visibility}
    member_status = schemas.MEMBER_SCHEMA["properties"]["status"]["enum"]
    assert set(member_status) == {s.value for s in model.MemberStatus}


def test_formats_include_glance_33_defaults() -> None:
    glance_disk = {
        "ami",
        "ari",
        "aki",
        "vhd",
        "vhdx",
        "vmdk",
        "raw",
        "qcow2",
        "vdi",
        "iso",
        "ploop",
    }
    glance_container = {"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
    assert glance_disk <= model.DISK_FORMATS
    assert glance_container <= model.CONTAINER_FORMATS


def test_collection_and_member_documents() -> None:
    images = schemas.IMAGES_SCHEMA
    assert images["properties"]["images"]["items"] == schemas.IMAGE_SCHEMA
    assert set(images["properties"]) == {"images", "first", "next", "schema"}
    member = schemas.MEMBER_SCHEMA
    assert set(member["properties"]) == {
        "member_id", "image_id", "created_at", "updated_at", "status", "schema",
    }  # fmt: skip
    assert "additionalProperties" not in member  # Glance serves Schema.minimal()
    members = schemas.MEMBERS_SCHEMA
    assert members["properties"]["members"]["items"] == member
    assert members["links"] == [{"rel": "describedby", "href": "{schema}"}]


def test_rendered_image_and_listing_validate(
    make_image: Callable[..., model.Image], jsonschema: Any
) -> None:
    image = _full_image(make_image)
    view = views.image_json(
        image, show_direct_url="file:///var/lib/tank/x", locations=views.locations_json(image)
    )
    assert len(view["locations"]) == 2
    jsonschema.validate(view, schemas.IMAGE_SCHEMA)
    queued = views.image_json(make_image())
    jsonschema.validate(queued, schemas.IMAGE_SCHEMA)
    listing = views.images_json([image, make_image()], next_url="/v2/images?marker=x")
    jsonschema.validate(listing, schemas.IMAGES_SCHEMA)


def test_rendered_members_validate(make_image: Callable[..., model.Image], jsonschema: Any) -> None:
    member = model.Member(image_id=make_image().id, member="tenant-b", status="accepted")
    jsonschema.validate(views.member_json(member), schemas.MEMBER_SCHEMA)
    jsonschema.validate(views.members_json([member]), schemas.MEMBERS_SCHEMA)


# --- check_value answers as jsonschema does --------------------------------------------

CASES: list[tuple[str, Any]] = [
    ("name", "x"), ("name", None), ("name", 5), ("name", "x" * 255), ("name", "x" * 256),
    ("visibility", "public"), ("visibility", "Public"), ("visibility", None),
    ("protected", True), ("protected", "true"), ("protected", 1),
    ("os_hidden", False), ("os_hidden", None),
    ("min_ram", 0), ("min_ram", -1), ("min_ram", 1.5), ("min_ram", True), ("min_ram", "1"),
    ("disk_format", "qcow2"), ("disk_format", None), ("disk_format", "QCOW2"),
    ("disk_format", "vhdx"), ("container_format", "docker"), ("container_format", "tar"),
    ("owner", None), ("owner", "t" * 256), ("id", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
    ("id", "1b4e28ba2fa111d2883f0016d3cca427"), ("id", 7),
    ("tags", []), ("tags", ["a", "b"]), ("tags", "a"), ("tags", [1]), ("tags", ["x" * 256]),
    ("tags", None), ("kernel_id", None), ("kernel_id", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
    ("kernel_id", "nope"), ("instance_uuid", None), ("os_distro", 3),
    ("cinder_encryption_key_deletion_policy", "on_image_deletion"),
    ("cinder_encryption_key_deletion_policy", "later"),
    ("hw_disk_bus", "scsi"), ("hw_disk_bus", 1), ("hw_disk_bus", None), ("hw_disk_bus", []),
    ("hw_disk_bus", {"a": 1}), ("locations", [{"url": "rbd://a/b/c/d", "metadata": {}}]),
    ("locations", [{"url": "rbd://a"}]), ("locations", [{"url": 1, "metadata": {}}]),
    ("locations", [{"url": "u", "metadata": {}, "validation_data": {"os_hash_algo": "sha256"}}]),
    ("locations", [{"url": "u", "metadata": {}, "validation_data": {
        "os_hash_algo": "sha256", "os_hash_value": "ab", "other": "x"}}]),
    ("locations", [{"url": "u", "metadata": {}, "validation_data": {
        "os_hash_algo": "sha256", "os_hash_value": "ab", "checksum": "0" * 31}}]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "value"), CASES)
def test_check_value_agrees_with_jsonschema(name: str, value: Any, jsonschema: Any) -> None:
    try:
        jsonschema.validate({name: value}, schemas.IMAGE_SCHEMA)
        valid = True
    except jsonschema.ValidationError:
        valid = False
    if valid:
        schemas.check_image_value(name, value)
    else:
        with pytest.raises(errors.ValidationError) as info:
            schemas.check_image_value(name, value)
        assert info.value.http_status == 400
        assert name in str(info.value)


def test_check_value_messages_truncate_long_values() -> None:
    with pytest.raises(errors.ValidationError) as info:
        schemas.check_image_value("name", "x" * 100_000)
    assert len(str(info.value)) < 200
    assert str(info.value).startswith("name: ")


# --- python-glanceclient builds its models from these documents -----------------------


def _glanceclient_model() -> Any:
    pytest.importorskip("glanceclient", reason="python-glanceclient is in tank-core[testing]")
    import warlock
    from glanceclient.v2 import schemas as gc_schemas

    raw = gc_schemas.Schema(json.loads(schemas.SCHEMA_DOCUMENTS["image"])).raw()
    return warlock.model_factory(raw, base_class=gc_schemas.SchemaBasedModel)


def test_glanceclient_model_accepts_rendered_images(make_image: Callable[..., model.Image]) -> None:
    Model = _glanceclient_model()
    image = _full_image(make_image)
    full = views.image_json(
        image, show_direct_url="file:///var/lib/tank/x", locations=views.locations_json(image)
    )
    for view in (full, views.image_json(make_image())):
        view.pop("self")  # glanceclient's Controller._get drops it (warlock's __init__ takes self)
        image = Model(**view)  # validates the whole image, as `glance image-update` does
        assert image["id"] == view["id"]


def test_glanceclient_patch_round_trips_through_parse_and_apply(
    make_image: Callable[..., model.Image],
) -> None:
    """What `glance image-update --name ... --property ...` sends, Tank applies."""
    pytest.importorskip("glanceclient", reason="python-glanceclient is in tank-core[testing]")
    import warlock
    from glanceclient.v2 import schemas as gc_schemas

    Model = _glanceclient_model()
    original = make_image(
        name="old", tags=["a"], properties={"hw_disk_bus": "ide", "os_version": "11"}
    )
    view = views.image_json(original)
    view.pop("self")
    client_image = Model(**view)
    client_image.name = "new"
    client_image.os_distro = "debian"  # a custom (is_base: false) property: an "add"
    client_image.hw_disk_bus = "scsi"
    client_image.min_ram = 1024
    del client_image["os_version"]  # glanceclient --remove-property
    ops = parse_patch(json.loads(client_image.patch), PATCH_V2_1)
    assert {op.op for op in ops} == {"add", "replace", "remove"}
    changes = apply_patch(original, ops, is_admin=False)
    assert changes == {
        "name": "new",
        "min_ram": 1024,
        "tags": ("a",),  # glanceclient replaces /tags on every update
        "properties": {"hw_disk_bus": "scsi", "os_distro": "debian"},
    }
    with pytest.raises(warlock.InvalidOperation):
        client_image.min_ram = "lots"  # the client refuses what the schema refuses
    assert gc_schemas.Schema(schemas.image_schema()).is_base_property("os_distro") is False


def test_glanceclient_create_body_round_trips(make_image: Callable[..., model.Image]) -> None:
    """What `glance image-create ...` posts becomes an image the client accepts back."""
    from tank.api.v2.bodies import parse_create

    Model = _glanceclient_model()
    body = Model()
    body.name = "cirros"
    body.disk_format = "qcow2"
    body.container_format = "bare"
    body.visibility = "private"
    body.min_disk = 1
    body.tags = ["x86", "tiny"]
    body.os_distro = "cirros"
    body.hw_qemu_guest_agent = "yes"
    fields = parse_create(json.loads(json.dumps(body)), is_admin=False, tenant="t1")
    image = make_image(owner="t1", **fields)
    view = views.image_json(image)
    assert view["os_distro"] == "cirros" and view["hw_qemu_guest_agent"] == "yes"
    assert (view["visibility"], view["tags"]) == ("private", ["tiny", "x86"])
    view.pop("self")
    assert Model(**view)["name"] == "cirros"
