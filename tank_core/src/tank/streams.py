"""Byte streams: turn files and iterables into bounded chunks, and count what passes."""

from __future__ import annotations

import collections
import errno
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, Generic, Protocol, TypeVar, runtime_checkable

log = logging.getLogger(__name__)

_Chunk = TypeVar("_Chunk", bound=bytes | memoryview)

#: Default read size when Tank itself reads from a file or socket (1 MiB).
DEFAULT_CHUNK_SIZE = 1 << 20


@runtime_checkable
class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


_ZEROS = bytes(DEFAULT_CHUNK_SIZE)


def all_zero(chunk: bytes | bytearray | memoryview) -> bool:
    """Whether ``chunk`` holds only zero bytes (a hole a thin-provisioned store skips).

    One ``memcmp`` against a zero buffer (~50 GiB/s); a memoryview is copied first."""
    if isinstance(chunk, memoryview):
        chunk = chunk.tobytes()
    size = len(chunk)
    return chunk == (_ZEROS if size == DEFAULT_CHUNK_SIZE else bytes(size))


#: What ``Backend.add`` and the service accept as image data.
DataSource = Iterable[bytes] | BinaryIO | Readable


def iter_chunks(data: DataSource, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the non-empty chunks of a file-like object or an iterable of bytes.

    File-like objects are read ``chunk_size`` bytes at a time; iterables are passed through
    as they come (no copying), skipping empty chunks.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(
            "pass image data as a file or an iterable of chunks, not as one bytes object"
        )
    read = getattr(data, "read", None)
    if read is not None:
        while True:
            chunk = read(chunk_size)
            if not chunk:
                return
            yield bytes(chunk) if not isinstance(chunk, bytes) else chunk
    else:
        for chunk in data:  # type: ignore[union-attr]
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"image data chunks must be bytes, got {type(chunk).__name__}")
            if chunk:
                yield chunk if isinstance(chunk, bytes) else bytes(chunk)


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup ``chunks`` into pieces of exactly ``size`` bytes (the last may be shorter).

    For stores whose writes must be aligned (RBD objects, S3 parts). Holds at most one
    piece in memory.
    """
    buf = bytearray()
    for chunk in chunks:
        if not buf and len(chunk) == size:
            yield chunk
            continue
        buf += chunk
        while len(buf) >= size:
            with memoryview(buf) as view:
                piece = bytes(view[:size])
            del buf[:size]
            yield piece
    if buf:
        yield bytes(buf)


def slice_chunks(chunks: Iterable[bytes], skip: int, length: int | None) -> Iterator[bytes]:
    """Drop the first ``skip`` bytes of a stream and stop after ``length`` bytes."""
    remaining = length
    for chunk in chunks:
        if skip:
            if len(chunk) <= skip:
                skip -= len(chunk)
                continue
            chunk = chunk[skip:]
            skip = 0
        if remaining is not None:
            if remaining <= 0:
                return
            if len(chunk) > remaining:
                chunk = chunk[:remaining]
            remaining -= len(chunk)
        yield chunk


class FileTruncated(OSError):
    """A file ended before the byte range being read from it did."""

    def __init__(self) -> None:
        super().__init__(errno.EIO, "file was truncated while being read")


class FileChunks(Iterator[bytes]):
    """The chunks of one byte range of an open file, read with ``pread``. Owns the descriptor.

    Each chunk is a new ``bytes`` object (consumers may keep them). The file is closed
    at the end of the range, on :meth:`close`, or when the iterator is collected. An
    OSError while reading, or a :class:`FileTruncated` when the file ends early, is
    raised as what ``error`` makes of it.
    """

    def __init__(
        self,
        fd: int,
        start: int,
        end: int,
        *,
        error: Callable[[OSError], BaseException],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self._fd = fd
        self._pos = start
        self._end = end
        self._chunk_size = chunk_size
        self._error = error

    def __iter__(self) -> FileChunks:
        return self

    def __next__(self) -> bytes:
        want = min(self._chunk_size, self._end - self._pos)
        if want <= 0 or self._fd < 0:
            self.close()
            raise StopIteration
        try:
            data = os.pread(self._fd, want, self._pos)
        except OSError as exc:
            self.close()
            raise self._error(exc) from exc
        if not data:
            self.close()
            raise self._error(FileTruncated())
        self._pos += len(data)
        return data

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


class ChunkQueue(Generic[_Chunk]):
    """Chunks handed from one producer thread to one consumer thread, at most
    ``max_bytes`` of them waiting (plus the one being put).

    Either side can end it. The producer calls :meth:`finish` (its error, if any, is
    raised once, after the chunks already queued) or :meth:`abort` (the error is raised
    at once and on every later :meth:`get`). The consumer calls :meth:`stop`, after which
    :meth:`put` returns False instead of waiting for room that will never come.
    """

    def __init__(self, max_bytes: int) -> None:
        self._items: collections.deque[_Chunk] = collections.deque()
        self._bytes = 0
        self._max = max_bytes
        self._cond = threading.Condition()
        self._finished = False
        self._error: BaseException | None = None
        self._aborted = False
        self._stopped = False

    @property
    def queued(self) -> int:
        """Bytes waiting for the consumer."""
        return self._bytes

    def put(self, chunk: _Chunk) -> bool:
        """Queue ``chunk``, waiting for room; False if the consumer has stopped."""
        with self._cond:
            while self._bytes >= self._max and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return False
            self._items.append(chunk)
            self._bytes += len(chunk)
            self._cond.notify_all()
            return True

    def finish(self, error: BaseException | None = None) -> None:
        """No more chunks; the consumer gets ``error`` (if any) after the queued ones."""
        with self._cond:
            self._finished = True
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    def abort(self, error: BaseException) -> None:
        """Drop what is queued; the consumer gets ``error`` now and from then on."""
        with self._cond:
            self._items.clear()
            self._bytes = 0
            self._finished = self._aborted = True
            self._error = error
            self._cond.notify_all()

    def get(self) -> _Chunk | None:
        """The next chunk, waiting for one; None once the producer has finished."""
        with self._cond:
            while not self._items and not self._finished:
                self._cond.wait()
            if self._items:
                chunk = self._items.popleft()
                self._bytes -= len(chunk)
                self._cond.notify_all()
                return chunk
            error = self._error
            if not self._aborted:
                self._error = None
        if error is not None:
            raise error
        return None

    def stop(self) -> None:
        """The consumer wants no more: drop what is queued and release the producer."""
        with self._cond:
            self._stopped = True
            self._items.clear()
            self._bytes = 0
            self._cond.notify_all()


class ReadAhead(Iterator[bytes]):
    """Iterate ``source`` in a thread of its own, at most ``max_bytes`` ahead of the reader.

    For downloads from a store's server: while tank-api is sending one chunk to its
    client, the next ones keep coming in. A server that instead finds its socket full
    waits and then sends in small pieces: a Swift proxy spent twice the CPU on a 1 GiB
    GET read that way. Chunks and the source's exception come out in order.

    The thread owns ``source``: it closes it (``source.close()``, if any) when the
    source ends, fails, or is no longer wanted. :meth:`close` does not wait for a
    ``next`` that is blocked on the network; the thread closes the source once that
    returns. Memory: ``max_bytes`` plus the chunk being read.
    """

    def __init__(self, source: Iterator[bytes], max_bytes: int, *, name: str = "tank-read") -> None:
        self._source = source
        self._queue: ChunkQueue[bytes] = ChunkQueue(max_bytes)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __next__(self) -> bytes:
        chunk = self._queue.get()
        if chunk is None:
            raise StopIteration
        return chunk

    def close(self) -> None:
        self._queue.stop()

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            for chunk in self._source:
                if not self._queue.put(chunk):
                    break
        except BaseException as exc:  # noqa: BLE001 - raised in the reader's thread
            error = exc
        finally:
            close = getattr(self._source, "close", None)
            try:
                if close is not None:
                    close()
            except Exception:
                log.exception("closing a read-ahead source failed")
            self._queue.finish(error)
