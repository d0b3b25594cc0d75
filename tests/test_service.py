"""The embeddable service over the real filesystem store and SQL registry."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tank import errors
from tank.config import load
from tank.model import Context, ListQuery, Status
from tank.plugins import make_plugin_manager
from tank.service import ImageService
from tank.testing import read_all

ADMIN = Context.admin()
META = {"name": "cirros", "disk_format": "raw", "container_format": "bare"}


def stored_files(data_dir: Path) -> list[str]:
    images = data_dir / "images"
    return sorted(p.name for p in images.rglob("*") if p.is_file()) if images.exists() else []


def test_plugins_come_from_entry_points() -> None:
    plugins = make_plugin_manager(environ={})
    assert plugins.store_types()["file"].__module__.startswith("tank_store_fs")
    assert plugins.registry_types()["sql"].__module__.startswith("tank_registry_sql")
    blocked = make_plugin_manager(environ={"TANK_DISABLE_PLUGINS": "fs"})
    assert "file" not in blocked.store_types()


def test_upload_download_round_trip(service: ImageService, recorder) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(3 * (1 << 20) + 11)
    image = service.create(META, data=io.BytesIO(data), context=ADMIN)
    assert image.status is Status.ACTIVE
    assert image.size == len(data)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert (image.os_hash_algo, image.os_hash_value) == ("sha256", hashlib.sha256(data).hexdigest())
    assert image.store == "file" and image.location.startswith("file://")
    assert read_all(service, image.id) == data
    assert read_all(service, image.id, offset=10, length=100) == data[10:110]
    assert [e[0] for e in recorder.events] == [
        "created", "upload_started", "data_stored", "activated",
    ]  # fmt: skip
    assert service.get(image.id, context=ADMIN).checksum == image.checksum


def test_queued_then_upload(service: ImageService) -> None:
    image = service.create(META, context=ADMIN)
    assert image.status is Status.QUEUED
    with pytest.raises(errors.NotFound, match="not active"):
        service.download(image.id, context=ADMIN)
    image = service.upload(image.id, iter([b"abc", b"def"]), context=ADMIN)
    assert image.status is Status.ACTIVE and image.size == 6
    with pytest.raises(errors.Conflict, match="queued"):
        service.upload(image.id, iter([b"again"]), context=ADMIN)
    assert read_all(service, image.id) == b"abcdef"


def test_zero_byte_image(service: ImageService) -> None:
    image = service.create(META, data=iter(()), context=ADMIN)
    assert image.status is Status.ACTIVE and image.size == 0
    assert image.checksum == hashlib.md5(b"").hexdigest()
    assert read_all(service, image.id) == b""


def failing() -> Iterator[bytes]:
    yield b"x" * (1 << 20)
    raise ConnectionResetError("client went away")


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"data": iter([b"hello"]), "checksum": "0" * 32}, errors.ChecksumMismatch),
        ({"data": iter([b"hello"]), "size": 4}, errors.SizeMismatch),
        ({"data": iter([b"hello"]), "size": 6}, errors.SizeMismatch),
        ({"data": failing()}, ConnectionResetError),
    ],
)
def test_failed_upload_kills_and_leaves_nothing(
    service: ImageService,
    data_dir: Path,
    recorder,
    kwargs,
    error,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(error):
        service.create(META, context=ADMIN, **kwargs)
    [image] = service.list(ListQuery(), context=ADMIN)
    assert image.status is Status.KILLED
    assert image.location is None
    assert stored_files(data_dir) == []
    assert recorder.events[-1][0] == "killed"
    with pytest.raises(errors.NotFound):
        service.download(image.id, context=ADMIN)


def test_size_cap(data_dir: Path) -> None:
    from tank.config import load

    config = load(data_dir=data_dir, environ={})
    import attrs

    config = attrs.evolve(config, image_size_cap=1000)
    with ImageService.from_config(config) as service:
        with pytest.raises(errors.ImageTooLarge):
            service.create(META, data=iter([b"x" * 600, b"y" * 600]), context=ADMIN)
        with pytest.raises(errors.ImageTooLarge):
            service.create(META, data=iter([b"x"]), size=5000, context=ADMIN)
        assert {i.status for i in service.list(context=ADMIN)} == {Status.KILLED}
    assert stored_files(data_dir) == []


def test_the_multihash_algorithm_comes_from_the_api_section(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tank.toml"
    path.write_text('[api]\nhashing_algorithm = "sha512"\n')
    data = os.urandom(2 * (1 << 20) + 5)
    sha512 = hashlib.sha512(data).hexdigest()
    with ImageService.from_config(load(path, data_dir=data_dir, environ={})) as service:
        image = service.create(META, data=io.BytesIO(data), context=ADMIN)
        assert image.checksum == hashlib.md5(data).hexdigest()
        assert (image.os_hash_algo, image.os_hash_value) == ("sha512", sha512)
        assert read_all(service, image.id) == data
    with ImageService.from_config(load(data_dir=data_dir, environ={})) as service:
        # recorded with the image: a service since switched back to sha256 still shows it
        again = service.get(image.id, context=ADMIN)
        assert (again.os_hash_algo, again.os_hash_value) == ("sha512", sha512)
        other = service.create(META, data=iter([b"abc"]), context=ADMIN)
        assert other.os_hash_algo == "sha256"


def test_an_unknown_multihash_algorithm_stops_the_service_at_start(
    service: ImageService, data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "tank.toml"
    path.write_text('[api]\nhashing_algorithm = "sha-512"\n')
    config = load(path, data_dir=tmp_path / "other", environ={})
    with pytest.raises(errors.ConfigError) as info:
        ImageService.from_config(config)
    assert str(info.value).startswith(f"{path} [api] hashing_algorithm: must be one of: blake2b")
    assert not (tmp_path / "other").exists()  # nothing was opened or created
    with pytest.raises(errors.ConfigError, match=r"^hashing_algorithm: must be one of"):
        ImageService(service.registry, service.stores, service.plugins, hashing_algorithm="md5")


def test_unknown_store_records_nothing(service: ImageService) -> None:
    with pytest.raises(errors.UnknownStore, match="'nope'"):
        service.create(META, data=iter([b"x"]), store="nope", context=ADMIN)
    assert service.list(context=ADMIN) == []


def test_registry_failure_after_upload_discards_data(
    service: ImageService, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_update = service.registry.update

    def flaky(image_id, changes, **kw):  # type: ignore[no-untyped-def]
        if changes.get("status") is Status.ACTIVE:
            raise errors.StoreUnavailable("registry went away")
        return real_update(image_id, changes, **kw)

    monkeypatch.setattr(service.registry, "update", flaky)
    with pytest.raises(errors.StoreUnavailable):
        service.create(META, data=iter([b"data"]), context=ADMIN)
    monkeypatch.undo()
    [image] = service.list(context=ADMIN)
    assert image.status is Status.KILLED
    assert stored_files(data_dir) == []


def test_update_and_purge(service: ImageService, recorder) -> None:  # type: ignore[no-untyped-def]
    image = service.create({**META, "properties": {"a": "1", "b": "2"}}, context=ADMIN)
    image = service.update(image.id, {"properties": {"b": "3"}}, context=ADMIN)
    assert image.properties == {"a": "1", "b": "3"}
    image = service.update(image.id, {"name": "new"}, context=ADMIN, purge_props=True)
    assert image.properties == {} and image.name == "new"
    with pytest.raises(errors.ValidationError, match="status"):
        service.update(image.id, {"status": "active"}, context=ADMIN)
    with pytest.raises(errors.ValidationError, match="min_ram"):
        service.update(image.id, {"min_ram": "-3"}, context=ADMIN)
    assert recorder.events[-1][0] == "updated"


@pytest.mark.parametrize("status", ["active", "saving", "importing", "deactivated", "killed"])
def test_formats_change_only_while_queued(service: ImageService, status: str) -> None:
    """Both APIs: a format change of an image with (or getting) data is 403 and changes
    nothing; sending the current value back is no change (v1 clients echo HEAD)."""
    path = {"active": [], "deactivated": ["deactivated"]}.get(status)
    if path is None:  # from queued, with no data
        image, path = service.create(META, context=ADMIN), [status]
    else:
        image = service.create(META, data=iter([b"data"]), context=ADMIN)
    for step in path:
        image = service.registry.update(image.id, {"status": step}, context=ADMIN)
    assert image.status == status
    for attribute, value in (("disk_format", "qcow2"), ("container_format", "ovf")):
        with pytest.raises(errors.Forbidden, match=f"{attribute} can be only replaced.*{status}"):
            service.update(image.id, {"name": "renamed", attribute: value}, context=ADMIN)
    assert service.get(image.id, context=ADMIN) == image
    same = service.update(
        image.id,
        {"name": "renamed", "disk_format": "raw", "container_format": "bare"},
        context=ADMIN,
    )
    assert (same.name, same.disk_format, same.container_format) == ("renamed", "raw", "bare")


def test_formats_of_a_queued_image_change(service: ImageService) -> None:
    image = service.create(META, context=ADMIN)
    image = service.update(
        image.id, {"disk_format": "qcow2", "container_format": "ovf"}, context=ADMIN
    )
    assert (image.disk_format, image.container_format, image.status) == ("qcow2", "ovf", "queued")


def test_a_format_change_racing_an_upload_changes_nothing(
    service: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen queued, but an upload started (and chose its inspection) before the change
    was written: the change is conditional on the image still being queued."""
    queued = service.create(META, context=ADMIN)
    saving = service.registry.update(queued.id, {"status": Status.SAVING}, context=ADMIN)
    real_get = service.registry.get
    monkeypatch.setattr(service.registry, "get", lambda *a, **k: queued)
    with pytest.raises(errors.Conflict):
        service.update(queued.id, {"disk_format": "qcow2"}, context=ADMIN)
    monkeypatch.setattr(service.registry, "get", real_get)
    assert service.get(queued.id, context=ADMIN) == saving


