"""The client's v2 wire format without a server: what it sends and how it reads answers."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest

from tank.client.wire_v2 import image_body, image_from_v2, list_params, patch_ops, stores_from_v2
from tank.errors import ValidationError
from tank.model import Image, Visibility

IMAGE_ID = "1bea47ed-f6a9-463b-b423-14b9cca9ad27"


def test_a_glance_view_splits_into_attributes_and_properties() -> None:
    view = {
        "id": IMAGE_ID,
        "status": "active",
        "visibility": "community",
        "tags": ["b", "a"],
        "os_hidden": False,
        "size": 13167616,
        "virtual_size": None,
        "checksum": "64d7c1cd2b6f60c92c14662941cb7913",
        "os_hash_algo": "sha512",
        "os_hash_value": "07" * 64,
        "created_at": "2014-05-05T17:15:10Z",
        "self": f"/v2/images/{IMAGE_ID}",
        "file": f"/v2/images/{IMAGE_ID}/file",
        "schema": "/v2/schemas/image",
        "stores": "fast,slow",
        "os_distro": "cirros",
        "hw_numa": 2,
        "locations": [{"url": "file:///x", "metadata": {"store": "fast"}}],
    }
    image = image_from_v2(view)
    assert image.visibility is Visibility.COMMUNITY and image.tags == ("a", "b")
    assert image.properties == {"os_distro": "cirros", "hw_numa": "2"}
    assert image.created_at == dt.datetime(2014, 5, 5, 17, 15, 10, tzinfo=dt.UTC)
    assert (image.location, image.store) == ("file:///x", "fast")
    assert stores_from_v2(view) == ("fast", "slow")
    assert stores_from_v2({"id": IMAGE_ID}) == ()


def test_create_body_maps_v1_fields_and_refuses_bad_ones() -> None:
    body = image_body(
        {"name": "x", "is_public": "true", "min_ram": "64", "protected": "false",
         "tags": ["b", "a", "b"], "properties": {"os": "linux", "flag": True}}
    )  # fmt: skip
    assert body == {
        "name": "x",
        "visibility": "public",
        "min_ram": 64,
        "protected": False,
        "tags": ["a", "b"],
        "os": "linux",
        "flag": "true",
    }
    assert image_body({"is_public": False})["visibility"] == "shared"
    with pytest.raises(ValidationError, match="size"):
        image_body({"properties": {"size": "1"}})  # an attribute in v2, not a property
    with pytest.raises(ValidationError, match="status"):
        image_body({"status": "active"})
    with pytest.raises(ValidationError, match="min_ram"):
        image_body({"min_ram": "lots"})


def test_patch_escapes_pointers_and_purges_only_user_properties() -> None:
    current = Image(
        id=IMAGE_ID, properties={"keep/me": "1", "old": "2", "os_glance_import_task": "t"}
    )
    ops = patch_ops({"name": "n", "properties": {"keep/me": "3", "a~b": "4"}}, current)
    assert ops == [
        {"op": "replace", "path": "/name", "value": "n"},
        {"op": "add", "path": "/keep~1me", "value": "3"},
        {"op": "add", "path": "/a~0b", "value": "4"},
        {"op": "remove", "path": "/old"},
    ]
    assert patch_ops({"tags": ["z"]}, None) == [{"op": "replace", "path": "/tags", "value": ["z"]}]
    with pytest.raises(ValidationError):
        patch_ops({"id": IMAGE_ID}, None)


def test_list_params_speak_glance() -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    params = list_params(
        {
            "name": ("a,b", 'say "hi"', "c"),
            "tags": ["t1", "t2"],
            "property-os": "linux",
            "properties": {"arch": "x86_64"},
            "created_at": [("gte", when)],
            "os_hidden": True,
            "is_public": None,
        },
        None,
        None,
        [("name", "asc"), ("size", "desc")],
        10,
        IMAGE_ID,
    )
    assert params == [
        ("name", 'in:"a,b","say \\"hi\\"",c'),
        ("tag", "t1"),
        ("tag", "t2"),
        ("os", "linux"),
        ("arch", "x86_64"),
        ("created_at", "gte:2026-01-01T00:00:00+00:00"),
        ("os_hidden", "true"),
        ("visibility", "all"),
        ("sort", "name:asc,size:desc"),
        ("limit", "10"),
        ("marker", IMAGE_ID),
    ]
    assert "tag=t1&tag=t2" in urllib.parse.urlencode(params)
    with pytest.raises(ValidationError):
        list_params({"is_public": False}, None, None, None, None, None)
    with pytest.raises(ValidationError):
        list_params(None, "name", None, [("size", "asc")], None, None)
