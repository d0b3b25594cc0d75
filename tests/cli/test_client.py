"""``tank.client.Client`` against a real tank-api: bytes, metadata, paging, members, errors.

Tests taking ``client`` run once per Images API version (v2, v1); where the versions
differ (v2 needs formats before data; v1 keeps deleted records) the test says so."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tank import errors
from tank.client import BriefImage, Client, ConnectionFailed, HTTPError
from tank.client import errors as client_errors
from tank.model import Status

from .conftest import ApiServer

META: dict[str, Any] = {"name": "cirros", "disk_format": "raw", "container_format": "bare"}
#: v2, as Glance, takes data only once the formats are set.
FORMATS: dict[str, Any] = {"disk_format": "raw", "container_format": "bare"}


def blob(n: int) -> bytes:
    return os.urandom(n)


def test_upload_file_round_trip(client: Client, tmp_path: Path) -> None:
    data = blob(3 * (1 << 20) + 17)
    path = tmp_path / "disk.img"
    path.write_bytes(data)
    with path.open("rb") as f:
        image = client.create(f, properties={"os": "linux"}, **META)
    assert image.status is Status.ACTIVE
    assert image.size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.properties == {"os": "linux"}
    with client.download(image.id) as download:
        assert download.size == len(data)
        assert download.image.checksum == image.checksum
        assert download.read_all() == data
    head = client.get(image.id)
    assert (head.id, head.name, head.size, head.checksum, head.status, head.properties) == (
        image.id,
        "cirros",
        len(data),
        image.checksum,
        Status.ACTIVE,
        {"os": "linux"},
    )
    out = tmp_path / "copy.img"
    assert client.download_to(image.id, out).id == image.id
    assert out.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_upload_iterator_is_chunked(client: Client) -> None:
    chunks = [blob(1000), blob(70_000), b"", blob(3)]
    data = b"".join(chunks)
    image = client.create(iter(chunks), name="from-iterator", **FORMATS)
    assert image.size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert client.download(image.id).read_all() == data


def test_zero_byte_image(client: Client) -> None:
    image = client.create(io.BytesIO(b""), name="empty", **FORMATS)
    assert image.status is Status.ACTIVE
    assert image.size == 0
    assert image.checksum == hashlib.md5(b"").hexdigest()
    assert client.download(image.id).read_all() == b""


def test_queued_then_upload(client: Client) -> None:
    image = client.create(name="later", **FORMATS)
    assert image.status is Status.QUEUED
    with pytest.raises(errors.NotFound):
        client.download(image.id)
    data = blob(5000)
    image = client.upload(image.id, io.BytesIO(data), min_ram=64)
    assert (image.status, image.size, image.min_ram) == (Status.ACTIVE, 5000, 64)
    with pytest.raises(errors.Conflict):
        client.upload(image.id, io.BytesIO(b"again"))


def test_non_ascii_metadata(client: Client) -> None:
    image = client.create(name="Ubuntu noble ü", properties={"description": "für Tests ✓"})
    got = client.get(image.id)
    assert got.name == "Ubuntu noble ü"
    assert got.properties["description"] == "für Tests ✓"


def test_range_download(client: Client) -> None:
    data = blob(100_000)
    image = client.create(io.BytesIO(data), name="ranged", **FORMATS)
    assert client.download(image.id, offset=10, length=100).read_all() == data[10:110]
    assert client.download(image.id, offset=99_990).read_all() == data[99_990:]
    with pytest.raises(client_errors.RangeNotSatisfiable):
        client.download(image.id, offset=200_000)


def test_update_merges_or_purges_properties(client: Client) -> None:
    image = client.create(name="props", properties={"a": "1", "b": "2"})
    image = client.update(image.id, name="renamed", properties={"b": "3", "c": "4"})
    assert image.name == "renamed"
    assert image.properties == {"a": "1", "b": "3", "c": "4"}
    image = client.update(image.id, purge_props=True, properties={"c": "5"})
    assert image.properties == {"c": "5"}
    assert client.get(image.id).properties == {"c": "5"}
    image = client.update(image.id, is_public=True, protected=True)
    assert image.is_public and image.protected
    with pytest.raises(errors.Forbidden):
        client.delete(image.id)
    client.update(image.id, protected=False)
    client.delete(image.id)
    if client.api == "v1":
        # As in Glance v1, admins still see a deleted image's record; its data is gone.
        assert client.get(image.id).status is Status.DELETED
    else:
        with pytest.raises(errors.NotFound):
            client.get(image.id)
    with pytest.raises(errors.NotFound):
        client.download(image.id)


def test_listing_filters_sort_and_paging(client: Client, tag: str) -> None:
    made = [
        client.create(
            io.BytesIO(blob(i + 1)), name=f"page-{i}", properties={"batch": tag}, **FORMATS
        ).id
        for i in range(7)
    ]
    filters = {"property-batch": tag}
    everything = client.list(filters=filters, sort_key="name", sort_dir="asc")
    assert [i.id for i in everything] == made
    first = client.list(filters=filters, sort_key="name", sort_dir="asc", limit=3)
    second = client.list(
        filters=filters, sort_key="name", sort_dir="asc", limit=3, marker=first[-1].id
    )
    assert [i.id for i in first + second] == made[:6]
    paged = list(client.iter_images(filters=filters, sort_key="size", sort_dir="asc", page_size=2))
    assert [i.id for i in paged] == made
    limited = list(client.iter_images(filters=filters, sort_key="name", limit=5, page_size=2))
    assert [i.id for i in limited] == made[::-1][:5]
    brief = list(client.iter_index(filters={"properties": {"batch": tag}}, page_size=3))
    assert {b.id for b in brief} == set(made)
    assert all(isinstance(b, BriefImage) for b in brief)
    assert {b.size for b in brief} == set(range(1, 8))
    by_size = client.list(filters={**filters, "size_min": 3, "size_max": 5})
    assert sorted(i.size or 0 for i in by_size) == [3, 4, 5]
    assert [i.name for i in client.list(filters={**filters, "name": "page-4"})] == ["page-4"]


def test_listing_errors(client: Client) -> None:
    with pytest.raises(errors.Invalid):
        client.list(sort_key="checksum")
    with pytest.raises(errors.Invalid):
        client.list(marker=str(uuid.uuid4()))


def test_members_v1(api: ApiServer) -> None:
    with Client(api.url, api="v1") as client:
        _members_v1(client)


def _members_v1(client: Client) -> None:
    image = client.create(name="shared")
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    client.add_member(image.id, tenant)
    client.add_member(image.id, "other", can_share=True)
    members = {(m.member, m.can_share) for m in client.members(image.id)}
    assert members == {(tenant, False), ("other", True)}
    shared = client.shared_images(tenant)
    assert [(m.image_id, m.member) for m in shared] == [(image.id, tenant)]
    client.replace_members(image.id, [(tenant, True)])
    assert [(m.member, m.can_share) for m in client.members(image.id)] == [(tenant, True)]
    client.remove_member(image.id, tenant)
    assert client.members(image.id) == []
    with pytest.raises(errors.NotFound):
        client.remove_member(image.id, tenant)


def test_errors_are_the_core_tree(client: Client, tmp_path: Path) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(client_errors.NotFound) as info:
        client.get(missing)
    assert isinstance(info.value, errors.NotFound) and isinstance(info.value, HTTPError)
    assert info.value.status == 404
    with pytest.raises(errors.NotFound, match=missing):
        client.delete(missing)
    with pytest.raises(errors.ValidationError):
        client.get("not-a-uuid")

    chosen = str(uuid.uuid4())
    client.create(id=chosen, name="mine")
    with pytest.raises(errors.Conflict):
        client.create(id=chosen, name="again")
    with pytest.raises(errors.Invalid, match="store"):
        client.create(io.BytesIO(b"x"), store="no-such-store", **FORMATS)

    bad = str(uuid.uuid4())
    with pytest.raises(errors.Invalid, match="checksum"):
        client.create(io.BytesIO(b"payload"), id=bad, checksum="0" * 32, **FORMATS)
    if client.api == "v1":
        assert client.get(bad).status is Status.KILLED
    else:
        # v2 checks before the last chunk is sent, and deletes the image it created
        with pytest.raises(errors.NotFound):
            client.get(bad)
    with pytest.raises(errors.Invalid):
        client.create(io.BytesIO(b"payload"), size=3, **FORMATS)


def test_corrupt_data_fails_the_download(client: Client, api: ApiServer) -> None:
    data = blob(10_000)
    image = client.create(io.BytesIO(data), name="to-corrupt", **FORMATS)
    assert image.location is None, "locations are shown only with show_image_direct_url"
    path = api.data_dir / "images" / image.id
    stored = bytearray(path.read_bytes())
    stored[5000] ^= 0xFF
    path.write_bytes(bytes(stored))
    with pytest.raises(errors.ChecksumMismatch):
        client.download(image.id).read_all()
    assert len(client.download(image.id, verify=False).read_all()) == len(data)


def test_server_down(dead_url: str, api_version: str) -> None:
    with Client(dead_url, api=api_version) as client, pytest.raises(ConnectionFailed) as info:
        client.list()
    assert dead_url in str(info.value)
    assert isinstance(info.value, errors.StoreUnavailable)


def test_local_read_errors_are_not_network_errors(client: Client, tag: str) -> None:
    def failing() -> Iterator[bytes]:
        yield b"first chunk"
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError, match="Input/output") as info:
        client.create(failing(), name="unreadable", properties={"batch": tag}, **FORMATS)
    assert not isinstance(info.value, ConnectionFailed)
    with pytest.raises(errors.SizeMismatch):
        client.create(io.BytesIO(b"12345"), size=10, properties={"batch": tag}, **FORMATS)
    with pytest.raises(TypeError):
        client.create(b"refused, as by the service", properties={"batch": tag}, **FORMATS)  # type: ignore[arg-type]
    statuses = {i.status for i in client.list(filters={"property-batch": tag})}
    assert Status.ACTIVE not in statuses


def test_multihash_reaches_the_client(client: Client) -> None:
    data = blob(5000)
    image = client.create(io.BytesIO(data), name="hashed", **FORMATS)
    assert (image.os_hash_algo, image.os_hash_value) == ("sha256", hashlib.sha256(data).hexdigest())
    assert client.get(image.id).os_hash_value == image.os_hash_value
    assert next(i for i in client.list() if i.id == image.id).os_hash_value == image.os_hash_value
