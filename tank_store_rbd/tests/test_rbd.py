"""What RBD users rely on beyond the shared contract, checked on the real cluster.

Compute hosts clone the protected snapshot, so it must exist and be protected, and a
delete must never pull it from under a clone. Uploads of unknown length, aborts and
an unreachable cluster must leave nothing behind and never hang.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import uuid
from typing import Any

import pytest

from tank import errors
from tank.testing import irregular_chunks, pattern, read_all
from tank_store_rbd import RBDBackend

KiB, MiB = 1 << 10, 1 << 20


def new_id() -> str:
    return str(uuid.uuid4())


def test_add_makes_a_protected_snapshot_to_clone(backend: Any, ceph: Any) -> None:
    data = pattern(3 * MiB + 5, seed=1)
    image_id = new_id()
    stored = backend.add(image_id, iter([data]), size=len(data))
    assert stored.location == f"rbd://{ceph.fsid}/{ceph.pool}/{image_id}/snap"
    with ceph.image(image_id, read_only=True) as image:
        assert not image.old_format()
        assert image.features() & ceph.rbd.RBD_FEATURE_LAYERING
        assert image.stat()["obj_size"] == 8 * MiB
        assert [s["name"] for s in image.list_snaps()] == ["snap"]
        assert image.is_protected_snap("snap")
        assert image.size() == len(data)
    with ceph.image(image_id, snapshot="snap", read_only=True) as snap:
        assert snap.read(0, len(data)) == data
    assert backend.direct_url(stored.location) == stored.location


def test_delete_is_refused_while_a_clone_exists(backend: Any, ceph: Any) -> None:
    data = pattern(MiB + 1, seed=2)
    image_id = new_id()
    location = backend.add(image_id, iter([data])).location
    child = f"{image_id}-vm-disk"
    ceph.rbd.RBD().clone(
        ceph.ioctx, image_id, "snap", ceph.ioctx, child, features=ceph.rbd.RBD_FEATURE_LAYERING
    )
    try:
        with pytest.raises(errors.InUse, match="in use by 1 clone") as info:
            backend.delete(location)
        assert info.value.http_status == 409
        assert read_all(backend, location) == data
        with ceph.image(image_id, read_only=True) as image:
            assert image.is_protected_snap("snap")
    finally:
        ceph.purge(child)
    backend.delete(location)
    assert image_id not in ceph.images()
    with pytest.raises(errors.NotFound):
        backend.get_size(location)


def test_delete_is_refused_while_another_client_has_it_open(backend: Any, ceph: Any) -> None:
    image_id = new_id()
    location = backend.add(image_id, iter([b"mapped"])).location
    with ceph.image(image_id):  # a read-write open registers a watch, as `rbd map` does
        with pytest.raises(errors.InUse, match="open by 1 other client"):
            backend.delete(location)
    with ceph.image(image_id, read_only=True) as image:
        assert image.is_protected_snap("snap")
    backend.delete(location)
    assert image_id not in ceph.images()


def test_unknown_length_upload_grows_then_trims(make_backend: Any, ceph: Any) -> None:
    # 64 KiB objects: the image grows in several steps (512 KiB, 1 MiB, 2 MiB, ...)
    backend = make_backend(chunk_size=64 * KiB)
    data = pattern(5 * MiB + 3, seed=3)
    image_id = new_id()
    stored = backend.add(image_id, irregular_chunks(data))
    assert stored.size == len(data)
    with ceph.image(image_id, read_only=True) as image:
        assert image.size() == len(data)
        assert image.stat()["obj_size"] == 64 * KiB
    assert backend.get_size(stored.location) == len(data)
    assert read_all(backend, stored.location) == data


@pytest.mark.parametrize("size", [None, 3 * MiB], ids=["unknown-size", "known-size"])
def test_abort_leaves_nothing(backend: Any, ceph: Any, size: int | None) -> None:
    image_id = new_id()
    writer = backend.open_writer(image_id, size)
    for chunk in irregular_chunks(pattern(2 * MiB + 7)):
        writer.write(chunk)
    assert image_id in ceph.images()
    writer.abort()
    writer.abort()  # idempotent
    assert image_id not in ceph.images()
    assert backend.cluster.leases == 0


def test_failed_upload_leaves_nothing(backend: Any, ceph: Any) -> None:
    def client_goes_away() -> Any:
        yield pattern(9 * MiB)
        raise ConnectionResetError("client went away")

    image_id = new_id()
    with pytest.raises(ConnectionResetError):
        backend.add(image_id, client_goes_away())
    assert image_id not in ceph.images()
    assert backend.cluster.leases == 0


BLOCK = 64 * KiB  # object size and io_size of the thin-provisioning tests: one write per object

#: Images as runs of 64 KiB blocks: "d" data, "0" zeros; the last block is cut short.
ZERO_LAYOUTS = {
    "leading": "000dd",
    "middle": "d000d",
    "trailing": "dd000",
    "all zero": "00000",
}


def layout_data(layout: str) -> bytes:
    blocks = [
        pattern(BLOCK, seed=i) if kind == "d" else bytes(BLOCK) for i, kind in enumerate(layout)
    ]
    return b"".join(blocks)[: len(layout) * BLOCK - 9]


def allocated(ceph: Any, image_id: str, size: int) -> list[tuple[int, int]]:
    """The extents of the snapshot that hold written data (what ``rbd du`` counts)."""
    extents: list[tuple[int, int]] = []
    with ceph.image(image_id, snapshot="snap", read_only=True) as image:
        image.diff_iterate(
            0, size, None, lambda off, n, exists: extents.append((off, n)) if exists else None
        )
    return sorted(extents)


def blocks_of(extents: list[tuple[int, int]]) -> set[int]:
    return {b for off, n in extents for b in range(off // BLOCK, -(-(off + n) // BLOCK))}


@pytest.mark.parametrize("known_size", [True, False], ids=["known size", "unknown size"])
@pytest.mark.parametrize("layout", ZERO_LAYOUTS.values(), ids=ZERO_LAYOUTS.keys())
def test_thin_provisioning_skips_zero_writes(
    make_backend: Any, ceph: Any, layout: str, known_size: bool
) -> None:
    backend = make_backend(chunk_size=BLOCK, io_size=BLOCK, thin_provisioning=True)
    data = layout_data(layout)
    image_id = new_id()
    chunks = (data[i : i + BLOCK] for i in range(0, len(data), BLOCK))
    stored = backend.add(image_id, chunks, size=len(data) if known_size else None)

    assert stored.size == len(data)
    assert stored.checksums.md5 == hashlib.md5(data).hexdigest()
    assert stored.checksums.hash_value == hashlib.sha256(data).hexdigest()
    assert read_all(backend, stored.location) == data  # the holes read back as zeros
    assert backend.get_size(stored.location) == len(data)
    data_blocks = {i for i, kind in enumerate(layout) if kind == "d"}
    assert blocks_of(allocated(ceph, image_id, len(data))) == data_blocks


@pytest.mark.parametrize("layout", ZERO_LAYOUTS.values(), ids=ZERO_LAYOUTS.keys())
def test_without_thin_provisioning_zeros_are_written(
    make_backend: Any, ceph: Any, layout: str
) -> None:
    backend = make_backend(chunk_size=BLOCK, io_size=BLOCK)
    assert not backend.config.thin_provisioning  # the default, as Glance's
    data = layout_data(layout)
    image_id = new_id()
    stored = backend.add(image_id, irregular_chunks(data), size=len(data))

    assert stored.checksums.md5 == hashlib.md5(data).hexdigest()
    assert stored.checksums.hash_value == hashlib.sha256(data).hexdigest()
    assert read_all(backend, stored.location) == data
    assert blocks_of(allocated(ceph, image_id, len(data))) == set(range(len(layout)))


def test_thin_provisioning_with_small_unaligned_chunks(make_backend: Any, ceph: Any) -> None:
    # chunks smaller than io_size are gathered into io_size writes, each checked for zeros
    backend = make_backend(chunk_size=BLOCK, io_size=BLOCK, thin_provisioning=True)
    data = layout_data("d00d0")
    image_id = new_id()
    chunks = irregular_chunks(data, sizes=(1, 4095, 7, 30000))
    stored = backend.add(image_id, chunks)

    assert stored.checksums.hash_value == hashlib.sha256(data).hexdigest()
    assert read_all(backend, stored.location) == data
    assert blocks_of(allocated(ceph, image_id, len(data))) == {0, 3}


def test_legacy_short_locations(backend: Any, ceph: Any) -> None:
    data = pattern(100 * KiB, seed=6)
    image_id = new_id()
    full = backend.add(image_id, iter([data])).location
    short = f"rbd://{image_id}"
    assert read_all(backend, short) == data
    assert backend.get_size(short) == len(data)
    assert backend.direct_url(short) == full

    # a very old Glance image: no snapshot, read from the head
    bare = new_id()
    backend.created.add(bare)
    ceph.rbd.RBD().create(ceph.ioctx, bare, 5, old_format=False, features=1)
    with ceph.image(bare) as image:
        image.write(b"hello", 0)
    assert read_all(backend, f"rbd://{bare}") == b"hello"
    assert backend.direct_url(f"rbd://{bare}") is None
    backend.delete(f"rbd://{bare}")
    assert bare not in ceph.images()


def test_location_on_another_cluster_is_not_found(backend: Any, ceph: Any) -> None:
    image_id = new_id()
    location = backend.add(image_id, iter([b"ours"])).location
    elsewhere = location.replace(ceph.fsid, str(uuid.uuid4()))
    with pytest.raises(errors.NotFound, match="is on Ceph cluster"):
        backend.get_size(elsewhere)
    with pytest.raises(errors.NotFound):
        backend.delete(elsewhere)
    assert read_all(backend, location) == b"ours"


def test_reads_let_go_of_the_cluster(backend: Any) -> None:
    data = pattern(20 * MiB + 1, seed=7)
    location = backend.add(new_id(), iter([data])).location
    io = backend.config.io_size
    with backend.get(location) as result:
        assert next(iter(result)) == data[:io]
    assert backend.cluster.leases == 0
    backend.get(location, 5, 10).close()  # never iterated
    assert backend.cluster.leases == 0
    with backend.get(location, 8 * MiB - 1, 2 * io) as result:
        assert [len(c) for c in result] == [1, io, io - 1]  # later reads are io_size-aligned

    # closing the store waits for the read still streaming, then disconnects
    result = backend.get(location)
    backend.close()
    assert b"".join(result) == data
    assert backend.cluster.leases == 0
    with pytest.raises(errors.StoreUnavailable):
        backend.get_size(location)


def test_client_neither_caches_nor_copies_writes(backend: Any) -> None:
    """Memory per transfer rests on these: no librbd cache, writes sent from Tank's chunks."""
    with backend.cluster.lease() as handle:
        assert handle.conf_get("rbd_cache") == "false"
        assert handle.conf_get("rbd_disable_zero_copy_writes") == "false"


