"""Orphans in the RBD store (issue 15), on the real Ceph: the store lists the RBD
images of its pool named by an image id, with their snapshots (and clones), nothing
else; the orphan scan against a real (SQLite) registry reports exactly those no image
references, respects the grace period and removes only them, never one with clones.

The test pool is shared by every test (and every engineer) at once, so the scans here
go through :class:`OnlyMine`, the real store with its listing cut down to the images
this test made: a scan with ``delete`` must never reach anyone else's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tank import errors
from tank.model import Status
from tank.scrubber.orphans import Outcome
from tank.store import ItemKind, StoredItem
from tank.testing import pattern, read_all
from tank.testing.orphans import findings, new_id, record, sqlite_registry

from .conftest import MiB, RecordingRBDBackend


class OnlyMine(RecordingRBDBackend):
    def list_items(self):  # type: ignore[no-untyped-def]
        return (i for i in super().list_items() if i.image_id in self.created)


def kill_mid_upload(backend: Any, image_id: str) -> None:
    """What a tank-api killed mid-upload leaves: an RBD image without its snapshot."""
    writer = backend.open_writer(image_id, None)
    writer.write(pattern(MiB + 5, seed=2))
    while writer._pending:  # the "kill": handles gone, no abort (the watch expired)
        writer._reap()
    writer._close()


def test_listing_is_tanks_images_only(backend: Any, ceph: Any) -> None:
    data_id, partial_id = new_id(), new_id()
    location = backend.add(data_id, iter([pattern(MiB + 1, seed=1)])).location
    kill_mid_upload(backend, partial_id)
    child = f"{data_id}-vm-disk"
    foreign = f"backup-{new_id()}"
    try:
        ceph.rbd.RBD().clone(
            ceph.ioctx, data_id, "snap", ceph.ioctx, child, features=ceph.rbd.RBD_FEATURE_LAYERING
        )
        ceph.rbd.RBD().create(ceph.ioctx, foreign, MiB)
        items = {i.image_id: i for i in backend.stored()}
    finally:
        ceph.purge(child)  # before the session's purge of its parent
        ceph.purge(foreign)

    assert child not in items and foreign not in items
    data = items[data_id]
    assert (data.kind, data.location, data.size, data.name) == (
        ItemKind.DATA,
        location,
        MiB + 1,
        f"{ceph.pool}/{data_id}",
    )
    assert data.detail == "snapshots: snap (protected) with 1 clone"
    partial = items[partial_id]
    assert (partial.kind, partial.location, partial.detail) == (
        ItemKind.PARTIAL,
        location.replace(data_id, partial_id),
        "no snapshot",
    )
    assert data.modified is not None and partial.modified is not None


def test_orphans_are_what_no_image_references(make_backend: Any, ceph: Any, tmp_path: Path) -> None:
    backend = make_backend()
    mine = OnlyMine(backend.config, name=backend.name)
    mine.created = backend.created  # the images this test makes, through either
    registry = sqlite_registry(tmp_path / "data")
    kept = {}
    for status in (Status.ACTIVE, Status.DELETED, Status.PENDING_DELETE):
        image_id = new_id()
        kept[status] = backend.add(image_id, iter([status.value.encode()])).location
        record(registry, [kept[status]], image_id=image_id, status=status)
    legacy_id = new_id()  # a very old Glance location: rbd://<image>
    kept[Status.KILLED] = backend.add(legacy_id, iter([b"legacy"])).location
    record(registry, [f"rbd://{legacy_id}"], image_id=legacy_id, status=Status.KILLED)
    # orphans: an image with its snapshot, one never finished, one with a clone
    lost_id, partial_id, cloned_id = new_id(), new_id(), new_id()
    lost = backend.add(lost_id, iter([b"lost"])).location
    kill_mid_upload(backend, partial_id)
    partial = lost.replace(lost_id, partial_id)
    cloned = backend.add(cloned_id, iter([b"cloned"])).location
    child = f"{cloned_id}-vm-disk"
    ceph.rbd.RBD().clone(
        ceph.ioctx, cloned_id, "snap", ceph.ioctx, child, features=ceph.rbd.RBD_FEATURE_LAYERING
    )
    try:
        # an upload in progress
        saving_id = new_id()
        record(registry, image_id=saving_id, status=Status.SAVING)
        kill_mid_upload(backend, saving_id)

        found, tally = findings(registry, mine, grace=3600)
        assert found == {}
        assert (tally.listed, tally.referenced, tally.in_progress, tally.young) == (8, 4, 1, 3)

        found, _ = findings(registry, mine, grace=0)
        assert found == {Outcome.ORPHAN: {lost, partial, cloned}}

        found, _ = findings(registry, mine, grace=0, delete=True)
        assert found == {Outcome.REMOVED: {lost, partial}, Outcome.KEPT: {cloned}}
        images = ceph.images()
        assert lost_id not in images and partial_id not in images
        assert {cloned_id, child, saving_id} <= images
        with ceph.image(cloned_id, read_only=True) as image:
            assert image.is_protected_snap("snap")
        assert read_all(backend, cloned) == b"cloned"
        for status, location in kept.items():
            expected = b"legacy" if status is Status.KILLED else status.value.encode()
            assert read_all(backend, location) == expected
        assert findings(registry, mine, grace=0)[0] == {Outcome.ORPHAN: {cloned}}
    finally:
        ceph.purge(child)  # before the session's purge of its parent
        mine.close()


def test_an_image_with_a_snapshot_tank_did_not_make_stays(backend: Any, ceph: Any) -> None:
    image_id = new_id()
    location = backend.add(image_id, iter([b"data"])).location
    with ceph.image(image_id) as image:
        image.create_snap("operator-backup")
    (item,) = [i for i in backend.stored() if i.image_id == image_id]
    assert isinstance(item, StoredItem)
    assert item.detail == "snapshots: snap (protected), operator-backup"
    with pytest.raises(errors.InUse, match=r"snapshots Tank did not make \(operator-backup\)"):
        backend.remove_stored(item)
    assert read_all(backend, location) == b"data"
