"""PATCH /v2/images/<id>: both JSON patch dialects, Glance 33's rules, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tank import errors, model
from tank.api.v2.patch import (
    PATCH_MEDIA_TYPES,
    PATCH_V2_0,
    PATCH_V2_1,
    Op,
    apply_patch,
    parse_patch,
    split_locations,
)

MakeImage = Callable[..., model.Image]


def _ops(*raw: dict[str, Any], media_type: str = PATCH_V2_1) -> list[Op]:
    return parse_patch(list(raw), media_type)


def _apply(
    image: model.Image, *raw: dict[str, Any], is_admin: bool = False, draft4: bool = False
) -> dict[str, Any]:
    ops = _ops(*raw, media_type=PATCH_V2_0 if draft4 else PATCH_V2_1)
    return apply_patch(image, ops, is_admin=is_admin)


# --- parse: media type and document ------------------------------------------------------


@pytest.mark.parametrize(
    "media_type",
    [None, "", "application/json", "application/json-patch+json", "text/plain",
     "application/openstack-images-v2.2-json-patch"],
)  # fmt: skip
def test_other_media_types_are_415(media_type: str | None) -> None:
    with pytest.raises(errors.UnsupportedMediaType) as info:
        parse_patch([], media_type)
    assert info.value.http_status == 415
    assert PATCH_V2_1 in str(info.value)
    assert PATCH_MEDIA_TYPES == (PATCH_V2_0, PATCH_V2_1)


def test_media_type_parameters_and_case_are_ignored() -> None:
    ops = parse_patch(
        [{"op": "replace", "path": "/name", "value": "x"}],
        "Application/OpenStack-Images-v2.1-JSON-Patch; charset=UTF-8",
    )
    assert ops == [Op("replace", ("name",), "x", 10)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"op": "replace"}, "JSON array"),
        ("[]", "JSON array"),
        (None, "JSON array"),
        ([["replace", "/name"]], "must be JSON objects"),
        ([{"path": "/name", "value": "x"}], "no 'op'"),
        ([{"op": "move", "from": "/a", "path": "/name"}], "op 'move'"),
        ([{"op": "test", "path": "/name", "value": "x"}], "op 'test'"),
        ([{"op": 1, "path": "/name", "value": "x"}], "op 1"),
        ([{"op": "replace", "value": "x"}], "no 'path'"),
        ([{"op": "replace", "path": 5, "value": "x"}], "JSON pointer string"),
        ([{"op": "replace", "path": None, "value": "x"}], "JSON pointer string"),
        ([{"op": "replace", "path": "name", "value": "x"}], 'does not start with "/"'),
        ([{"op": "replace", "path": "//name", "value": "x"}], 'adjacent "/"'),
        ([{"op": "replace", "path": "/a/ /b", "value": "x"}], 'adjacent "/"'),
        ([{"op": "replace", "path": "/name/", "value": "x"}], 'ends with "/"'),
        ([{"op": "replace", "path": "/na~2me", "value": "x"}], "escape"),
        ([{"op": "replace", "path": "/name~", "value": "x"}], "escape"),
        ([{"op": "add", "path": "/", "value": "x"}], "does not name an attribute"),
        ([{"op": "add", "path": "/ ", "value": "x"}], "does not name an attribute"),
        ([{"op": "add", "path": "/tags/-", "value": "x"}], "invalid JSON pointer"),
        ([{"op": "replace", "path": "/name/first", "value": "x"}], "invalid JSON pointer"),
        ([{"op": "add", "path": "/locations", "value": []}], "invalid JSON pointer"),
        ([{"op": "replace", "path": "/locations/0", "value": {}}], "invalid JSON pointer"),
        ([{"op": "replace", "path": "/name"}], 'requires a member named "value"'),
        ([{"op": "add", "path": "/foo"}], 'requires a member named "value"'),
        ([{"op": "replace", "path": "/name", "value": 5}], "name: 5 is not of type"),
        ([{"op": "replace", "path": "/min_ram", "value": "5"}], "min_ram"),
        ([{"op": "replace", "path": "/protected", "value": "yes"}], "protected"),
        ([{"op": "replace", "path": "/visibility", "value": "all"}], "visibility"),
        ([{"op": "replace", "path": "/disk_format", "value": "floppy"}], "disk_format"),
        ([{"op": "replace", "path": "/tags", "value": "a"}], "tags"),
        ([{"op": "add", "path": "/foo", "value": 1}], "foo: 1 is not of type string"),
        ([{"op": "add", "path": "/foo", "value": None}], "foo"),
        ([{"op": "add", "path": "/kernel_id", "value": "vmlinuz"}], "kernel_id"),
        ([{"op": "add", "path": "/locations/0", "value": {"url": "x"}}], "metadata"),
    ],
)
def test_bad_documents_are_400(body: Any, message: str) -> None:
    with pytest.raises(errors.ValidationError, match=message) as info:
        parse_patch(body, PATCH_V2_1)
    assert info.value.http_status == 400


def test_errors_name_the_operation() -> None:
    with pytest.raises(errors.ValidationError, match=r"^patch\[1\]: "):
        _ops({"op": "replace", "path": "/name", "value": "x"}, {"op": "copy", "path": "/a"})


@pytest.mark.parametrize(
    "attribute",
    ["id", "status", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
     "created_at", "updated_at", "direct_url", "self", "file", "schema", "stores"],
)  # fmt: skip
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_read_only_attributes_are_403_for_every_op(attribute: str, op: str) -> None:
    if (op, attribute) == ("remove", "stores"):
        pytest.skip("ignored, not refused: see test_removing_stores_is_ignored")
    raw: dict[str, Any] = {"op": op, "path": f"/{attribute}"}
    if op != "remove":
        raw["value"] = "x"
    with pytest.raises(errors.Forbidden, match=f"'{attribute}' is read-only") as info:
        _ops(raw)
    assert info.value.http_status == 403


def test_removing_stores_is_ignored() -> None:
    """openstacksdk takes the view's ``stores`` for a property and removes it in every
    update_image of a fetched image; the user's other changes must still apply."""
    ops = _ops(
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "remove", "path": "/stores"},
    )
    assert [(op.op, op.path) for op in ops] == [("replace", ("name",))]


