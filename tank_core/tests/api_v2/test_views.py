"""Images and members as v2 shows them (Glance 33's bodies)."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable

from tank import model
from tank.api.v2 import views

IMAGE_ID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


def test_queued_image_shows_every_base_attribute(make_image: Callable[..., model.Image]) -> None:
    image = make_image(id=IMAGE_ID, name="cirros", owner="tenant-a")
    assert views.image_json(image) == {
        "name": "cirros",
        "disk_format": None,
        "container_format": None,
        "visibility": "shared",
        "size": None,
        "virtual_size": None,
        "status": "queued",
        "checksum": None,
        "protected": False,
        "min_ram": 0,
        "min_disk": 0,
        "owner": "tenant-a",
        "os_hidden": False,
        "os_hash_algo": None,
        "os_hash_value": None,
        "id": IMAGE_ID,
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
        "tags": [],
        "self": f"/v2/images/{IMAGE_ID}",
        "file": f"/v2/images/{IMAGE_ID}/file",
        "schema": "/v2/schemas/image",
    }


def test_active_image_with_data_in_two_stores(make_image: Callable[..., model.Image]) -> None:
    image = make_image(
        id=IMAGE_ID,
        status="active",
        disk_format="raw",
        container_format="bare",
        size=10,
        virtual_size=10,
        checksum="A" * 32,
        os_hash_algo="sha256",
        os_hash_value="b" * 64,
        visibility="public",
        tags=["z", "a", "z"],
        locations=[("file:///data/x", "fast"), ("s3://bucket/x", "slow")],
    )
    view = views.image_json(image)
    assert view["stores"] == "fast,slow"
    assert view["checksum"] == "a" * 32
    assert (view["os_hash_algo"], view["os_hash_value"]) == ("sha256", "b" * 64)
    assert (view["size"], view["virtual_size"]) == (10, 10)
    assert view["visibility"] == "public" and view["status"] == "active"
    assert view["tags"] == ["a", "z"]
    assert "locations" not in view and "direct_url" not in view
    json.dumps(view)  # every value is plain JSON


def test_direct_url_and_locations_only_when_the_caller_passes_them(
    make_image: Callable[..., model.Image],
) -> None:
    image = make_image(status="active", locations=[("rbd://fsid/pool/img/snap", "ceph")])
    locs = [{"url": "rbd://fsid/pool/img/snap", "metadata": {"store": "ceph"}}]
    view = views.image_json(image, show_direct_url="rbd://fsid/pool/img/snap", locations=locs)
    assert view["direct_url"] == "rbd://fsid/pool/img/snap"
    assert view["locations"] == locs
    assert view["locations"] is not locs
    assert views.image_json(make_image(), locations=[])["locations"] == []


def test_extra_properties_are_top_level_strings(make_image: Callable[..., model.Image]) -> None:
    image = make_image(
        properties={
            "os_distro": "debian",
            "hw_disk_bus": "scsi",
            "os_glance_import_task": "task-1",
            "os_glance_failed_import": "s3",
            "os_glance_stage_host": "http://worker-2:9292",
            "os_glance_hash_op_host": "http://worker-3:9292",
        }
    )
    view = views.image_json(image)
    assert view["os_distro"] == "debian" and view["hw_disk_bus"] == "scsi"
    # import state is shown as Glance shows it; the worker-routing hosts are not
    assert view["os_glance_import_task"] == "task-1"
    assert view["os_glance_failed_import"] == "s3"
    assert "os_glance_stage_host" not in view and "os_glance_hash_op_host" not in view


def test_properties_named_like_attributes_never_shadow_them(
    make_image: Callable[..., model.Image],
) -> None:
    """A v1 client could set properties named size, stores or direct_url."""
    image = make_image(properties={"size": "huge", "stores": "elsewhere", "direct_url": "x"})
    view = views.image_json(image)
    assert view["size"] is None
    assert "stores" not in view and "direct_url" not in view


def test_timestamps_are_utc_whole_seconds_with_z(make_image: Callable[..., model.Image]) -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    image = make_image(
        created_at=dt.datetime(2024, 5, 1, 12, 0, 0, 999_999, tzinfo=plus2),
        updated_at=dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    )
    view = views.image_json(image)
    assert view["created_at"] == "2024-05-01T10:00:00Z"
    assert view["updated_at"] == "2024-12-31T23:59:59Z"


def test_collection_links_keep_repeated_parameters_and_replace_the_marker() -> None:
    params = [("tag", "a"), ("tag", "b"), ("marker", "old"), ("sort_key", "name"), ("limit", "2")]
    first, next_ = views.collection_links(params, "m-2")
    assert first == "/v2/images?tag=a&tag=b&sort_key=name&limit=2"
    assert next_ == "/v2/images?tag=a&tag=b&sort_key=name&limit=2&marker=m-2"
    assert views.collection_links([], None) == ("/v2/images", None)
    assert views.collection_links([("marker", "x")], "y") == ("/v2/images", "/v2/images?marker=y")
    first, _ = views.collection_links([("name", "a b&c")], None)
    assert first == "/v2/images?name=a+b%26c"


def test_images_listing(make_image: Callable[..., model.Image]) -> None:
    images = [make_image(name="a"), make_image(name="b")]
    body = views.images_json(images, first_url="/v2/images?limit=2")
    assert body == {
        "images": [views.image_json(i) for i in images],
        "first": "/v2/images?limit=2",
        "schema": "/v2/schemas/images",
    }
    paged = views.images_json(images, next_url="/v2/images?marker=x")
    assert paged["next"] == "/v2/images?marker=x" and paged["first"] == "/v2/images"
    shown = functools.partial(views.image_json, show_direct_url="file:///x")
    assert views.images_json(images, image_view=shown)["images"][0]["direct_url"] == "file:///x"
    assert views.images_json([]) == {
        "images": [],
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }


def test_members() -> None:
    member = model.Member(
        image_id=IMAGE_ID,
        member="tenant-b",
        status="accepted",
        created_at=dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC),
        updated_at=dt.datetime(2024, 5, 2, 10, 0, tzinfo=dt.UTC),
    )
    expected = {
        "member_id": "tenant-b",
        "image_id": IMAGE_ID,
        "status": "accepted",
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-02T10:00:00Z",
        "schema": "/v2/schemas/member",
    }
    assert views.member_json(member) == expected
    assert views.members_json([member]) == {"members": [expected], "schema": "/v2/schemas/members"}
    assert views.members_json([]) == {"members": [], "schema": "/v2/schemas/members"}


def test_locations_as_glance_lists_them(make_image: Callable[..., model.Image]) -> None:
    image = make_image(
        status="active",
        locations=[
            model.Location(url="rbd://fsid/pool/img/snap", store="ceph", metadata={"k": 1}),
            model.Location(url="http://example.com/x.img", store=None, owned=False),
        ],
    )
    assert views.locations_json(image) == [
        {"url": "rbd://fsid/pool/img/snap", "metadata": {"k": 1, "store": "ceph"}},
        {"url": "http://example.com/x.img", "metadata": {}},
    ]
    assert views.locations_json(make_image()) == []