def test_image_features_are_configurable(make_backend: Any, ceph: Any) -> None:
    features = ("layering", "exclusive-lock", "object-map", "fast-diff")
    backend = make_backend(features=features)
    image_id = new_id()
    location = backend.add(image_id, iter([b"x" * 5000])).location
    rbd = ceph.rbd
    wanted = (
        rbd.RBD_FEATURE_LAYERING
        | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
        | rbd.RBD_FEATURE_OBJECT_MAP
        | rbd.RBD_FEATURE_FAST_DIFF
    )
    with ceph.image(image_id, read_only=True) as image:
        assert image.features() == wanted
    backend.delete(location)
    assert image_id not in ceph.images()


def test_missing_pool_disables_writes(make_backend: Any) -> None:
    backend = make_backend(pool=f"no-such-pool-{uuid.uuid4().hex[:8]}")
    with pytest.raises(errors.BadStoreConfig, match="does not exist"):
        backend.check_writable()
    with pytest.raises(errors.BadStoreConfig, match="does not exist"):
        backend.add(new_id(), iter([b"x"]))


def test_unreachable_cluster_fails_within_the_connect_timeout(
    tmp_path: Any, free_port: int
) -> None:
    pytest.importorskip("rados", reason="rados bindings not importable (ceph.sh python-link)")
    conf = tmp_path / "ceph.conf"
    conf.write_text(
        f"[global]\nmon host = 127.0.0.1:{free_port}\n"
        "auth cluster required = none\nauth service required = none\n"
        "auth client required = none\n"
    )
    timeout = 2
    backend = RBDBackend(
        RBDBackend.Config(pool="tank", ceph_conf=str(conf), connect_timeout=timeout)
    )
    location = "rbd://e7f613a4-4442-4ee2-8cec-25feb691d200/tank/nothing/snap"
    calls = [
        lambda: backend.get_size(location),
        lambda: backend.add(new_id(), iter([b"data"])),
        lambda: backend.delete(location),
    ]
    connects = []
    connect = backend.cluster._connect

    def counted_connect() -> Any:
        connects.append(1)
        return connect()

    backend.cluster._connect = counted_connect  # type: ignore[method-assign]
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        failures = [f.exception(timeout=60) for f in futures]
    assert all(isinstance(f, errors.StoreUnavailable) for f in failures), failures
    assert all("timeout 2s" in str(f) for f in failures), failures
    # one connect attempt for all three: callers queued behind it share its failure
    # instead of each waiting out the timeout in turn
    assert len(connects) == 1, connects

    backend.check_writable()  # logs, but does not disable writes for good
    assert backend.write_disabled is None
    backend.close()


