"""Byte streams: turn files and iterables into bounded chunks, and count what passes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol, runtime_checkable

#: Default read size when Tank itself reads from a file or socket (1 MiB).
DEFAULT_CHUNK_SIZE = 1 << 20


@runtime_checkable
class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


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
