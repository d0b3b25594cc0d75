from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from pathlib import Path

import pytest

from tank.checksums import HASH_ALGORITHMS, StreamHasher
from tank.errors import BadLocation, ConfigError
from tank.locations import redact, scheme_of
from tank.streams import (
    ChunkQueue,
    FileChunks,
    FileTruncated,
    ReadAhead,
    iter_chunks,
    rechunk,
    slice_chunks,
)


def test_iter_chunks_from_file_and_iterable() -> None:
    data = os.urandom(3000)
    assert b"".join(iter_chunks(io.BytesIO(data), 1024)) == data
    assert [len(c) for c in iter_chunks(io.BytesIO(data), 1024)] == [1024, 1024, 952]
    assert list(iter_chunks([b"a", b"", bytearray(b"b")])) == [b"a", b"b"]
    with pytest.raises(TypeError, match="iterable of chunks"):
        list(iter_chunks(b"abc"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be bytes"):
        list(iter_chunks(["text"]))  # type: ignore[list-item]


@pytest.mark.parametrize("sizes", [(1,), (3, 5, 7), (10,), (4, 4), (11, 2)])
def test_rechunk(sizes: tuple[int, ...]) -> None:
    data = bytes(range(40))
    pieces, pos = [], 0
    for i in range(100):
        n = sizes[i % len(sizes)]
        if pos >= len(data):
            break
        pieces.append(data[pos : pos + n])
        pos += n
    out = list(rechunk(pieces, 4))
    assert b"".join(out) == data
    assert all(len(c) == 4 for c in out)


@pytest.mark.parametrize("skip,length", [(0, None), (3, None), (3, 4), (9, 100), (50, 1), (0, 0)])
def test_slice_chunks(skip: int, length: int | None) -> None:
    data = bytes(range(40))
    pieces = [data[i : i + 7] for i in range(0, 40, 7)]
    end = None if length is None else skip + length
    assert b"".join(slice_chunks(pieces, skip, length)) == data[skip:end]


def test_stream_hasher_matches_hashlib() -> None:
    chunks = [os.urandom(n) for n in (1, 65536, 3, 1 << 20)]
    hasher = StreamHasher(max_pending=1000)
    for chunk in chunks:
        hasher.update(chunk)
    sums = hasher.result()
    joined = b"".join(chunks)
    assert sums.md5 == hashlib.md5(joined).hexdigest()
    assert (sums.hash_algo, sums.hash_value) == ("sha256", hashlib.sha256(joined).hexdigest())
    with StreamHasher() as empty:
        pass
    assert empty.result().md5 == hashlib.md5(b"").hexdigest()
    assert empty.result().hash_value == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("algorithm", sorted(HASH_ALGORITHMS))
def test_stream_hasher_computes_the_chosen_multihash(algorithm: str) -> None:
    chunks = [os.urandom(n) for n in (1, 65536, 3, 1 << 20)]
    with StreamHasher(algorithm=algorithm, max_pending=1000) as hasher:
        for chunk in chunks:
            hasher.update(chunk)
        sums = hasher.result()
    joined = b"".join(chunks)
    assert sums.md5 == hashlib.md5(joined).hexdigest()
    assert sums.hash_algo == algorithm
    assert sums.hash_value == hashlib.new(algorithm, joined).hexdigest()


def test_every_guaranteed_algorithm_but_md5_and_shake_is_offered() -> None:
    assert {"sha256", "sha512", "sha3_256", "blake2b", "sha1"} <= HASH_ALGORITHMS
    assert not {"md5", "shake_128", "shake_256"} & HASH_ALGORITHMS


@pytest.mark.parametrize("algorithm", ["md5", "shake_128", "sha-512", "SHA512", "whirlpool", ""])
def test_stream_hasher_refuses_other_algorithms_before_starting(algorithm: str) -> None:
    before = threading.active_count()
    with pytest.raises(ConfigError, match=r"^hashing_algorithm: must be one of: blake2b, "):
        StreamHasher(algorithm=algorithm)
    assert threading.active_count() == before


def test_stream_hasher_waits_when_its_budget_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing slower than the upload holds the uploader back: at most ``max_pending``
    bytes wait per algorithm, plus the chunk being queued and the one being hashed."""
    gate = threading.Event()
    real_new = hashlib.new

    class Gated:
        def __init__(self, algorithm: str) -> None:
            self.hash = real_new(algorithm)

        def update(self, chunk: bytes) -> None:
            gate.wait()
            self.hash.update(chunk)

        def hexdigest(self) -> str:
            return self.hash.hexdigest()

    monkeypatch.setattr(hashlib, "new", Gated)
    hasher = StreamHasher(max_pending=3000)
    chunks = [os.urandom(1000) for _ in range(50)]
    done: list[int] = []

    def upload() -> None:
        for chunk in chunks:
            hasher.update(chunk)
            done.append(len(chunk))

    uploader = threading.Thread(target=upload)
    uploader.start()
    deadline = time.monotonic() + 5
    while len(done) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert len(done) == 4  # one being hashed, 3000 bytes waiting, the fifth put waits
    gate.set()
    uploader.join(5)
    sums = hasher.result()
    assert sums.md5 == hashlib.md5(b"".join(chunks)).hexdigest()
    assert sums.hash_value == hashlib.sha256(b"".join(chunks)).hexdigest()


@pytest.mark.parametrize(
    "uri,shown",
    [
        ("s3+https://AKIA:sekrit@host/bucket/key", "s3+https://AKIA:***@host/bucket/key"),
        ("swift://user:pa:ss@auth/c/o", "swift://user:***@auth/c/o"),
        ("http://token@host/x", "http://***@host/x"),
        ("https://h/x?X-Amz-Signature=abc&a=1", "https://h/x?X-Amz-Signature=***&a=1"),
        ("file:///var/lib/tank/images/x", "file:///var/lib/tank/images/x"),
        ("s3+https://AKIA:wJalr/XUtnFsekrit@host/b/k", "s3+https://AKIA:***@host/b/k"),
        ("s3://AKIA:a/b/sekrit@host/b/k", "s3://AKIA:***@host/b/k"),
        ("swift+https://u:se/cr@etsekrit@h/v2.0/c/o", "swift+https://u:***@h/v2.0/c/o"),
        (
            "https://alice:Tr0ub4dor#3@images.example.com/x",
            "https://alice:***@images.example.com/x",
        ),
        ("https://user:12#34@host/", "https://user:***@host/"),
        ("https://u:a?b=c@h/x", "https://u:***@h/x"),
        (
            "https://h/x?access_token=abc&X-Goog-Signature=d",
            "https://h/x?access_token=***&X-Goog-Signature=***",
        ),
    ],
)
def test_redact(uri: str, shown: str) -> None:
    assert redact(uri) == shown
    assert "sekrit" not in redact(uri) and "abc" not in redact(uri) and "cr" not in redact(uri)


def test_scheme_of() -> None:
    assert scheme_of("S3://b/k") == "s3"
    with pytest.raises(BadLocation, match="no scheme"):
        scheme_of("/etc/passwd")


def test_read_result_close_runs_on_close_once() -> None:
    from tank.store import ReadResult

    calls = []

    def never_started():  # type: ignore[no-untyped-def]
        try:
            yield b"x"
        finally:
            calls.append("finally")

    result = ReadResult(
        size=1, total_size=1, chunks=never_started(), on_close=lambda: calls.append("on_close")
    )
    result.close()
    result.close()
    assert calls == ["on_close"]  # an unstarted generator's finally never runs: on_close does


# --- ReadAhead ------------------------------------------------------------------------


class Source:
    """An iterator that records how far it was read and whether it was closed."""

    def __init__(self, chunks: list[bytes], fail: BaseException | None = None) -> None:
        self.chunks, self.fail = chunks, fail
        self.taken = 0
        self.closed = threading.Event()

    def __iter__(self) -> Source:
        return self

    def __next__(self) -> bytes:
        if self.taken == len(self.chunks):
            if self.fail is not None:
                raise self.fail
            raise StopIteration
        self.taken += 1
        return self.chunks[self.taken - 1]

    def close(self) -> None:
        self.closed.set()


def test_read_ahead_passes_chunks_then_the_error_in_order() -> None:
    chunks = [bytes([i]) * 1000 for i in range(50)]
    assert list(ReadAhead(Source(chunks), 4096)) == chunks
    source = Source(chunks[:3], fail=ConnectionResetError("server went away"))
    reader = ReadAhead(source, 4096)
    assert [next(reader) for _ in range(3)] == chunks[:3]
    with pytest.raises(ConnectionResetError):
        next(reader)
    with pytest.raises(StopIteration):
        next(reader)
    assert source.closed.wait(5)


def test_read_ahead_stays_within_its_budget_and_close_stops_it() -> None:
    source = Source([b"x" * 1000] * 1000)
    reader = ReadAhead(source, 3000)
    assert next(reader) == b"x" * 1000
    deadline = time.monotonic() + 5
    while source.taken < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert source.taken <= 5  # 1 read + 3000 bytes queued + 1 waiting for room
    reader.close()
    assert source.closed.wait(5)
    assert source.taken <= 6
    with pytest.raises(StopIteration):
        next(reader)


def test_chunk_queue_ends_from_either_side() -> None:
    queue: ChunkQueue[bytes] = ChunkQueue(10)
    assert queue.put(b"abcdefgh") and queue.put(b"ij")  # room: 8 < 10 bytes waiting
    assert queue.queued == 10
    queue.finish(ValueError("source broke"))
    assert [queue.get(), queue.get()] == [b"abcdefgh", b"ij"]
    with pytest.raises(ValueError):
        queue.get()
    assert queue.get() is None  # the producer's error is raised once

    aborted: ChunkQueue[bytes] = ChunkQueue(10)
    aborted.put(b"queued")
    aborted.abort(ConnectionAbortedError("abandoned"))
    for _ in range(2):  # at once, queued chunks dropped, and every time
        with pytest.raises(ConnectionAbortedError):
            aborted.get()

    stopped: ChunkQueue[bytes] = ChunkQueue(4)
    assert stopped.put(b"full")
    results: list[bool] = []
    waiting = threading.Thread(target=lambda: results.append(stopped.put(b"more")))
    waiting.start()
    time.sleep(0.05)
    assert results == []  # no room: the producer waits
    stopped.stop()
    waiting.join(5)
    assert results == [False] and stopped.queued == 0


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_file_chunks_reads_the_range_then_closes_the_file(tmp_path: Path) -> None:
    data = os.urandom(1000)
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    chunks = FileChunks(fd, 100, 900, error=lambda exc: AssertionError(exc), chunk_size=300)
    assert [len(c) for c in chunks] == [300, 300, 200]
    assert not _fd_open(fd)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    chunks = FileChunks(fd, 0, 1000, error=lambda exc: AssertionError(exc))
    assert next(chunks) == data
    chunks.close()
    assert not _fd_open(fd)


def test_file_chunks_errors_are_the_callers(tmp_path: Path) -> None:
    """A file that ends before the range is a FileTruncated, a failed read the OSError;
    each raised as what ``error`` makes of it, with the file closed."""
    (tmp_path / "f").write_bytes(b"x" * 100)
    seen: list[OSError] = []

    def error(exc: OSError) -> ValueError:
        seen.append(exc)
        return ValueError(str(exc))

    fd = os.open(tmp_path / "f", os.O_RDONLY)
    chunks = FileChunks(fd, 0, 200, error=error)
    assert next(chunks) == b"x" * 100
    with pytest.raises(ValueError, match="truncated"):
        next(chunks)
    assert isinstance(seen[-1], FileTruncated) and not _fd_open(fd)
    fd = os.open(tmp_path / "f", os.O_WRONLY)  # pread on it fails: EBADF
    with pytest.raises(ValueError) as info:
        next(FileChunks(fd, 0, 100, error=error))
    assert info.value.__cause__ is seen[-1] and not isinstance(seen[-1], FileTruncated)
    assert not _fd_open(fd)
