"""``tank.cache.ImageCache`` on its own (in addition to the end-to-end tests): fills that
must not become visible, one fill across processes, stalled fills, LRU order."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tank.cache import ImageCache
from tank.model import Image, Status
from tank.store import ReadResult


def image_of(data: bytes, **fields: object) -> Image:
    return Image(
        id=str(uuid.uuid4()),
        status=Status.ACTIVE,
        size=len(data),
        checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        **fields,  # type: ignore[arg-type]
    )


def store_read(data: bytes, chunk: int = 1000) -> ReadResult:
    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), chunk):
            yield data[i : i + chunk]

    return ReadResult(size=len(data), total_size=len(data), chunks=chunks())


@pytest.fixture
def cache(tmp_path: Path) -> ImageCache:
    return ImageCache(tmp_path / "cache", max_size=10_000, stall_time=60)


def drain(result: ReadResult) -> bytes:
    with result:
        return b"".join(result.chunks)


def test_fill_then_hit(cache: ImageCache) -> None:
    data = os.urandom(5000)
    image = image_of(data)
    assert cache.open(image) is None
    assert drain(cache.fill(image, store_read(data), lambda: True)) == data
    hit = cache.open(image, 100, 50)
    assert hit is not None and hit.fd is not None and hit.offset == 100
    assert drain(hit) == data[100:150]
    (entry,) = cache.cached()
    assert (entry.image_id, entry.size, entry.hits) == (image.id, 5000, 1)


@pytest.mark.parametrize(
    "served",
    [
        lambda d: d[:-1],  # short
        lambda d: d + b"x",  # long
        lambda d: bytes([d[0] ^ 1]) + d[1:],  # same size, other bytes
    ],
)
def test_data_not_matching_the_image_is_discarded(cache: ImageCache, served: object) -> None:
    data = os.urandom(3000)
    image = image_of(data)
    wrong = served(data)  # type: ignore[operator]
    assert drain(cache.fill(image, store_read(wrong), lambda: True)) == wrong
    assert not cache.is_cached(image.id)
    assert os.listdir(cache.dir / "incomplete") == []


def test_multihash_checked_without_md5(cache: ImageCache) -> None:
    data = os.urandom(3000)
    image = Image(
        id=str(uuid.uuid4()),
        status=Status.ACTIVE,
        size=3000,
        os_hash_algo="sha512",
        os_hash_value=hashlib.sha512(b"other" + data[5:]).hexdigest(),
    )
    drain(cache.fill(image, store_read(data), lambda: True))
    assert not cache.is_cached(image.id)


def test_image_changed_during_fill_is_not_kept(cache: ImageCache) -> None:
    data = os.urandom(3000)
    image = image_of(data)
    drain(cache.fill(image, store_read(data), lambda: False))
    assert not cache.is_cached(image.id)
    assert os.listdir(cache.dir / "incomplete") == []


def test_closed_early_leaves_nothing(cache: ImageCache) -> None:
    data = os.urandom(5000)
    image = image_of(data)
    result = cache.fill(image, store_read(data), lambda: True)
    next(iter(result.chunks))
    result.close()
    assert not cache.is_cached(image.id)
    assert os.listdir(cache.dir / "incomplete") == []


def test_one_fill_across_processes(cache: ImageCache) -> None:
    """Another process holding the claim: this one streams without filling."""
    data = os.urandom(3000)
    image = image_of(data)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from tank.cache import ImageCache; "
            f"c = ImageCache(Path({str(cache.dir)!r}), max_size=10000, stall_time=60); "
            f"fd = c._claim({image.id!r}); print(fd is not None, flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        result = cache.fill(image, store_read(data), lambda: True)
        assert drain(result) == data
        assert not cache.is_cached(image.id)
    finally:
        holder.kill()
        holder.wait()


def test_stalled_fill_is_taken_over(cache: ImageCache) -> None:
    data = os.urandom(3000)
    image = image_of(data)
    stalled = cache.dir / "incomplete" / image.id
    stalled.write_bytes(b"half")
    drain(cache.fill(image, store_read(data), lambda: True))
    assert not cache.is_cached(image.id)  # fresh: someone may still be filling
    old = time.time() - 120
    os.utime(stalled, (old, old))
    drain(cache.fill(image, store_read(data), lambda: True))
    assert cache.entry_path(image.id).read_bytes() == data
    assert cache.clean() == (0, 0)


def test_lru_prune_and_too_big(cache: ImageCache) -> None:
    images = []
    for _ in range(3):
        data = os.urandom(4000)
        image = image_of(data)
        drain(cache.fill(image, store_read(data), lambda: True))
        images.append(image)
        time.sleep(0.02)
        if len(images) == 2:
            drain(cache.open(images[0]))  # type: ignore[arg-type]
            time.sleep(0.02)
    a, b, c = images
    assert cache.is_cached(a.id) and not cache.is_cached(b.id) and cache.is_cached(c.id)
    big = os.urandom(10_001)
    image = image_of(big)
    assert drain(cache.fill(image, store_read(big), lambda: True)) == big
    assert not cache.is_cached(image.id)


def test_ids_are_never_paths(cache: ImageCache) -> None:
    from tank import errors

    with pytest.raises(errors.NotFound):
        cache.queue("../../etc/passwd")
    (cache.dir / "queue" / "not-an-id").touch()
    assert cache.queued() == []


def test_prefetcher_runs_again_in_a_forked_child(tmp_path: Path) -> None:
    """tank-api's pre-forked workers: the queue is served in the child too."""
    from tank import config
    from tank.cache.prefetch import Prefetcher
    from tank.service import ImageService

    cfg = config.load(None, data_dir=tmp_path, environ={})
    with ImageService.from_config(cfg) as service:
        service.attach_cache(ImageCache(tmp_path / "c", max_size=1 << 20, stall_time=60), [])
        prefetcher = service.prefetcher
        assert isinstance(prefetcher, Prefetcher)
        prefetcher.start()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own thread, alive
            thread = prefetcher._thread
            os.write(write, b"1" if thread is not None and thread.is_alive() else b"0")
            os._exit(0)
        os.close(write)
        assert os.read(read, 1) == b"1"
        os.waitpid(pid, 0)
        os.close(read)
