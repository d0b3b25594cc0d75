"""Orphans in the filesystem store (issue 15): the store lists only what Tank's naming
says Tank wrote, and the orphan scan against a real (SQLite) registry reports exactly
the data no image references, respects the grace period and removes only orphans."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from tank import errors
from tank.model import Status
from tank.scrubber.orphans import Outcome
from tank.store import ItemKind
from tank.testing import read_all
from tank.testing.orphans import findings, new_id, record, sqlite_registry
from tank_store_fs import FilesystemBackend
from tank_store_fs.backend import TEMP_PREFIX

from .conftest import make_backend, stored

DAY = 86400


def backdate(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_listing_is_tanks_files_only(backend: FilesystemBackend, datadir: Path) -> None:
    image_id = new_id()
    location = backend.add(image_id, iter([b"data"])).location
    temp_id = new_id()
    temp = f"{TEMP_PREFIX}{temp_id}.0123456789ab"
    (datadir / temp).write_bytes(b"partial")
    (datadir / "notes.txt").write_text("an operator's file")
    (datadir / "lost+found").mkdir()
    (datadir / new_id()).symlink_to(datadir / image_id)  # never Tank's: a symlink
    (datadir / image_id.upper()).write_bytes(b"not a name Tank writes")

    items = {item.name: item for item in backend.stored()}

    assert set(items) == {str(datadir / image_id), str(datadir / temp)}
    data = items[str(datadir / image_id)]
    assert (data.kind, data.location, data.image_id, data.size) == (
        ItemKind.DATA,
        location,
        image_id,
        4,
    )
    assert data.modified is not None
    assert abs((dt.datetime.now(dt.UTC) - data.modified).total_seconds()) < 60
    part = items[str(datadir / temp)]
    assert (part.kind, part.location, part.image_id, part.size) == (
        ItemKind.TEMP,
        None,
        temp_id,
        7,
    )


def test_listing_without_a_data_directory(tmp_path: Path) -> None:
    assert list(make_backend(tmp_path / "never-made", check=False).stored()) == []


def test_orphans_are_what_no_image_references(
    backend: FilesystemBackend, datadir: Path, tmp_path: Path
) -> None:
    registry = sqlite_registry(tmp_path / "data")
    # referenced: by an active image, a deleted one, a pending_delete one, a killed one,
    # and through another spelling of the location (``file://localhost/...``)
    kept = {}
    for status in (Status.ACTIVE, Status.DELETED, Status.PENDING_DELETE, Status.KILLED):
        image_id = new_id()
        kept[status] = backend.add(image_id, iter([status.value.encode()])).location
        url = kept[status]
        if status is Status.KILLED:
            url = f"file://localhost{datadir}/{image_id}"
        record(registry, [url], image_id=image_id, status=status)
    # orphans: data whose image has no location, data of no image at all, a temp file
    queued_id, lost_id, temp_id = new_id(), new_id(), new_id()
    record(registry, image_id=queued_id, status=Status.QUEUED)
    queued = backend.add(queued_id, iter([b"never recorded"])).location
    lost = backend.add(lost_id, iter([b"no image"])).location
    temp = datadir / f"{TEMP_PREFIX}{temp_id}.0123456789ab"
    temp.write_bytes(b"partial")
    # an upload in progress: its image is saving, its temp file old
    saving_id = new_id()
    record(registry, image_id=saving_id, status=Status.SAVING)
    saving_temp = datadir / f"{TEMP_PREFIX}{saving_id}.ba9876543210"
    saving_temp.write_bytes(b"still writing")
    for path in datadir.iterdir():
        backdate(path, 2 * DAY)
    young = backend.add(new_id(), iter([b"just written"])).location  # within the grace

    found, tally = findings(registry, backend, grace=DAY)
    assert found == {Outcome.ORPHAN: {queued, lost, str(temp)}}
    assert (tally.listed, tally.referenced, tally.in_progress, tally.young) == (9, 4, 1, 1)
    assert found == findings(registry, backend, grace=DAY)[0]  # reporting changes nothing

    found, tally = findings(registry, backend, grace=DAY, delete=True)
    assert found == {Outcome.REMOVED: {queued, lost, str(temp)}}
    left = stored(datadir)
    assert left == {
        *(loc.rpartition("/")[2] for loc in (*kept.values(), young)),
        saving_temp.name,
    }
    for status, location in kept.items():
        assert read_all(backend, location) == status.value.encode()
    assert findings(registry, backend, grace=DAY)[0] == {}


def test_grace_counts_from_the_last_write(backend: FilesystemBackend, tmp_path: Path) -> None:
    registry = sqlite_registry(tmp_path / "data")
    old = backend.add(new_id(), iter([b"old"])).location
    backdate(Path(old.removeprefix("file://")), 3600)
    new = backend.add(new_id(), iter([b"new"])).location
    assert findings(registry, backend, grace=3599)[0] == {Outcome.ORPHAN: {old}}
    assert findings(registry, backend, grace=3601)[0] == {}
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=7200)
    assert findings(registry, backend, grace=3601, now=later)[0] == {Outcome.ORPHAN: {old, new}}
    assert findings(registry, backend, grace=0)[0] == {Outcome.ORPHAN: {old, new}}


def test_an_image_that_references_the_data_meanwhile_keeps_it(
    backend: FilesystemBackend, tmp_path: Path
) -> None:
    """Between the registry read and the removal an image recorded the data (its upload
    ended): the removal reads the image again and keeps it."""
    registry = sqlite_registry(tmp_path / "data")
    image_id = new_id()
    location = backend.add(image_id, iter([b"late"])).location

    class Recording(type(backend)):  # type: ignore[misc]
        def list_items(self):  # type: ignore[no-untyped-def]
            for item in super().list_items():
                record(registry, [location], image_id=image_id)
                yield item

    late = Recording(backend.config, name=backend.name)
    found, _ = findings(registry, late, delete=True)
    assert found == {Outcome.KEPT: {location}}
    assert read_all(backend, location) == b"late"


def test_a_store_whose_writes_are_disabled_reports_but_keeps(
    backend: FilesystemBackend, tmp_path: Path
) -> None:
    registry = sqlite_registry(tmp_path / "data")
    location = backend.add(new_id(), iter([b"orphan"])).location
    backend.disable_writes(errors.BadStoreConfig("read-only filesystem"))
    found, _ = findings(registry, backend, delete=True)
    assert found == {Outcome.KEPT: {location}}
    assert read_all(backend, location) == b"orphan"


def test_a_store_that_cannot_list_is_reported(tmp_path: Path) -> None:
    class Unlisted(FilesystemBackend):
        capabilities = FilesystemBackend.capabilities - {
            __import__("tank.store").store.Capability.LIST
        }

    registry = sqlite_registry(tmp_path / "data")
    backend = Unlisted(Unlisted.Config(datadir=str(tmp_path / "images")), name="plain")
    found, _ = findings(registry, backend)
    assert found == {Outcome.UNLISTED: {"store type file cannot list what it holds"}}
    with pytest.raises(errors.ReadOnlyStore, match="store 'plain' \\(file\\) cannot list"):
        backend.stored()
