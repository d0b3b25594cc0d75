"""Quotas as openstacksdk and python-glanceclient users meet them: a 413 they can read
(the limit, its value, the usage), and the usage document ``glance usage`` prints."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import glanceclient.exc
import openstack.exceptions
import pytest

from tank.testing.api_server import ApiServer

from .conftest import Http, glance, sdk, start_tank, stop_checked, tenant

PROJECT = tenant()
#: A project allowed no images at all.
NONE = tenant()
#: Projects with room for one and for two copies of 600 KiB.
ONE_COPY, TWO_COPIES = tenant(), tenant()


@pytest.fixture(scope="module")
def tank_quota(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root: Path = tmp_path_factory.mktemp("tank-quota")
    server = start_tank(
        root,
        "\n[quotas]\nadmins_exempt = false\n"
        f"\n[quotas.projects.{PROJECT.project}]\nimage_count_total = 2\nimage_size_total = 1\n"
        f"\n[quotas.projects.{NONE.project}]\nimage_count_total = 0\n"
        f"\n[quotas.projects.{ONE_COPY.project}]\nimage_size_total = 1\n"
        f"\n[quotas.projects.{TWO_COPIES.project}]\nimage_size_total = 2\n",
    )
    yield server
    stop_checked(server)


def test_glanceclient_users_read_the_413(tank_quota: ApiServer) -> None:
    client = glance(tank_quota.url, PROJECT)
    first = client.images.create(name="q1", disk_format="raw", container_format="bare")
    with pytest.raises(glanceclient.exc.HTTPException) as caught:
        client.images.upload(first.id, io.BytesIO(os.urandom(2 << 20)), image_size=2 << 20)
    assert caught.value.code == 413
    assert "quota exceeded: image_size_total is 1 MiB" in str(caught.value), str(caught.value)
    assert client.images.get(first.id).status == "queued"
    client.images.upload(first.id, io.BytesIO(b"x" * 1000))
    client.images.create(name="q2", disk_format="raw", container_format="bare")
    with pytest.raises(glanceclient.exc.HTTPException) as caught:
        client.images.create(name="q3", disk_format="raw", container_format="bare")
    assert caught.value.code == 413
    assert "image_count_total is 2 images" in str(caught.value), str(caught.value)
    usage = client.info.get_usage()
    assert usage["image_count_total"] == {"limit": 2, "usage": 2}
    assert usage["image_size_total"] == {"limit": 1, "usage": 0}


def test_openstacksdk_users_read_the_413(tank_quota: ApiServer) -> None:
    conn = sdk(tank_quota.url, NONE)
    with pytest.raises(openstack.exceptions.HttpException) as caught:
        conn.image.create_image(name="q4", disk_format="raw", container_format="bare")
    assert caught.value.status_code == 413
    assert "quota exceeded: image_count_total is 0 images" in str(caught.value), str(caught.value)


@pytest.mark.parametrize("caller", [ONE_COPY, TWO_COPIES], ids=["one", "two"])
def test_copy_image_needs_room_for_the_copies(tank_quota: ApiServer, caller: Any) -> None:
    http = Http(tank_quota, caller)
    image = http.create(name="copied")
    data = os.urandom(600 * 1024)
    put = http(
        "PUT", f"/v2/images/{image['id']}/file", data=data,
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert put.status_code == 204, put.text
    body = {"method": {"name": "copy-image"}, "stores": ["slow"]}
    admin = Http(tank_quota, tenant("admin"))  # copy-image is for admins; the owner pays
    resp = admin("POST", f"/v2/images/{image['id']}/import", json=body)
    if caller is ONE_COPY:
        assert resp.status_code == 413, resp.text
        message = resp.json()["error"]["message"]
        assert message.startswith("quota exceeded: image_size_total is 1 MiB"), message
        assert http.image(image["id"])["stores"] == "fast"
        return
    assert resp.status_code == 202, resp.text
    done = http.wait(image["id"], lambda i: "os_glance_importing_to_stores" not in i)
    assert sorted(done["stores"].split(",")) == ["fast", "slow"]
    usage = http("GET", "/v2/info/usage").json()["usage"]["image_size_total"]
    assert usage == {"limit": 2, "usage": 1}  # 1.17 MiB, rounded down as Glance does