# --- what an upload whose process died leaves (remove_partial) --------------------------


def test_remove_partial_removes_the_image_a_killed_writer_left(backend: Any, ceph: Any) -> None:
    """A tank-api killed mid-upload never aborts: its RBD image stays. While the dead
    process's watch has not expired the image is left (never forced); then it goes,
    and another image in the pool stays."""
    other = backend.add(new_id(), iter([b"keep"]))
    image_id = new_id()
    writer = backend.open_writer(image_id, None)
    for chunk in irregular_chunks(pattern(2 * MiB + 7, seed=4)):
        writer.write(chunk)

    (left,) = backend.remove_partial(image_id)
    assert left.startswith(f"not removed: RBD image {ceph.pool}/{image_id}")
    assert "open by 1 other client" in left
    assert image_id in ceph.images()

    while writer._pending:  # the "kill": handles gone, no abort (the watch expired)
        writer._reap()
    writer._close()
    assert image_id in ceph.images()
    assert backend.remove_partial(image_id) == [f"RBD image {ceph.pool}/{image_id}"]
    assert image_id not in ceph.images()
    assert backend.remove_partial(image_id) == []
    assert read_all(backend, other.location) == b"keep"
    assert backend.cluster.leases == 0


def test_remove_partial_removes_an_image_committed_but_never_recorded(
    backend: Any, ceph: Any
) -> None:
    """Killed between the store's commit and the registry's record: the image and its
    protected snapshot are there and no Tank image points at them."""
    other = backend.add(new_id(), iter([b"keep"]))
    image_id = new_id()
    backend.add(image_id, iter([pattern(MiB + 3, seed=5)]))
    assert backend.remove_partial(image_id) == [
        f"snapshot {ceph.pool}/{image_id}@snap",
        f"RBD image {ceph.pool}/{image_id}",
    ]
    assert image_id not in ceph.images()
    assert backend.remove_partial(image_id) == []
    assert read_all(backend, other.location) == b"keep"


def test_remove_partial_never_removes_an_image_with_clones(backend: Any, ceph: Any) -> None:
    data = pattern(MiB + 1, seed=6)
    image_id = new_id()
    location = backend.add(image_id, iter([data])).location
    child = f"{image_id}-vm-disk"
    ceph.rbd.RBD().clone(
        ceph.ioctx, image_id, "snap", ceph.ioctx, child, features=ceph.rbd.RBD_FEATURE_LAYERING
    )
    try:
        (left,) = backend.remove_partial(image_id)
        assert left.startswith(f"not removed: RBD image {ceph.pool}/{image_id}")
        assert "in use by 1 clone" in left
        with ceph.image(image_id, read_only=True) as image:
            assert image.is_protected_snap("snap")
        assert read_all(backend, location) == data
        assert child in ceph.images()
    finally:
        ceph.purge(child)
    assert len(backend.remove_partial(image_id)) == 2
    assert image_id not in ceph.images()


def test_remove_partial_of_an_image_never_written(backend: Any) -> None:
    assert backend.remove_partial(new_id()) == []
    assert backend.remove_partial("not/a-name") == []
