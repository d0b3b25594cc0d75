"""Orphans in the chase store (issue 15), on each real server (Swift, Ceph RGW): the
store lists the image-id objects of its containers and the segments of uploads no
manifest uses, nothing else; the orphan scan against a real (SQLite) registry reports
exactly those no image references, respects the grace period and removes only them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tank.model import Status
from tank.scrubber.orphans import Outcome
from tank.store import ItemKind
from tank.testing import pattern, read_all
from tank.testing.orphans import findings, new_id, record, sqlite_registry
from tank_store_chase import ChaseBackend

KiB = 1 << 10
SMALL = {"large_object_size": 256 * KiB, "large_object_chunk_size": 100 * KiB}


def kill_mid_upload(backend: ChaseBackend, image_id: str) -> str:
    """What a tank-api killed mid-upload leaves: segments without a manifest. The id
    of that upload."""
    writer = backend.open_writer(image_id, None)
    writer.write(pattern(250 * KiB, seed=7))
    writer._finish_segments()  # type: ignore[attr-defined]  # they land; then the "kill"
    return writer._upload_id  # type: ignore[attr-defined,no-any-return]


def test_listing_is_tanks_names_only(make_backend: Any, view: Any) -> None:
    backend = make_backend(**SMALL)
    container = backend.config.container
    segments = f"{container}_segments"
    small_id, large_id, dead_id = new_id(), new_id(), new_id()
    small = backend.add(small_id, iter([b"small"])).location
    large = backend.add(large_id, iter([pattern(300 * KiB, seed=1)])).location
    dead_upload = kill_mid_upload(backend, dead_id)
    # an earlier upload of an image that later succeeded left its segments
    again_id = new_id()
    stale_upload = kill_mid_upload(backend, again_id)
    again = backend.add(again_id, iter([pattern(300 * KiB, seed=2)])).location
    view.conn.put_object(container, "notes.txt", b"someone else's")
    view.conn.put_object(segments, f"{new_id()}-00001", b"a Glance segment")

    items = {item.location or item.name: item for item in backend.stored()}

    stale_name = f"{segments}/{again_id}/{stale_upload}/ (3 segments)"
    assert set(items) == {small, large, again, small.replace(small_id, dead_id), stale_name}
    assert (items[small].kind, items[small].image_id, items[small].size) == (
        ItemKind.DATA,
        small_id,
        5,
    )
    assert items[large].kind is ItemKind.DATA
    dead = items[small.replace(small_id, dead_id)]
    assert (dead.kind, dead.image_id, dead.size, dead.detail) == (
        ItemKind.SEGMENTS,
        dead_id,
        250 * KiB,
        "no manifest",
    )
    assert dead.name == f"{segments}/{dead_id}/{dead_upload}/ (3 segments)"
    stale = items[stale_name]
    assert (stale.kind, stale.location, stale.image_id, stale.size) == (
        ItemKind.SEGMENTS,
        None,
        again_id,
        250 * KiB,
    )
    assert stale.detail.startswith("the manifest is upload ")
    for item in items.values():
        assert item.modified is not None
        assert abs((dt.datetime.now(dt.UTC) - item.modified).total_seconds()) < 300


def test_listing_of_a_store_that_wrote_nothing(make_backend: Any) -> None:
    assert list(make_backend().stored()) == []


def test_listing_with_multiple_containers(make_backend: Any) -> None:
    backend = make_backend(multiple_containers_seed=2, **SMALL)
    ids = [new_id() for _ in range(3)]
    locations = {backend.add(i, iter([pattern(300 * KiB, seed=3)])).location for i in ids}
    assert {item.location for item in backend.stored()} == locations


def test_orphans_are_what_no_image_references(
    make_backend: Any, view: Any, server: Any, tmp_path: Path
) -> None:
    backend = make_backend(**SMALL)
    container = backend.config.container
    registry = sqlite_registry(tmp_path / "data")
    kept = {}
    for status, size in ((Status.ACTIVE, 10), (Status.DELETED, 300 * KiB), (Status.KILLED, 20)):
        image_id = new_id()
        kept[status] = backend.add(image_id, iter([pattern(size, seed=4)])).location
        record(registry, [kept[status]], image_id=image_id, status=status)
    # a legacy Glance location (credentials in it) still names its data
    legacy_id = new_id()
    kept[Status.PENDING_DELETE] = backend.add(legacy_id, iter([pattern(30, seed=4)])).location
    auth = server.auth.partition("://")[2]
    glance = f"swift+http://{server.user}:{server.key}@{auth}/{container}/{legacy_id}"
    record(registry, [glance], image_id=legacy_id, status=Status.PENDING_DELETE)
    # orphans: a lost object, a lost large object (manifest and segments), the segments
    # of a dead upload, and the stale segments of an active image's earlier upload
    lost = backend.add(new_id(), iter([b"lost"])).location
    lost_large = backend.add(new_id(), iter([pattern(300 * KiB, seed=5)])).location
    dead_id = new_id()
    kill_mid_upload(backend, dead_id)
    dead = lost.rpartition("/")[0] + f"/{dead_id}"
    again_id = new_id()
    stale_upload = kill_mid_upload(backend, again_id)
    again = backend.add(again_id, iter([b"second try"])).location
    record(registry, [again], image_id=again_id)
    stale = f"{container}_segments/{again_id}/{stale_upload}/ (3 segments)"
    # an upload in progress
    saving_id = new_id()
    record(registry, image_id=saving_id, status=Status.SAVING)
    kill_mid_upload(backend, saving_id)
    view.conn.put_object(container, "notes.txt", b"someone else's")
    before = view.stored(backend)

    found, tally = findings(registry, backend, grace=3600)
    assert found == {}
    assert (tally.listed, tally.referenced, tally.in_progress, tally.young) == (10, 5, 1, 4)

    found, _ = findings(registry, backend, grace=0)
    assert found == {Outcome.ORPHAN: {lost, lost_large, dead, stale}}
    assert view.stored(backend) == before

    found, _ = findings(registry, backend, grace=0, delete=True)
    assert found == {Outcome.REMOVED: {lost, lost_large, dead, stale}}
    gone = {o for o in before if any(f"/{i}" in o for i in (dead_id, f"{again_id}/{stale_upload}"))}
    gone |= {
        o for o in before if lost.rpartition("/")[2] in o or lost_large.rpartition("/")[2] in o
    }
    assert len(gone) == 1 + 4 + 3 + 3  # lost, lost_large with 3 segments, 3 + 3 segments
    assert view.stored(backend) == before - gone
    for location in (*kept.values(), again):
        assert read_all(backend, location)
    assert read_all(backend, kept[Status.DELETED]) == pattern(300 * KiB, seed=4)
    assert findings(registry, backend, grace=0)[0] == {}
    assert server.key not in str(found)
