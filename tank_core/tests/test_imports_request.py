"""The import request: parsing its body and checking it as Glance 33 does."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest

from tank import errors
from tank.api.v2.imports import parse_import
from tank.imports.request import (
    ImportRequest,
    check_image,
    check_method,
    target_stores,
)
from tank.imports.state import lease_expired
from tank.model import Context, Image, Location, Status
from tank.store import Capability
from tank.stores import StoreSet

from .conftest import MemoryBackend, MemoryConfig

OWNER = Context(tenant="t1", roles=frozenset({"member"}))
ADMIN = Context(tenant="ops", is_admin=True)


class ReadOnly(MemoryBackend):
    type_name = "ro"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.READ})


@pytest.fixture
def stores() -> StoreSet:
    return StoreSet(
        {
            "a": MemoryBackend(MemoryConfig(), name="a"),
            "b": MemoryBackend(MemoryConfig(), name="b"),
            "web": ReadOnly(MemoryConfig(), name="web"),
        },
        "a",
    )


def image(status: Status = Status.QUEUED, *stores: str, **fields: Any) -> Image:
    fields.setdefault("disk_format", "raw")
    fields.setdefault("container_format", "bare")
    return Image(
        id="6f1c9a52-0000-4000-8000-000000000001",
        owner="t1",
        status=status,
        locations=tuple(Location(url=f"memory://{s}", store=s) for s in stores),
        **fields,
    )


def test_parse_import_reads_glance_bodies() -> None:
    parsed = parse_import(
        {
            "method": {"name": "web-download", "uri": "https://example.com/x.img"},
            "stores": ["a", "b"],
            "all_stores_must_succeed": False,
        }
    )
    assert parsed == ImportRequest(
        method="web-download",
        uri="https://example.com/x.img",
        stores=("a", "b"),
        all_stores_must_succeed=False,
    )
    assert parse_import({"method": {"name": "glance-direct"}}, "b").stores == ("b",)


@pytest.mark.parametrize(
    "body,header,fragment",
    [
        (None, None, "JSON object"),
        ({}, None, "'method' object"),
        ({"method": {}}, None, r"method\.name"),
        ({"method": {"name": 3}}, None, r"method\.name"),
        ({"method": {"name": "web-download", "uri": 3}}, None, r"method\.uri"),
        ({"method": {"name": "x"}, "all_stores": "yes"}, None, "'all_stores' must be"),
        ({"method": {"name": "x"}, "stores": "a"}, None, "list of store names"),
        ({"method": {"name": "x"}, "stores": ["a"]}, "a", "x-image-meta-store"),
        ({"method": {"name": "x"}, "all_stores": True}, "a", "x-image-meta-store"),
    ],
)
def test_parse_import_refuses(body: Any, header: str | None, fragment: str) -> None:
    with pytest.raises(errors.Invalid, match=fragment):
        parse_import(body, header)


def test_only_enabled_methods() -> None:
    with pytest.raises(errors.Invalid, match="offers web-download, copy-image"):
        check_method(ImportRequest(method="glance-direct"), ("web-download", "copy-image"))
    with pytest.raises(errors.Invalid, match=r"method\.uri"):
        check_method(ImportRequest(method="web-download"), ("web-download",))


@pytest.mark.parametrize(
    "method,status,ok",
    [
        ("glance-direct", Status.UPLOADING, True),
        ("glance-direct", Status.QUEUED, False),
        ("web-download", Status.QUEUED, True),
        ("web-download", Status.UPLOADING, False),
        ("web-download", Status.ACTIVE, False),
        ("copy-image", Status.ACTIVE, True),
        ("copy-image", Status.QUEUED, False),
        ("copy-image", Status.DEACTIVATED, False),
    ],
)
def test_each_method_needs_its_status(method: str, status: Status, ok: bool) -> None:
    request = ImportRequest(method=method, uri="http://x/")
    if ok:
        check_image(request, image(status), ADMIN)
    else:
        with pytest.raises(errors.Conflict):
            check_image(request, image(status), ADMIN)


def test_who_may_import() -> None:
    copy = ImportRequest(method="copy-image")
    with pytest.raises(errors.Forbidden, match="only an admin"):
        check_image(copy, image(Status.ACTIVE, "a"), OWNER)  # Glance 33: admin only
    check_image(ImportRequest(method="web-download", uri="http://x/"), image(), OWNER)
    other = Context(tenant="t2")
    with pytest.raises(errors.Forbidden):
        check_image(ImportRequest(method="web-download", uri="http://x/"), image(), other)
    with pytest.raises(errors.Conflict, match="disk_format"):
        check_image(ImportRequest(method="web-download"), image(disk_format=None), OWNER)


def test_target_stores(stores: StoreSet) -> None:
    web = ImportRequest(method="web-download", uri="http://x/")
    assert target_stores(web, image(), stores) == ["a"]  # the default
    many = ImportRequest(method="web-download", uri="http://x/", stores=("b", "a", "b"))
    assert target_stores(many, image(), stores) == ["b", "a"]
    everywhere = ImportRequest(method="web-download", uri="http://x/", all_stores=True)
    assert target_stores(everywhere, image(), stores) == ["a", "b"]  # not read-only ones
    for name, fragment in (("nope", "unknown store"), ("web", "read-only")):
        bad = ImportRequest(method="web-download", uri="http://x/", stores=(name,))
        with pytest.raises(errors.Conflict, match=fragment):
            target_stores(bad, image(), stores)


def test_copy_image_stores(stores: StoreSet) -> None:
    active = image(Status.ACTIVE, "a")
    copy_all = ImportRequest(method="copy-image", all_stores=True)
    assert target_stores(copy_all, active, stores) == ["b"]
    assert target_stores(copy_all, image(Status.ACTIVE, "a", "b"), stores) == []
    with pytest.raises(errors.Invalid, match="already in store 'a'"):
        target_stores(ImportRequest(method="copy-image", stores=("a",)), active, stores)


def test_lease() -> None:
    assert lease_expired({}, 60)
    assert lease_expired({"os_glance_import_heartbeat": "soon"}, 60)
    assert not lease_expired({"os_glance_import_heartbeat": f"{time.time():.3f}"}, 60)
    assert lease_expired({"os_glance_import_heartbeat": f"{time.time() - 61:.3f}"}, 60)
