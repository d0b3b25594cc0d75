"""One image's life through openstacksdk and python-glanceclient: create and upload,
download verified by the clients, patch, tags, protected delete, not found."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from pathlib import Path
from typing import Any

import glanceclient.exc
import openstack.connection
import pytest
from openstack import exceptions as sdk_exc

from tank.testing.api_server import ApiServer

from .conftest import Caller, Http, stored_files

MIB = 1 << 20


def test_openstacksdk_create_upload_download(
    sdk_a: openstack.connection.Connection,
    http_a: Http,
    alice: Caller,
    name: str,
    tmp_path: Path,
) -> None:
    data = os.urandom(3 * MIB + 11)
    image = sdk_a.image.create_image(
        name,
        data=data,
        disk_format="raw",
        container_format="bare",
        validate_checksum=True,  # the sdk compares the server's checksum with its own MD5
        allow_duplicates=True,
        os_distro="cirros",
    )
    image = sdk_a.image.get_image(image.id)
    assert (image.name, image.status, image.size) == (name, "active", len(data))
    assert (image.disk_format, image.container_format) == ("raw", "bare")
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert (image.hash_algo, image.hash_value) == ("sha256", hashlib.sha256(data).hexdigest())
    assert (image.owner, image.visibility) == (alice.project, "shared")
    assert image.os_distro == "cirros"

    # the sdk hashes what it receives with os_hash_algo and compares it with os_hash_value
    resp = sdk_a.image.download_image(image)
    assert resp.content == data
    assert resp.headers["Content-MD5"] == image.checksum
    out = tmp_path / "copy.img"
    sdk_a.image.download_image(image, output=str(out), chunk_size=64 * 1024)
    assert out.read_bytes() == data

    as_seen_raw = http_a.image(image.id)
    assert as_seen_raw["file"] == f"/v2/images/{image.id}/file"
    assert as_seen_raw["stores"] == "fast"


def test_openstacksdk_upload_image_from_a_file_object(
    sdk_a: openstack.connection.Connection, name: str
) -> None:
    """The older (deprecated, still called) ``upload_image``: create, then PUT a stream."""
    data = os.urandom(MIB + 1)
    image = sdk_a.image.upload_image(
        container_format="bare", disk_format="raw", data=io.BytesIO(data), name=name
    )
    image = sdk_a.image.get_image(image.id)
    assert (image.status, image.size) == ("active", len(data))
    assert image.hash_value == hashlib.sha256(data).hexdigest()
    assert sdk_a.image.download_image(image).content == data


def test_glanceclient_create_then_upload_then_download(
    glance_a: Any, name: str, alice: Caller
) -> None:
    data = os.urandom(2 * MIB + 3)
    image = glance_a.images.create(
        name=name,
        disk_format="raw",
        container_format="bare",
        min_ram=256,
        architecture="x86_64",
        tags=["gc", "upload"],
    )
    assert (image.status, image.owner, image.visibility) == ("queued", alice.project, "shared")
    assert image.size is None and image.checksum is None
    assert sorted(image.tags) == ["gc", "upload"]

    glance_a.images.upload(image.id, io.BytesIO(data), image_size=len(data))
    image = glance_a.images.get(image.id)
    assert (image.status, image.size, image.min_ram) == ("active", len(data), 256)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.os_hash_algo == "sha256"
    assert image.os_hash_value == hashlib.sha256(data).hexdigest()
    assert image.architecture == "x86_64"

    # images.data verifies os_hash_value (falling back to the MD5 only without one)
    assert b"".join(glance_a.images.data(image.id)) == data


def test_image_without_data_downloads_as_204(glance_a: Any, http_a: Http, name: str) -> None:
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    assert glance_a.images.data(image.id).wrapped is None  # what `glance image-download` checks
    resp = http_a("GET", f"/v2/images/{image.id}/file")
    assert (resp.status_code, resp.content) == (204, b"")


def test_clients_detect_data_corrupted_in_the_store(
    tank_v2: ApiServer,
    http_a: Http,
    sdk_a: openstack.connection.Connection,
    glance_a: Any,
    name: str,
) -> None:
    """Both clients check the download against the image's hashes: bytes that rot in the
    store are an error, not a silently wrong image."""
    data = os.urandom(MIB)
    image = http_a.create(name=name)
    resp = http_a(
        "PUT",
        f"/v2/images/{image['id']}/file",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204, resp.text
    [path] = [p for p in stored_files(tank_v2, "fast") if image["id"] in p.name]
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(bytes(b ^ 0xFF for b in data[1000:1010]))

    with pytest.raises((sdk_exc.InvalidResponse, OSError)):
        sdk_a.image.download_image(image["id"])
    with pytest.raises(OSError):
        b"".join(glance_a.images.data(image["id"]))


def test_openstacksdk_update_image(
    sdk_a: openstack.connection.Connection, http_a: Http, name: str
) -> None:
    image = sdk_a.image.create_image(
        name, disk_format="raw", container_format="bare", allow_duplicates=True, colour="red"
    )
    new_name = name + "-renamed"
    sdk_a.image.update_image(image, name=new_name, min_ram=512, colour="blue", flavour="mint")
    shown = http_a.image(image.id)
    assert (shown["name"], shown["min_ram"]) == (new_name, 512)
    assert (shown["colour"], shown["flavour"]) == ("blue", "mint")
    assert shown["status"] == "queued"


def test_glanceclient_update_properties_and_remove_props(
    glance_a: Any, http_a: Http, name: str
) -> None:
    image = glance_a.images.create(
        name=name,
        disk_format="raw",
        container_format="bare",
        colour="red",
        shape="round",
        size_hint="large",
    )
    updated = glance_a.images.update(
        image.id,
        remove_props=["colour", "size_hint"],
        shape="square",
        os_distro="debian",
        min_disk=4,
    )
    assert updated.shape == "square"
    shown = http_a.image(image.id)
    assert (shown["shape"], shown["os_distro"], shown["min_disk"]) == ("square", "debian", 4)
    assert "colour" not in shown and "size_hint" not in shown


def test_patch_that_fails_changes_nothing(glance_a: Any, http_a: Http, name: str) -> None:
    """A patch is all or nothing: a valid first operation is not kept when a later one
    is refused."""
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    patch = [
        {"op": "replace", "path": "/name", "value": "changed"},
        {"op": "replace", "path": "/status", "value": "active"},
    ]
    resp = http_a(
        "PATCH",
        f"/v2/images/{image.id}",
        json=patch,
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert resp.status_code == 403, resp.text
    assert http_a.image(image.id)["name"] == name


def _upload_raw(glance: Any, name: str) -> Any:
    image = glance.images.create(name=name, disk_format="raw", container_format="bare")
    glance.images.upload(image.id, io.BytesIO(b"\0" * 4096))
    return image


@pytest.mark.parametrize(
    ("attribute", "value"), [("disk_format", "qcow2"), ("container_format", "ovf")]
)
def test_formats_of_an_active_image_cannot_change(
    glance_a: Any, http_a: Http, name: str, attribute: str, value: str
) -> None:
    """Glance's rule: only a queued image changes formats (its data was inspected as
    the format it was uploaded with: a qcow2 label on raw data would skip that)."""
    image = _upload_raw(glance_a, name)
    before = http_a.image(image.id)
    assert before["status"] == "active"
    resp = http_a(
        "PATCH",
        f"/v2/images/{image.id}",
        json=[
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "replace", "path": f"/{attribute}", "value": value},
        ],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert resp.status_code == 403, resp.text
    assert f"Attribute {attribute} can be only replaced for a queued image" in resp.text
    assert "active" in resp.text
    assert http_a.image(image.id) == before


def test_clients_cannot_change_formats_of_an_active_image(
    sdk_a: openstack.connection.Connection, glance_a: Any, http_a: Http, name: str
) -> None:
    image = _upload_raw(glance_a, name)
    with pytest.raises(glanceclient.exc.HTTPForbidden, match="disk_format can be only replaced"):
        glance_a.images.update(image.id, disk_format="qcow2")
    with pytest.raises(sdk_exc.ForbiddenException, match="container_format can be only"):
        sdk_a.image.update_image(image.id, container_format="ovf")
    shown = http_a.image(image.id)
    assert (shown["disk_format"], shown["container_format"]) == ("raw", "bare")


def test_formats_of_a_queued_image_change(
    sdk_a: openstack.connection.Connection, glance_a: Any, http_a: Http, name: str
) -> None:
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    glance_a.images.update(image.id, disk_format="qcow2")
    sdk_a.image.update_image(image.id, container_format="ovf")
    shown = http_a.image(image.id)
    assert (shown["disk_format"], shown["container_format"], shown["status"]) == (
        "qcow2",
        "ovf",
        "queued",
    )


def test_tags_add_and_remove(
    sdk_a: openstack.connection.Connection, glance_a: Any, http_a: Http, name: str
) -> None:
    image = http_a.create(name=name, tags=["base"])
    sdk_a.image.add_tag(image["id"], "sdk-tag")
    glance_a.image_tags.update(image["id"], "gc-tag")
    glance_a.image_tags.update(image["id"], "gc-tag")  # adding it again is a no-op
    assert sorted(http_a.image(image["id"])["tags"]) == ["base", "gc-tag", "sdk-tag"]

    sdk_a.image.remove_tag(image["id"], "base")
    glance_a.image_tags.delete(image["id"], "sdk-tag")
    assert http_a.image(image["id"])["tags"] == ["gc-tag"]
    with pytest.raises(glanceclient.exc.HTTPNotFound):
        glance_a.image_tags.delete(image["id"], "never-there")


def test_protected_image_cannot_be_deleted_until_unprotected(
    sdk_a: openstack.connection.Connection, glance_a: Any, http_a: Http, name: str
) -> None:
    image = sdk_a.image.create_image(
        name, disk_format="raw", container_format="bare", allow_duplicates=True, protected=True
    )
    assert sdk_a.image.get_image(image.id).is_protected is True
    with pytest.raises(sdk_exc.ForbiddenException):
        sdk_a.image.delete_image(image.id)
    with pytest.raises(glanceclient.exc.HTTPForbidden):
        glance_a.images.delete(image.id)
    resp = http_a("DELETE", f"/v2/images/{image.id}")
    assert resp.status_code == 403 and "protected" in resp.json()["error"]["message"]

    sdk_a.image.update_image(image, is_protected=False)
    resp = http_a("DELETE", f"/v2/images/{image.id}")
    assert resp.status_code == 204, resp.text
    with pytest.raises(sdk_exc.NotFoundException):
        sdk_a.image.get_image(image.id)


def test_deleted_image_data_leaves_the_store(tank_v2: ApiServer, glance_a: Any, name: str) -> None:
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    glance_a.images.upload(image.id, io.BytesIO(b"to be deleted"))
    assert [p for p in stored_files(tank_v2, "fast") if image.id in p.name]
    glance_a.images.delete(image.id)
    assert not [p for p in stored_files(tank_v2, "fast") if image.id in p.name]
    with pytest.raises(glanceclient.exc.HTTPNotFound):
        glance_a.images.get(image.id)


def test_unknown_image_is_not_found_for_both_clients(
    sdk_a: openstack.connection.Connection, glance_a: Any
) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(sdk_exc.NotFoundException):
        sdk_a.image.get_image(missing)
    assert sdk_a.image.find_image(missing) is None
    with pytest.raises(sdk_exc.NotFoundException):
        sdk_a.image.delete_image(missing, ignore_missing=False)
    with pytest.raises(glanceclient.exc.HTTPNotFound):
        glance_a.images.get(missing)
    with pytest.raises(glanceclient.exc.HTTPNotFound):
        b"".join(glance_a.images.data(missing))
    with pytest.raises(glanceclient.exc.HTTPNotFound):
        glance_a.images.update(missing, name="x")


def test_private_image_is_invisible_to_another_tenant(
    sdk_a: openstack.connection.Connection,
    sdk_b: openstack.connection.Connection,
    glance_b: Any,
    name: str,
) -> None:
    """Another project's private image is a 404, not a 403: its existence is not told."""
    image = sdk_a.image.create_image(
        name,
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
        visibility="private",
    )
    with pytest.raises(sdk_exc.NotFoundException):
        sdk_b.image.get_image(image.id)
    with pytest.raises(glanceclient.exc.HTTPNotFound):
        glance_b.images.update(image.id, name="taken over")
    assert [i.id for i in sdk_b.image.images(name=name)] == []


