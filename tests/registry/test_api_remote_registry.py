"""``tank-api --registry-url`` in front of a ``tank-registry`` process (each with its own
data dir, both on free loopback ports): the Images API works as with its registry
in-process, registry errors reach API clients unchanged, and a registry that is gone
is a 503 naming it."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.testing.api_server import ApiServer

RAW = {"x-image-meta-disk_format": "raw", "x-image-meta-container_format": "bare"}


@pytest.fixture
def pair(start_registry: Callable[..., Any], tmp_path: Path) -> Iterator[tuple[ApiServer, Any]]:
    registry = start_registry()
    api = ApiServer(
        tmp_path / "api-data", tmp_path / "tank-api.log", ["--registry-url", registry.url]
    )
    yield api, registry
    api.stop()
    assert "unexpected error" not in api.log(), api.log()
    registry.check_log()


def test_full_flow_through_a_remote_registry(pair: tuple[ApiServer, Any]) -> None:
    api, registry = pair
    data = os.urandom((1 << 20) + 3)
    created = requests.post(
        api.url + "/v1/images",
        data=data,
        headers={**RAW, "x-image-meta-name": "remote", "x-image-meta-property-os": "linux"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    image = created.json()["image"]
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    url = f"{api.url}/v1/images/{image['id']}"
    # The registry has it: the API holds no metadata of its own.
    in_registry = requests.get(
        f"{registry.url}/images/{image['id']}", headers={"X-Is-Admin": "true"}, timeout=5
    ).json()["image"]
    assert in_registry["status"] == "active" and in_registry["size"] == len(data)
    got = requests.get(url, timeout=30)
    assert got.content == data and got.headers["x-image-meta-property-os"] == "linux"
    updated = requests.put(url, headers={"x-image-meta-name": "renamed"}, timeout=5)
    assert updated.status_code == 200 and updated.json()["image"]["name"] == "renamed"
    listed = requests.get(api.url + "/v1/images/detail", params={"name": "renamed"}, timeout=5)
    assert [i["id"] for i in listed.json()["images"]] == [image["id"]]
    assert requests.put(url + "/members/tenant-b", timeout=5).status_code == 204
    members = requests.get(url + "/members", timeout=5).json()["members"]
    assert [m["member_id"] for m in members] == ["tenant-b"]
    assert requests.delete(url, timeout=5).status_code == 200
    assert requests.get(url, timeout=5).status_code == 404
    assert list((api.data_dir / "images").iterdir()) == []


def test_registry_errors_reach_the_client_unchanged(pair: tuple[ApiServer, Any]) -> None:
    api, _ = pair
    image_id = str(uuid.uuid4())
    first = requests.post(
        api.url + "/v1/images", headers={**RAW, "x-image-meta-id": image_id}, timeout=5
    )
    assert first.status_code == 201
    again = requests.post(
        api.url + "/v1/images", headers={**RAW, "x-image-meta-id": image_id}, timeout=5
    )
    assert again.status_code == 409 and image_id in again.text
    missing = requests.head(f"{api.url}/v1/images/{uuid.uuid4()}", timeout=5)
    assert missing.status_code == 404
    bad = requests.get(api.url + "/v1/images/detail", params={"sort_key": "colour"}, timeout=5)
    assert bad.status_code == 400 and "sort_key" in bad.json()["error"]["message"]
    marker = requests.get(api.url + "/v1/images", params={"marker": str(uuid.uuid4())}, timeout=5)
    assert marker.status_code == 400


def test_registry_gone_is_503_naming_it(pair: tuple[ApiServer, Any]) -> None:
    api, registry = pair
    registry.stop(kill=True)
    resp = requests.get(api.url + "/v1/images/detail", timeout=10)
    assert resp.status_code == 503
    assert f"registry at {registry.url} is unreachable" in resp.json()["error"]["message"]
    upload = requests.post(api.url + "/v1/images", data=b"abc", headers=RAW, timeout=10)
    assert upload.status_code == 503
    assert list((api.data_dir / "images").iterdir()) == []
