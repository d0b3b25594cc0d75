"""Sharing an image with another project, and deactivation, as the two projects and an
admin see them through openstacksdk and python-glanceclient."""

from __future__ import annotations

import io
import os
from typing import Any

import glanceclient.exc
import openstack.connection
import pytest
from openstack import exceptions as sdk_exc

from .conftest import Caller, Http


def shared_image(glance_a: Any, name: str, data: bytes) -> Any:
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    glance_a.images.upload(image.id, io.BytesIO(data), image_size=len(data))
    return image


def test_member_sees_the_image_listed_only_after_accepting(
    sdk_a: openstack.connection.Connection,
    sdk_b: openstack.connection.Connection,
    glance_a: Any,
    glance_b: Any,
    bob: Caller,
    name: str,
) -> None:
    data = os.urandom(100_000)
    image = shared_image(glance_a, name, data)

    member = sdk_a.image.add_member(image.id, member=bob.project)
    assert member.status == "pending"
    assert [(m.member_id, m.status) for m in sdk_a.image.members(image.id)] == [
        (bob.project, "pending")
    ]

    # pending: not in B's listing, but reachable by id and listed when asked for
    assert [i.id for i in sdk_b.image.images(name=name)] == []
    pending = sdk_b.image.images(name=name, member_status="pending", visibility="shared")
    assert [i.id for i in pending] == [image.id]
    assert sdk_b.image.get_image(image.id).id == image.id

    accepted = sdk_b.image.update_member(bob.project, image.id, status="accepted")
    assert accepted.status == "accepted"
    assert [i.id for i in sdk_b.image.images(name=name)] == [image.id]
    assert b"".join(glance_b.images.data(image.id)) == data
    [seen] = glance_b.image_members.list(image.id)
    assert (seen.member_id, seen.status) == (bob.project, "accepted")

    # B may use it, not change it
    with pytest.raises(glanceclient.exc.HTTPForbidden):
        glance_b.images.update(image.id, name="mine now")
    with pytest.raises(glanceclient.exc.HTTPForbidden):
        glance_b.images.delete(image.id)

    glance_b.image_members.update(image.id, bob.project, "rejected")
    assert [i.id for i in sdk_b.image.images(name=name)] == []
    rejected = sdk_b.image.images(name=name, member_status="rejected", visibility="shared")
    assert [i.id for i in rejected] == [image.id]

    sdk_a.image.remove_member(bob.project, image.id)
    assert list(sdk_a.image.members(image.id)) == []
    with pytest.raises(sdk_exc.NotFoundException):
        sdk_b.image.get_image(image.id)


def test_only_the_member_sets_its_status(
    glance_a: Any, glance_b: Any, glance_admin: Any, bob: Caller, name: str
) -> None:
    image = glance_a.images.create(name=name, disk_format="raw", container_format="bare")
    glance_a.image_members.create(image.id, bob.project)
    with pytest.raises(glanceclient.exc.HTTPForbidden):
        glance_a.image_members.update(image.id, bob.project, "accepted")
    [member] = glance_a.image_members.list(image.id)
    assert member.status == "pending"
    with pytest.raises(glanceclient.exc.HTTPConflict):
        glance_a.image_members.create(image.id, bob.project)
    with pytest.raises(glanceclient.exc.HTTPNotFound):
        glance_a.image_members.delete(image.id, "nobody-" + bob.project)


def test_only_shared_images_take_members(glance_a: Any, bob: Caller, name: str) -> None:
    image = glance_a.images.create(
        name=name, disk_format="raw", container_format="bare", visibility="private"
    )
    with pytest.raises(glanceclient.exc.HTTPForbidden):
        glance_a.image_members.create(image.id, bob.project)
    glance_a.images.update(image.id, visibility="shared")
    glance_a.image_members.create(image.id, bob.project)
    assert [m.member_id for m in glance_a.image_members.list(image.id)] == [bob.project]


def test_deactivated_image_is_downloadable_by_admins_only(
    sdk_a: openstack.connection.Connection,
    sdk_b: openstack.connection.Connection,
    sdk_admin: openstack.connection.Connection,
    glance_a: Any,
    glance_b: Any,
    glance_admin: Any,
    http_b: Http,
    bob: Caller,
    name: str,
) -> None:
    data = os.urandom(50_000)
    image = shared_image(glance_a, name, data)
    sdk_a.image.add_member(image.id, member=bob.project)
    sdk_b.image.update_member(bob.project, image.id, status="accepted")

    sdk_admin.image.deactivate_image(image.id)
    assert sdk_b.image.get_image(image.id).status == "deactivated"
    with pytest.raises(glanceclient.exc.HTTPForbidden):
        glance_b.images.data(image.id)
    with pytest.raises(glanceclient.exc.HTTPForbidden):
        glance_a.images.data(image.id)  # the owner too: it is not an admin
    resp = http_b("GET", f"/v2/images/{image.id}/file")
    assert resp.status_code == 403
    assert "deactivated" in resp.json()["error"]["message"]
    assert b"".join(glance_admin.images.data(image.id)) == data

    glance_admin.images.reactivate(image.id)
    assert sdk_b.image.get_image(image.id).status == "active"
    assert b"".join(glance_b.images.data(image.id)) == data


def test_deactivating_an_image_without_data_is_refused(glance_admin: Any, name: str) -> None:
    image = glance_admin.images.create(name=name, disk_format="raw", container_format="bare")
    with pytest.raises(glanceclient.exc.HTTPForbidden):
        glance_admin.images.deactivate(image.id)
