"""The store contract suite: what every :class:`tank.store.Backend` must do.

A store's test module subclasses :class:`BackendContract` and supplies fixtures::

    from tank.testing import BackendContract

    class TestMyStoreContract(BackendContract):
        @pytest.fixture
        def backend(self, tmp_path):
            return MyBackend(MyBackend.Config(...), name="mine")

        def list_stored(self, backend):
            return set(...)        # every object/file the store holds right now

        def missing_location(self, backend):
            return "mine://nowhere/0000"

The class name does not start with ``Test``, so pytest collects it only through
subclasses. Tests needing a capability the store lacks (read-only stores) skip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import stat
import threading
import tracemalloc
import uuid
from collections.abc import Iterator

import pytest

from tank import errors
from tank.image_format import FormatCheck
from tank.store import Backend, Capability, ItemKind
from tank.testing.reading import read_all

MiB = 1 << 20


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking test data of ``size`` bytes."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    reps = size // len(block) + 1
    return (block * reps)[:size]


def irregular_chunks(
    data: bytes, sizes: tuple[int, ...] = (1, 4095, 65536, 7, MiB + 3)
) -> Iterator[bytes]:
    """``data`` cut into chunks of varying, unaligned sizes (a stream of unknown length)."""
    pos, i = 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        yield data[pos : pos + step]
        pos += step
        i += 1


def generated_stream(total: int, chunk: int = MiB) -> Iterator[bytes]:
    """``total`` bytes made on the fly, never held whole (for memory tests).

    Every chunk is a new object, so a store that keeps references to what it was
    given shows up in the memory tests.
    """
    block = os.urandom(chunk)
    sent, i = 0, 0
    while sent < total:
        n = min(chunk, total - sent)
        yield (i.to_bytes(8, "big") + block[8:n]) if n > 8 else block[:n]
        sent += n
        i += 1


class Boom(Exception):
    """Raised by a test data source to simulate a client that goes away mid-upload."""


def failing_stream(good: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < good:
        n = min(chunk, good - sent)
        yield b"x" * n
        sent += n
    raise Boom("client went away")


def new_id() -> str:
    return str(uuid.uuid4())


class BackendContract:
    """Mix-in test class. Subclass it as ``Test<Store>Contract`` and supply fixtures."""

    #: Bytes for the "several MiB of unknown length" round trip.
    large_size: int = 9 * MiB + 123
    #: Bytes streamed through add/get in the memory tests.
    stream_size: int = 96 * MiB
    #: Python heap growth allowed while streaming ``stream_size`` bytes.
    memory_limit: int = 40 * MiB

    # --- fixtures a store supplies ----------------------------------------------------

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError("override the `backend` fixture to return a configured store")

    def list_stored(self, backend: Backend) -> set[str]:
        """Names of everything the store holds now (files, objects, RBD images...)."""
        raise NotImplementedError("override list_stored() to list the store's objects")

    def missing_location(self, backend: Backend) -> str:
        """A well-formed location of this store where no data exists."""
        raise NotImplementedError("override missing_location()")

    def seed(self, backend: Backend, data: bytes) -> str:
        """Put ``data`` in the store by the store's own means and return its location.

        Writable stores use ``add``; read-only stores override this.
        """
        return backend.add(new_id(), iter([data]) if data else iter(()), size=len(data)).location

    # --- helpers ------------------------------------------------------------------

    def _writable(self, backend: Backend) -> None:
        if Capability.WRITE not in backend.capabilities:
            pytest.skip(f"store {backend.type_name} is read-only")

    # --- round trips ---------------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 4096])
    def test_small_round_trip(self, backend: Backend, size: int) -> None:
        data = pattern(size, seed=size)
        location = self.seed(backend, data)
        assert read_all(backend, location) == data
        assert backend.get_size(location) == size

    def test_add_reports_size_and_checksums(self, backend: Backend) -> None:
        self._writable(backend)
        data = pattern(3 * MiB + 17)
        stored = backend.add(new_id(), irregular_chunks(data))
        assert stored.size == len(data)
        assert stored.checksums.md5 == hashlib.md5(data).hexdigest()
        assert stored.checksums.hash_algo == "sha256"  # the default multihash
        assert stored.checksums.hash_value == hashlib.sha256(data).hexdigest()
        backend.check_location(stored.location)  # raises if not one of its schemes

    @pytest.mark.parametrize("algorithm", ["sha512", "sha3_256"])
    def test_add_computes_the_multihash_it_is_given(self, backend: Backend, algorithm: str) -> None:
        """``[api] hashing_algorithm`` reaches every store through ``add(hash_algo=)``:
        the store needs no code for it, the template computes it with the MD5."""
        self._writable(backend)
        data = pattern(2 * MiB + 9, seed=21)
        stored = backend.add(new_id(), irregular_chunks(data), size=len(data), hash_algo=algorithm)
        assert stored.checksums.md5 == hashlib.md5(data).hexdigest()
        assert stored.checksums.hash_algo == algorithm
        assert stored.checksums.hash_value == hashlib.new(algorithm, data).hexdigest()
        assert read_all(backend, stored.location) == data
        unknown = backend.add(new_id(), irregular_chunks(data), hash_algo=algorithm)  # no size
        assert unknown.checksums.hash_value == stored.checksums.hash_value

    @pytest.mark.parametrize("algorithm", ["md5", "shake_256", "sha-512", "nope"])
    def test_unknown_multihash_is_refused_before_writing(
        self, backend: Backend, algorithm: str
    ) -> None:
        self._writable(backend)
        before = self.list_stored(backend)
        read: list[bytes] = []

        def data() -> Iterator[bytes]:
            read.append(b"x")
            yield b"x"

        with pytest.raises(errors.ConfigError, match="hashing_algorithm"):
            backend.add(new_id(), data(), hash_algo=algorithm)
        assert read == []  # not a byte of the client's data was taken
        assert self.list_stored(backend) == before

    def test_large_unknown_length_round_trip(self, backend: Backend) -> None:
        self._writable(backend)
        data = pattern(self.large_size, seed=7)
        stored = backend.add(new_id(), irregular_chunks(data))
        assert stored.size == len(data)
        assert backend.get_size(stored.location) == len(data)
        got = read_all(backend, stored.location)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()

    def test_known_length_from_file(self, backend: Backend) -> None:
        self._writable(backend)
        data = pattern(2 * MiB + 5, seed=3)
        stored = backend.add(new_id(), io.BytesIO(data), size=len(data))
        assert read_all(backend, stored.location) == data

    def test_empty_image(self, backend: Backend) -> None:
        self._writable(backend)
        stored = backend.add(new_id(), iter(()))
        assert stored.size == 0
        assert stored.checksums.md5 == hashlib.md5(b"").hexdigest()
        assert read_all(backend, stored.location) == b""

    # --- ranges -------------------------------------------------------------------

    @pytest.mark.parametrize(
        "offset,length",
        [(0, 10), (5, None), (1000, 1), (0, None), (4095, 1), (2 * MiB - 1, 3)],
    )
    def test_range_reads(self, backend: Backend, offset: int, length: int | None) -> None:
        data = pattern(2 * MiB + 1, seed=11)
        location = self.seed(backend, data)
        end = None if length is None else offset + length
        assert read_all(backend, location, offset, length) == data[offset:end]

    def test_range_past_end_is_clipped(self, backend: Backend) -> None:
        data = pattern(1000, seed=5)
        location = self.seed(backend, data)
        assert read_all(backend, location, 990, 100) == data[990:]
        assert read_all(backend, location, 1000, None) == b""
        assert read_all(backend, location, 5000, 10) == b""

    def test_total_size_reported_on_range(self, backend: Backend) -> None:
        data = pattern(5000, seed=6)
        location = self.seed(backend, data)
        with backend.get(location, 100, 50) as result:
            assert result.size == 50
            assert result.total_size == 5000
            assert b"".join(result) == data[100:150]

    @pytest.mark.parametrize("offset,length", [(0, None), (4095, MiB + 3), (2 * MiB, 10)])
    def test_offered_fd_holds_the_chunks_bytes(
        self, backend: Backend, offset: int, length: int | None
    ) -> None:
        """A store may offer its local file (``ReadResult.fd``) for ``sendfile``: the
        ``size`` bytes from ``offset`` must be what ``chunks`` yields."""
        data = pattern(2 * MiB + 1, seed=13)
        location = self.seed(backend, data)
        end = None if length is None else offset + length
        with backend.get(location, offset, length) as result:
            if result.fd is None:
                pytest.skip(f"store {backend.type_name} offers no file descriptor")
            assert stat.S_ISREG(os.fstat(result.fd).st_mode)
            os.lseek(result.fd, 0, os.SEEK_END)  # the file position is the consumer's
            from_fd = b""
            while len(from_fd) < result.size:
                piece = os.pread(
                    result.fd, result.size - len(from_fd), result.offset + len(from_fd)
                )
                assert piece, "the file ends before size bytes from offset"
                from_fd += piece
            from_chunks = b"".join(result.chunks)
        assert result.fd is None  # closed with the result
        assert from_fd == from_chunks == data[offset:end]

    def test_negative_range_rejected(self, backend: Backend) -> None:
        location = self.seed(backend, b"abc")
        with pytest.raises(errors.Invalid):
            backend.get(location, -1)

    # --- errors -------------------------------------------------------------------

    def test_get_missing_is_not_found(self, backend: Backend) -> None:
        location = self.missing_location(backend)
        with pytest.raises(errors.NotFound):
            with backend.get(location) as result:
                b"".join(result)
        with pytest.raises(errors.NotFound):
            backend.get_size(location)

    def test_unknown_scheme(self, backend: Backend) -> None:
        with pytest.raises(errors.UnknownScheme):
            backend.get("nosuchscheme://x/y")
        with pytest.raises(errors.UnknownScheme):
            backend.get_size("nosuchscheme://x/y")
        if Capability.DELETE in backend.capabilities:
            with pytest.raises(errors.UnknownScheme):
                backend.delete("nosuchscheme://x/y")

    def test_delete(self, backend: Backend) -> None:
        if Capability.DELETE not in backend.capabilities:
            location = self.seed(backend, b"data")
            with pytest.raises(errors.ReadOnlyStore):
                backend.delete(location)
            assert read_all(backend, location) == b"data"
            return
        before = self.list_stored(backend)
        location = self.seed(backend, b"some data")
        backend.delete(location)
        with pytest.raises(errors.NotFound):
            backend.get_size(location)
        with pytest.raises(errors.NotFound):
            backend.delete(location)
        assert self.list_stored(backend) == before

    def test_disabled_writes_refuse_delete(self, backend: Backend) -> None:
        """A store whose writes were disabled at start-up (``check_writable`` failed, so
        Tank set ``write_disabled``) keeps its data: it neither deletes nor writes."""
        location = self.seed(backend, b"kept")
        before = self.list_stored(backend)
        backend.write_disabled = "disabled by the contract test"
        try:
            with pytest.raises(errors.ReadOnlyStore):
                backend.delete(location)
            with pytest.raises(errors.ReadOnlyStore):
                backend.add(new_id(), iter([b"x"]))
            assert read_all(backend, location) == b"kept"
            assert backend.get_size(location) == 4
        finally:
            backend.write_disabled = None
        assert self.list_stored(backend) == before

    def test_duplicate_keeps_first(self, backend: Backend) -> None:
        self._writable(backend)
        image_id = new_id()
        stored = backend.add(image_id, iter([b"first"]))
        with pytest.raises(errors.Duplicate):
            backend.add(image_id, iter([b"second!"]))
        assert read_all(backend, stored.location) == b"first"

    def test_read_only_store_refuses_add(self, backend: Backend) -> None:
        if Capability.WRITE in backend.capabilities:
            pytest.skip("store is writable")
        with pytest.raises(errors.ReadOnlyStore):
            backend.add(new_id(), iter([b"x"]))

    # --- nothing left behind after a failure ------------------------------------------

    def test_failed_stream_leaves_nothing(self, backend: Backend) -> None:
        self._writable(backend)
        before = self.list_stored(backend)
        with pytest.raises(Boom):
            backend.add(new_id(), failing_stream(3 * MiB + 100))
        assert self.list_stored(backend) == before

    def test_size_mismatch_leaves_nothing(self, backend: Backend) -> None:
        self._writable(backend)
        before = self.list_stored(backend)
        with pytest.raises(errors.SizeMismatch):
            backend.add(new_id(), iter([b"12345"]), size=10)
        with pytest.raises(errors.SizeMismatch):
            backend.add(new_id(), iter([b"12345", b"678"]), size=4)
        assert self.list_stored(backend) == before

    def test_checksum_mismatch_leaves_nothing(self, backend: Backend) -> None:
        self._writable(backend)
        before = self.list_stored(backend)
        with pytest.raises(errors.ChecksumMismatch):
            backend.add(new_id(), iter([b"hello"]), checksum="0" * 32)
        assert self.list_stored(backend) == before
        ok = backend.add(new_id(), iter([b"hello"]), checksum=hashlib.md5(b"hello").hexdigest())
        assert ok.size == 5

    def test_refused_image_format_leaves_nothing(self, backend: Backend) -> None:
        """Data the format inspection refuses (raw bytes as ``qcow2``) is aborted before
        commit, wherever the writer had got to (several parts or segments sent)."""
        self._writable(backend)
        before = self.list_stored(backend)
        check = FormatCheck("qcow2")
        with pytest.raises(errors.InvalidImageData, match="data is raw but disk_format is qcow2"):
            backend.add(new_id(), generated_stream(12 * MiB + 5), check=check)
        assert self.list_stored(backend) == before
        ok = backend.add(new_id(), generated_stream(MiB), check=FormatCheck("raw"))
        assert ok.size == MiB

    def test_size_cap_leaves_nothing(self, backend: Backend) -> None:
        self._writable(backend)
        before = self.list_stored(backend)
        with pytest.raises(errors.ImageTooLarge):
            backend.add(new_id(), generated_stream(3 * MiB), max_size=MiB)
        with pytest.raises(errors.ImageTooLarge):
            backend.add(new_id(), iter([b"x"]), size=MiB + 1, max_size=MiB)
        assert self.list_stored(backend) == before

    # --- concurrency and streaming ------------------------------------------------------

    def test_concurrent_adds(self, backend: Backend) -> None:
        self._writable(backend)
        datas = [pattern(MiB + i, seed=i) for i in range(4)]
        results: dict[int, str] = {}
        failures: list[BaseException] = []

        def upload(i: int) -> None:
            try:
                results[i] = backend.add(new_id(), irregular_chunks(datas[i])).location
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
        for i, data in enumerate(datas):
            assert read_all(backend, results[i]) == data

    def test_streaming_memory_is_bounded(self, backend: Backend) -> None:
        self._writable(backend)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            stored = backend.add(new_id(), generated_stream(self.stream_size))
            write_peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.reset_peak()
            total = 0
            with backend.get(stored.location) as result:
                for chunk in result:
                    total += len(chunk)
            read_peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert total == self.stream_size
        assert write_peak < self.memory_limit, f"add held {write_peak} bytes"
        assert read_peak < self.memory_limit, f"get held {read_peak} bytes"

    # --- listing (optional: Capability.LIST) -------------------------------------------

    def test_listing_finds_written_data_and_removes_it(self, backend: Backend) -> None:
        """A store that lists (:meth:`Backend.stored`) shows data it wrote as ``data``
        at the location ``add`` returned, and ``remove_stored`` removes it; one that
        does not says it cannot list."""
        if Capability.LIST not in backend.capabilities:
            with pytest.raises(errors.ReadOnlyStore, match="cannot list"):
                backend.stored()
            return
        image_id = new_id()
        stored = backend.add(image_id, iter([b"listed"]))
        assert backend.canonical_location(stored.location) == stored.location
        (item,) = [i for i in backend.stored() if i.image_id == image_id]
        assert (item.kind, item.location, item.size) == (ItemKind.DATA, stored.location, 6)
        if item.modified is not None:
            assert item.modified.tzinfo is not None
            assert abs((dt.datetime.now(dt.UTC) - item.modified).total_seconds()) < 600
        backend.remove_stored(item)
        assert [i for i in backend.stored() if i.image_id == image_id] == []
        with pytest.raises(errors.NotFound):
            backend.get(stored.location)
        with pytest.raises(errors.NotFound):
            backend.remove_stored(item)