@pytest.mark.parametrize(
    "attribute", ["location", "deleted", "deleted_at", "os_glance_import_task", "os_glance_x"]
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_reserved_attributes_are_403(attribute: str, op: str) -> None:
    with pytest.raises(errors.Forbidden, match=f"'{attribute}' is reserved"):
        _ops({"op": op, "path": f"/{attribute}", "value": "x"})


def test_draft_4_dialect() -> None:
    ops = parse_patch(
        [{"replace": "/name", "value": "x"}, {"add": "/a", "value": "1"}, {"remove": "/b"}],
        PATCH_V2_0,
    )
    assert ops == [
        Op("replace", ("name",), "x", 4),
        Op("add", ("a",), "1", 4),
        Op("remove", ("b",), None, 4),
    ]
    for bad in ({"value": "x"}, {"add": "/a", "replace": "/a", "value": "x"}, {"op": "add"}):
        with pytest.raises(errors.ValidationError, match="exactly one member"):
            parse_patch([bad], PATCH_V2_0)


def test_pointer_escapes_and_blanks() -> None:
    ops = _ops(
        {"op": "add", "path": "/a~1b", "value": "1"},
        {"op": "add", "path": "/a~0b", "value": "2"},
        {"op": "add", "path": "/~01", "value": "3"},
        {"op": "replace", "path": "/ name ", "value": "x"},  # Glance strips tokens
    )
    assert [op.path for op in ops] == [("a/b",), ("a~b",), ("~1",), ("name",)]
    assert [op.pointer for op in ops] == ["/a~1b", "/a~0b", "/~01", "/name"]


# --- apply ---------------------------------------------------------------------------------


def test_attributes_are_set(make_image: MakeImage) -> None:
    image = make_image(name="old", owner="t1")
    changes = _apply(
        image,
        {"op": "replace", "path": "/name", "value": "new"},
        {"op": "add", "path": "/min_ram", "value": 512},
        {"op": "replace", "path": "/protected", "value": True},
        {"op": "replace", "path": "/os_hidden", "value": True},
        {"op": "replace", "path": "/visibility", "value": "private"},
        {"op": "replace", "path": "/disk_format", "value": "vhdx"},
        {"op": "replace", "path": "/container_format", "value": "ova"},
        {"op": "replace", "path": "/min_disk", "value": 0},
    )
    assert changes == {
        "name": "new",
        "min_ram": 512,
        "protected": True,
        "os_hidden": True,
        "visibility": model.Visibility.PRIVATE,
        "disk_format": "vhdx",
        "container_format": "ova",
        "min_disk": 0,
    }
    assert image.name == "old"  # the image itself is a value: untouched


def test_name_can_be_nulled(make_image: MakeImage) -> None:
    assert _apply(make_image(name="x"), {"op": "replace", "path": "/name", "value": None}) == {
        "name": None
    }


def test_properties_come_back_whole(make_image: MakeImage) -> None:
    image = make_image(properties={"a": "1", "b": "2", "c": "3"})
    changes = _apply(
        image,
        {"op": "replace", "path": "/a", "value": "one"},
        {"op": "remove", "path": "/b"},
        {"op": "add", "path": "/d", "value": "4"},
        {"op": "add", "path": "/c", "value": "three"},  # v2.1: add sets an existing one
    )
    assert changes == {"properties": {"a": "one", "c": "three", "d": "4"}}


def test_sequential_ops_on_one_property(make_image: MakeImage) -> None:
    changes = _apply(
        make_image(),
        {"op": "add", "path": "/x", "value": "1"},
        {"op": "replace", "path": "/x", "value": "2"},
        {"op": "remove", "path": "/x"},
    )
    assert changes == {"properties": {}}


def test_tags_are_replaced_whole(make_image: MakeImage) -> None:
    image = make_image(tags=["old"])
    assert _apply(image, {"op": "replace", "path": "/tags", "value": ["b", "a", "b"]}) == {
        "tags": ("a", "b")
    }
    assert _apply(image, {"op": "add", "path": "/tags", "value": []}) == {"tags": ()}
    with pytest.raises(errors.Forbidden, match="may not be removed"):
        _apply(image, {"op": "remove", "path": "/tags"})
    with pytest.raises(errors.ValidationError, match="tags"):
        _apply(image, {"op": "replace", "path": "/tags", "value": ["ok", "bad\x01"]})


def test_missing_property_conflicts(make_image: MakeImage) -> None:
    image = make_image(properties={"a": "1"})
    for raw in ({"op": "replace", "path": "/b", "value": "x"}, {"op": "remove", "path": "/b"}):
        with pytest.raises(errors.Conflict, match="Property b does not exist") as info:
            _apply(image, raw)
        assert info.value.http_status == 409


def test_draft_4_add_of_an_existing_value_conflicts(make_image: MakeImage) -> None:
    image = make_image(properties={"a": "1"})
    with pytest.raises(errors.Conflict, match="already present"):
        _apply(image, {"add": "/a", "value": "2"}, draft4=True)
    with pytest.raises(errors.Conflict, match="already present"):
        _apply(image, {"add": "/name", "value": "2"}, draft4=True)
    assert _apply(image, {"add": "/b", "value": "2"}, draft4=True) == {
        "properties": {"a": "1", "b": "2"}
    }
    assert _apply(image, {"replace": "/name", "value": "n"}, draft4=True) == {"name": "n"}


@pytest.mark.parametrize(
    "attribute",
    ["name", "visibility", "protected", "os_hidden", "owner", "disk_format",
     "container_format", "min_ram", "min_disk"],
)  # fmt: skip
def test_base_attributes_cannot_be_removed(make_image: MakeImage, attribute: str) -> None:
    with pytest.raises(errors.Forbidden, match=f"Property {attribute} may not be removed"):
        _apply(make_image(), {"op": "remove", "path": f"/{attribute}"}, is_admin=True)


def test_public_needs_an_admin(make_image: MakeImage) -> None:
    image = make_image(owner="t1")
    for op in ("add", "replace"):
        with pytest.raises(errors.Forbidden, match="public"):
            _apply(image, {"op": op, "path": "/visibility", "value": "public"})
    assert _apply(image, {"op": "replace", "path": "/visibility", "value": "public"},
                  is_admin=True) == {"visibility": model.Visibility.PUBLIC}  # fmt: skip
    assert _apply(image, {"op": "replace", "path": "/visibility", "value": "community"}) == {
        "visibility": model.Visibility.COMMUNITY
    }


def test_owner_changes_need_an_admin(make_image: MakeImage) -> None:
    image = make_image(owner="t1")
    for op in ("add", "replace"):  # Glance refuses replace only; add changed it too
        with pytest.raises(errors.Forbidden, match="Owner"):
            _apply(image, {"op": op, "path": "/owner", "value": "t2"})
    assert _apply(image, {"op": "replace", "path": "/owner", "value": "t2"}, is_admin=True) == {
        "owner": "t2"
    }


@pytest.mark.parametrize(
    "status", ["active", "saving", "uploading", "importing", "deactivated", "killed"]
)
def test_formats_change_only_while_queued(make_image: MakeImage, status: str) -> None:
    """Glance allows importing too; Tank does not (see tank.service.check_format_change)."""
    image = make_image(status=status, disk_format="raw", container_format="bare")
    for attribute, value in (("disk_format", "qcow2"), ("container_format", "ovf")):
        with pytest.raises(errors.Forbidden, match=f"{attribute} can be only replaced.*{status}"):
            _apply(image, {"op": "replace", "path": f"/{attribute}", "value": value}, is_admin=True)
    queued = make_image(status="queued", disk_format="raw", container_format="bare")
    assert _apply(queued, {"op": "replace", "path": "/disk_format", "value": "qcow2"}) == {
        "disk_format": "qcow2"
    }


def test_negative_minimums_are_400(make_image: MakeImage) -> None:
    for attribute in ("min_ram", "min_disk"):
        with pytest.raises(errors.ValidationError, match=f"{attribute}: cannot be a negative"):
            _apply(make_image(), {"op": "replace", "path": f"/{attribute}", "value": -1})


def test_model_rules_apply_to_the_result(make_image: MakeImage) -> None:
    with pytest.raises(errors.ValidationError, match="min_ram"):
        _apply(make_image(), {"op": "replace", "path": "/min_ram", "value": 2**63})
    with pytest.raises(errors.ValidationError, match=r"properties\.big"):
        _apply(make_image(), {"op": "add", "path": "/big", "value": "x" * 65536})
    with pytest.raises(errors.ValidationError, match="255"):
        _apply(make_image(), {"op": "add", "path": "/" + "k" * 256, "value": "x"})


def test_null_unsets_a_nullable_property(make_image: MakeImage) -> None:
    kernel = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    image = make_image(properties={"kernel_id": kernel, "a": "1"})
    assert _apply(image, {"op": "replace", "path": "/kernel_id", "value": None}) == {
        "properties": {"a": "1"}
    }
    assert _apply(image, {"op": "add", "path": "/ramdisk_id", "value": None}) == {
        "properties": {"kernel_id": kernel, "a": "1"}
    }


def test_a_failing_op_anywhere_produces_nothing(make_image: MakeImage) -> None:
    image = make_image(name="old", properties={"a": "1"})
    good: list[dict[str, Any]] = [
        {"op": "replace", "path": "/name", "value": "new"},
        {"op": "remove", "path": "/a"},
        {"op": "add", "path": "/tags", "value": ["x"]},
    ]
    failing: list[tuple[dict[str, Any], type[errors.TankError]]] = [
        ({"op": "remove", "path": "/missing"}, errors.Conflict),
        ({"op": "replace", "path": "/owner", "value": "t2"}, errors.Forbidden),
        ({"op": "replace", "path": "/min_ram", "value": -5}, errors.ValidationError),
        ({"op": "add", "path": "/locations/-", "value": {"url": "u", "metadata": {}}},
         errors.Forbidden),
    ]  # fmt: skip
    for bad, error in failing:
        for position in range(len(good) + 1):
            raw = [*good[:position], bad, *good[position:]]
            with pytest.raises(error):
                _apply(image, *raw)
    assert image.name == "old" and image.properties == {"a": "1"}


def test_empty_patch_changes_nothing(make_image: MakeImage) -> None:
    assert _apply(make_image()) == {}


def test_locations_ops_are_refused_or_handed_to_the_caller(make_image: MakeImage) -> None:
    ops = _ops(
        {"op": "replace", "path": "/name", "value": "n"},
        {"op": "add", "path": "/locations/-", "value": {"url": "rbd://a/b/c/d", "metadata": {}}},
        {"op": "remove", "path": "/locations/0"},
        {"op": "replace", "path": "/locations", "value": []},
    )
    with pytest.raises(errors.Forbidden, match="locations"):
        apply_patch(make_image(), ops, is_admin=True)
    plain, locations = split_locations(ops)
    assert [op.root for op in plain] == ["name"]
    assert [(op.op, op.path) for op in locations] == [
        ("add", ("locations", "-")),
        ("remove", ("locations", "0")),
        ("replace", ("locations",)),
    ]
    assert apply_patch(make_image(), plain, is_admin=False) == {"name": "n"}


def test_tanks_own_properties_are_kept_as_they_are(make_image: MakeImage) -> None:
    """The whole properties dict comes back, with Tank's import state untouched."""
    image = make_image(properties={"os_glance_failed_import": "s3", "a": "1"})
    assert _apply(image, {"op": "add", "path": "/b", "value": "2"}) == {
        "properties": {"os_glance_failed_import": "s3", "a": "1", "b": "2"}
    }


def test_openstacksdk_update_patch_applies(make_image: MakeImage) -> None:
    """The patch `conn.image.update_image(image, ...)` sends (Resource.commit) applies.

    Setting ``tags`` that way makes the SDK send ``/tags/<n>`` pointers, which Glance
    answers 400 (Glance patches ``/tags`` whole); Tank does too. ``conn.image.add_tag``
    (PUT /v2/images/<id>/tags/<tag>) is the SDK's way, and what ``openstack image set
    --tag`` uses.
    """
    sdk_image = pytest.importorskip(
        "openstack.image.v2.image", reason="openstacksdk is in tank-core[testing]"
    )
    from tank.api.v2 import views

    image = make_image(name="old", tags=["a"], properties={"hw_disk_bus": "ide"})
    view = views.image_json(image)
    view.pop("self")  # as for warlock: Resource.__init__ takes self
    resource = sdk_image.Image.existing(**view)
    resource.name = "new"
    resource.is_protected = True
    resource.is_hidden = True
    resource.min_ram = 256
    resource.hw_disk_bus = "scsi"
    resource.os_distro = "debian"
    request = resource._prepare_request(patch=True)  # what commit() sends
    assert request.headers["Content-Type"] == PATCH_V2_1
    ops = parse_patch(request.body, request.headers["Content-Type"])
    assert apply_patch(image, ops, is_admin=False) == {
        "name": "new",
        "protected": True,
        "os_hidden": True,
        "min_ram": 256,
        "properties": {"hw_disk_bus": "scsi", "os_distro": "debian"},
    }
    resource.tags = ["a", "b"]
    with pytest.raises(errors.ValidationError, match="/tags/1"):
        parse_patch(resource._prepare_request(patch=True).body, PATCH_V2_1)
