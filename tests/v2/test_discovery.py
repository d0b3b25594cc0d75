"""How clients find the v2 API and what it offers: the versions document keystoneauth
discovers from, the import methods and the stores."""

from __future__ import annotations

from typing import Any

import openstack.connection
import requests

from tank.testing.api_server import ApiServer

from .conftest import Http


def test_versions_document_lists_v2_current_then_v1(tank_v2: ApiServer) -> None:
    """Glance answers ``/`` and ``/versions`` before authentication (its version
    negotiation sits in front of auth_token), with ``self`` links on the caller's host."""
    for path in ("/", "/versions"):
        resp = requests.get(tank_v2.url + path, timeout=10)
        assert resp.status_code == 300, (path, resp.status_code, resp.text)
        versions = resp.json()["versions"]
        ids = [v["id"] for v in versions]
        major, minor = ids[0].removeprefix("v").split(".")
        assert (major, versions[0]["status"]) == ("2", "CURRENT"), versions[0]
        assert int(minor) >= 16, ids  # image import, multi-store, copy-image
        assert {"v2.0", "v1.0", "v1.1"} <= set(ids)
        for version in versions:
            major = version["id"].split(".")[0]
            links = [link["href"] for link in version["links"] if link["rel"] == "self"]
            assert links == [f"{tank_v2.url}/{major}/"], version


def test_versions_links_follow_the_host_the_client_used(tank_v2: ApiServer) -> None:
    """Behind a proxy or a DNS name the links must name that host, or discovery sends
    the client to an address it cannot reach."""
    resp = requests.get(tank_v2.url + "/", headers={"Host": "images.example:9292"}, timeout=10)
    assert resp.status_code == 300
    v2 = resp.json()["versions"][0]
    assert v2["links"] == [{"rel": "self", "href": "http://images.example:9292/v2/"}]


def test_openstacksdk_discovers_v2_from_the_root(sdk_a: openstack.connection.Connection) -> None:
    """Given the bare ``http://host:port``: keystoneauth reads ``GET /`` and picks v2."""
    data = sdk_a.image.get_endpoint_data()
    assert data is not None
    assert data.api_version is not None and data.api_version[0] == 2
    assert sdk_a.image.get_endpoint().rstrip("/").endswith("/v2")
    assert isinstance(list(sdk_a.image.images(limit=1)), list)


def test_openstacksdk_discovers_v2_from_a_versioned_url(
    sdk_b: openstack.connection.Connection, tank_v2: ApiServer
) -> None:
    """Given ``http://host:port/v2`` (what a catalog usually holds)."""
    data = sdk_b.image.get_endpoint_data()
    assert data is not None
    assert data.api_version is not None and data.api_version[0] == 2
    assert sdk_b.image.get_endpoint().rstrip("/") == tank_v2.url + "/v2"
    assert isinstance(list(sdk_b.image.images(limit=1)), list)


def test_import_methods_and_stores_are_discoverable(
    glance_a: Any, sdk_a: openstack.connection.Connection
) -> None:
    info = glance_a.images.get_import_info()
    assert {"glance-direct", "web-download", "copy-image"} <= set(info["import-methods"]["value"])
    stores = glance_a.images.get_stores_info()["stores"]
    assert [s["id"] for s in stores] == ["fast", "slow"]
    assert [s.get("default", False) for s in stores] == [True, False]
    assert {(s.id, bool(s.is_default)) for s in sdk_a.image.stores()} == {
        ("fast", True),
        ("slow", False),
    }


def test_create_answers_with_the_import_and_store_headers(http_a: Http) -> None:
    """openstacksdk decides between upload and import from these headers."""
    resp = http_a("POST", "/v2/images", json={"name": "headers", "disk_format": "raw"})
    assert resp.status_code == 201, resp.text
    methods = resp.headers["OpenStack-image-import-methods"].split(",")
    assert {"glance-direct", "web-download", "copy-image"} <= set(methods)
    assert resp.headers["OpenStack-image-store-ids"].split(",") == ["fast", "slow"]
    assert http_a("DELETE", f"/v2/images/{resp.json()['id']}").status_code == 204


def test_schemas_are_served(http_a: Http) -> None:
    """python-glanceclient builds its models from these."""
    for name, title in (
        ("image", "image"),
        ("images", "images"),
        ("member", "member"),
        ("members", "members"),
    ):
        resp = http_a("GET", f"/v2/schemas/{name}")
        assert resp.status_code == 200, (name, resp.text)
        assert resp.json()["name"] == title
