"""Listing images: filters, sorting and pagination as openstacksdk and python-glanceclient
drive them (each test lists only the images carrying its own tag)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import openstack.connection
import pytest

from .conftest import Http


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex


def upload(http: Http, image_id: str, data: bytes) -> None:
    resp = http(
        "PUT",
        f"/v2/images/{image_id}/file",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204, resp.text


def pages(http: Http, query: str) -> list[list[dict[str, Any]]]:
    """Every page of ``GET /v2/images?query``, following ``next`` as clients do."""
    found: list[list[dict[str, Any]]] = []
    path: str | None = f"/v2/images?{query}"
    while path is not None:
        resp = http("GET", path)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        found.append(body["images"])
        assert body["first"].startswith("/v2/images")
        assert body["schema"] == "/v2/schemas/images"
        path = body.get("next")
        assert len(found) < 50, "next never ends"
    return found


def test_pagination_through_the_clients_generators(
    http_a: Http, sdk_a: openstack.connection.Connection, glance_a: Any, tag: str
) -> None:
    names = [f"{tag}-{i:02d}" for i in range(30)]
    created = {http_a.create(name=n, tags=[tag])["id"]: n for n in reversed(names)}

    sizes = [len(page) for page in pages(http_a, f"tag={tag}&limit=7&sort=name:asc")]
    assert sizes == [7, 7, 7, 7, 2]

    via_sdk = list(sdk_a.image.images(tag=tag, limit=7, sort="name:asc"))
    assert [i.name for i in via_sdk] == names
    assert {i.id for i in via_sdk} == set(created)

    via_gc = list(glance_a.images.list(filters={"tag": [tag]}, page_size=7, sort="name:asc"))
    assert [i.name for i in via_gc] == names

    first_ten = list(glance_a.images.list(filters={"tag": [tag]}, page_size=7, limit=10))
    assert len(first_ten) == 10 and len({i.id for i in first_ten}) == 10


def test_keyset_pages_match_the_whole_listing_under_several_sort_keys(
    http_a: Http, tag: str
) -> None:
    """Paging with a marker under a two-key sort (ties on the first key) gives the same
    order as one big page: nothing skipped, nothing twice."""
    for i in range(12):
        http_a.create(name=f"{tag}-{i % 4}", tags=[tag], min_ram=i * 64)
    query = f"tag={tag}&sort=name:asc,min_ram:desc"
    whole = [i["id"] for page in pages(http_a, query + "&limit=100") for i in page]
    paged = [i["id"] for page in pages(http_a, query + "&limit=5") for i in page]
    assert len(whole) == 12
    assert paged == whole


def test_sorting(
    http_a: Http, sdk_a: openstack.connection.Connection, glance_a: Any, tag: str
) -> None:
    """python-glanceclient only lets the keys of its schema through (not min_ram), so
    the second key here is the size."""
    specs = [("b", 12), ("a", 50), ("c", 25), ("a", 6), ("b", 100)]
    for n, size in specs:
        image = http_a.create(name=f"{tag}-{n}", tags=[tag])
        upload(http_a, image["id"], b"x" * size)

    got = list(glance_a.images.list(filters={"tag": [tag]}, sort="name:asc,size:desc"))
    assert [(i.name[-1], i.size) for i in got] == sorted(specs, key=lambda s: (s[0], -s[1]))

    got = list(
        glance_a.images.list(
            filters={"tag": [tag]}, sort_key=["name", "size"], sort_dir=["desc", "asc"]
        )
    )
    assert [(i.name[-1], i.size) for i in got] == [
        ("c", 25),
        ("b", 12),
        ("b", 100),
        ("a", 6),
        ("a", 50),
    ]

    by_sdk = list(sdk_a.image.images(tag=tag, sort_key="size", sort_dir="desc"))
    assert [i.size for i in by_sdk] == [100, 50, 25, 12, 6]

    # what users ask for most: by name, the newest first among equal names
    rows = list(sdk_a.image.images(tag=tag, sort="name:asc,created_at:desc"))
    assert sorted(i.name for i in rows) == [i.name for i in rows]
    for before, after in itertools.pairwise(rows):
        if before.name == after.name:
            assert before.created_at >= after.created_at, (before, after)


def test_filters(
    http_a: Http,
    http_admin: Http,
    sdk_a: openstack.connection.Connection,
    sdk_b: openstack.connection.Connection,
    glance_a: Any,
    tag: str,
) -> None:
    alpha = http_a.create(
        name=f"{tag}-alpha",
        disk_format="qcow2",
        container_format="ovf",  # 10 bytes in a bare qcow2 would be refused as raw data
        tags=[tag, "x"],
        colour="red",
    )
    upload(http_a, alpha["id"], b"0123456789")
    beta = http_a.create(name=f"{tag}-beta", tags=[tag], colour="blue")
    gamma = http_a.create(name=f"{tag}-gamma", tags=[tag, "x"], visibility="private")
    delta = http_a.create(name=f"{tag}-delta", tags=[tag], visibility="community")
    hidden = http_a.create(name=f"{tag}-hidden", tags=[tag], os_hidden=True)
    public = http_admin.create(name=f"{tag}-public", tags=[tag], visibility="public")

    def names(images: Any) -> set[str]:
        return {i.name.removeprefix(f"{tag}-") for i in images}

    # the owner's default listing: its own (community ones too), public; not hidden ones
    assert names(sdk_a.image.images(tag=tag)) == {"alpha", "beta", "gamma", "delta", "public"}
    # another tenant: public only; community images only when asked for
    assert names(sdk_b.image.images(tag=tag)) == {"public"}
    assert names(sdk_b.image.images(tag=tag, visibility="community")) == {"delta"}
    assert names(sdk_a.image.images(tag=tag, is_hidden=True)) == {"hidden"}

    assert names(sdk_a.image.images(name=alpha["name"])) == {"alpha"}
    assert names(sdk_a.image.images(tag=tag, status="active")) == {"alpha"}
    assert names(sdk_a.image.images(tag=[tag, "x"])) == {"alpha", "gamma"}
    assert names(sdk_a.image.images(tag=tag, visibility="private")) == {"gamma"}
    assert names(sdk_a.image.images(tag=tag, visibility="public")) == {"public"}
    assert names(sdk_a.image.images(tag=tag, size_min=5, size_max=10)) == {"alpha"}
    assert names(sdk_a.image.images(tag=tag, owner=public["owner"])) == {"public"}
    assert names(sdk_a.image.images(name=f"in:{alpha['name']},{beta['name']}")) == {
        "alpha",
        "beta",
    }
    assert names(sdk_a.image.images(id=f"in:{gamma['id']},{delta['id']}")) == {"gamma", "delta"}
    assert names(sdk_a.image.images(created_at="lt:2000-01-01T00:00:00Z", tag=tag)) == set()
    assert "alpha" in names(sdk_a.image.images(created_at="gte:2000-01-01T00:00:00Z", tag=tag))

    via_gc = glance_a.images.list(filters={"tag": [tag], "colour": "red"})
    assert {i.id for i in via_gc} == {alpha["id"]}
    via_gc = glance_a.images.list(filters={"tag": [tag], "disk_format": "in:qcow2,vhd"})
    assert {i.id for i in via_gc} == {alpha["id"]}
    assert hidden["id"] not in {i.id for i in glance_a.images.list(filters={"tag": [tag]})}