def test_delete(service: ImageService, data_dir: Path, recorder) -> None:  # type: ignore[no-untyped-def]
    image = service.create(META, data=iter([b"bytes"]), context=ADMIN)
    assert stored_files(data_dir) == [image.id]
    deleted = service.delete(image.id, context=ADMIN)
    assert deleted.status is Status.DELETED and deleted.deleted
    assert stored_files(data_dir) == []
    assert recorder.events[-1] == ("deleted", image.id, "deleted")
    with pytest.raises(errors.NotFound):
        service.delete(image.id, context=ADMIN)
    assert service.list(context=ADMIN) == []


def test_store_with_writes_disabled_keeps_the_image(service: ImageService, data_dir: Path) -> None:
    """A store whose target failed its start-up check (read-only filesystem, missing
    bucket) deletes nothing: the image and its data stay until it is fixed."""
    image = service.create(META, data=iter([b"bytes"]), context=ADMIN)
    service.stores.get("file").write_disabled = "data directory is not writable"
    with pytest.raises(errors.ReadOnlyStore, match="not writable"):
        service.delete(image.id, context=ADMIN)
    assert stored_files(data_dir) == [image.id]
    assert service.get(image.id, context=ADMIN).status is Status.ACTIVE
    assert read_all(service, image.id) == b"bytes"