def test_only_an_admin_makes_an_image_public(
    glance_a: Any, glance_admin: Any, sdk_b: openstack.connection.Connection, name: str
) -> None:
    with pytest.raises(glanceclient.exc.HTTPForbidden):
        glance_a.images.create(
            name=name, disk_format="raw", container_format="bare", visibility="public"
        )
    image = glance_admin.images.create(
        name=name, disk_format="raw", container_format="bare", visibility="public"
    )
    assert sdk_b.image.get_image(image.id).visibility == "public"
    assert [i.id for i in sdk_b.image.images(name=name)] == [image.id]


def test_locations_are_for_admins_and_services(
    sdk_a: openstack.connection.Connection,
    glance_a: Any,
    http_a: Http,
    http_admin: Http,
    name: str,
) -> None:
    """Where the data lives is shown to admins and services (Nova, Cinder) only, and users
    never point an image at a location of their choosing (OSSN-0065, OSSN-0090)."""
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    glance_a.images.upload(image.id, io.BytesIO(b"located"))
    queued = glance_a.images.create(name=name, disk_format="raw", container_format="bare")

    with pytest.raises(sdk_exc.ForbiddenException):
        list(sdk_a.image.image_locations(image.id))
    with pytest.raises(sdk_exc.ForbiddenException):
        sdk_a.image.add_image_location(queued.id, "file:///etc/passwd")
    resp = http_a("POST", f"/v2/images/{queued.id}/locations", json={"url": "file:///etc/passwd"})
    assert resp.status_code == 403, resp.text
    assert http_a.image(queued.id)["status"] == "queued"

    # Nova and Cinder call with the user's token plus their own service token, which
    # auth_token middleware passes on as X-Service-Roles
    as_nova = {"X-Service-Roles": "service"}
    for caller, headers in ((http_admin, {}), (http_a, as_nova)):
        resp = caller("GET", f"/v2/images/{image.id}/locations", headers=headers)
        assert resp.status_code == 200, resp.text
        [location] = resp.json()
        assert location["url"].startswith("file://")
        assert location["metadata"]["store"] == "fast"