def test_protected_image_cannot_be_deleted(service: ImageService, data_dir: Path) -> None:
    image = service.create({**META, "protected": True}, data=iter([b"x"]), context=ADMIN)
    with pytest.raises(errors.Forbidden, match="protected"):
        service.delete(image.id, context=ADMIN)
    assert stored_files(data_dir) == [image.id]
    service.update(image.id, {"protected": False}, context=ADMIN)
    service.delete(image.id, context=ADMIN)


def test_tenants(service: ImageService) -> None:
    alice, bob = Context(tenant="alice"), Context(tenant="bob")
    image = service.create(META, data=iter([b"private"]), context=alice)
    assert image.owner == "alice"
    with pytest.raises(errors.NotFound):
        service.get(image.id, context=bob)
    with pytest.raises(errors.NotFound):
        service.download(image.id, context=bob)
    with pytest.raises(errors.Forbidden, match="owner"):
        service.create({**META, "owner": "alice"}, context=bob)
    service.add_member(image.id, "bob", context=alice)
    assert read_all(service, image.id) == b"private"
    assert service.get(image.id, context=bob).id == image.id
    with pytest.raises(errors.Forbidden):
        service.delete(image.id, context=bob)
    with pytest.raises(errors.Forbidden):
        service.update(image.id, {"name": "mine"}, context=bob)
    assert [m.image_id for m in service.shared_with("bob", context=bob)] == [image.id]


def test_register_location(service: ImageService, data_dir: Path, tmp_path: Path) -> None:
    source = service.create(META, data=iter([b"shared bytes"]), context=ADMIN)
    # another image's data: deleting that image would leave this one on nothing (#15)
    with pytest.raises(errors.Invalid, match=f"names image {source.id}"):
        service.create(META, location=source.location, context=ADMIN)
    shared = data_dir / "images" / "base.img"  # an operator's file, no image's own
    shared.write_bytes(b"shared bytes")
    first = service.create(META, location=shared.as_uri(), context=ADMIN)
    image = service.create(META, location=shared.as_uri(), context=ADMIN)
    assert image.status is Status.ACTIVE and image.size == len(b"shared bytes")
    assert read_all(service, image.id) == b"shared bytes"
    assert [loc.owned for loc in image.locations] == [False]
    service.delete(image.id, context=ADMIN)  # registered data is not Tank's to delete
    assert read_all(service, first.id) == b"shared bytes"
    with pytest.raises(errors.SizeMismatch):
        service.create(META, location=shared.as_uri(), size=3, context=ADMIN)
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read me")
    with pytest.raises((errors.BadLocation, errors.Forbidden)):
        service.create(META, location=outside.as_uri(), context=ADMIN)
    with pytest.raises(errors.UnknownScheme):
        service.create(META, location="gopher://x/y", context=ADMIN)
    alice = Context(tenant="alice")
    with pytest.raises(errors.Forbidden, match="only an admin may register"):
        service.create(META, location=source.location, context=alice)
    with pytest.raises(errors.Invalid, match="not both"):
        service.create(META, data=iter([b"x"]), location=source.location, context=ADMIN)


def test_delete_during_an_upload_is_a_conflict_not_an_error_in_the_log(
    service: ImageService, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The outside probe's finding: this ordinary race logged an ERROR with two
    tracebacks ("could not mark image ... killed")."""
    admin = Context.admin()
    image = service.create({"name": "racing"}, context=admin)

    def data() -> Iterator[bytes]:
        yield b"x" * 1000
        service.delete(image.id, context=admin)  # another client, mid-upload
        yield b"y" * 1000

    with pytest.raises(errors.Conflict):
        service.upload(image.id, data(), context=admin)
    assert service.registry.get(image.id, context=admin).status is Status.DELETED
    assert stored_files(data_dir) == []
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
