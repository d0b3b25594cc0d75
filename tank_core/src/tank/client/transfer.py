"""Streaming bodies: what an upload sends and what a download yields.

Uploads never hold more than one chunk in memory: a file is read ``chunk_size`` bytes at
a time and sent with a Content-Length when its size is known (regular files, seekable
streams), chunked otherwise (pipes, generators). Downloads are iterators over the
response that check the length and the MD5 the server announced.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tank.errors import ChecksumMismatch, Invalid, SizeMismatch, ValidationError
from tank.model import Image
from tank.streams import DataSource, iter_chunks, slice_chunks

#: Called with the number of bytes just sent or received (for progress bars).
Progress = Callable[[int], None]


def known_size(data: DataSource) -> int | None:
    """Bytes left in ``data`` if that can be known without reading it, else None."""
    fileno = getattr(data, "fileno", None)
    if fileno is not None:
        try:
            st = os.fstat(fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        else:
            if not stat.S_ISREG(st.st_mode):
                return None
            try:
                return max(st.st_size - data.tell(), 0)  # type: ignore[union-attr]
            except (OSError, AttributeError, io.UnsupportedOperation):
                return st.st_size
    seekable = getattr(data, "seekable", None)
    if seekable is not None:
        try:
            if seekable():
                here = data.tell()  # type: ignore[union-attr]
                end = data.seek(0, io.SEEK_END)  # type: ignore[union-attr]
                data.seek(here)  # type: ignore[union-attr]
                return max(end - here, 0)
        except (OSError, ValueError, io.UnsupportedOperation):
            return None
    return None


class SourceError(Exception):
    """Reading the data to upload failed here, not on the network.

    HTTP libraries take any OSError raised while sending for a network failure; this
    carries the original past them, and the client raises it again.
    """

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _counted(chunks: Iterable[bytes], progress: Progress | None) -> Iterator[bytes]:
    it = iter(chunks)
    while True:
        try:
            chunk = next(it)
        except StopIteration:
            return
        except OSError as exc:
            raise SourceError(exc) from exc
        if progress is not None:
            progress(len(chunk))
        yield chunk


class SizedBody:
    """A body of known length: requests sends it with a Content-Length and streams the
    chunks as they come. Sending fewer or more bytes than announced fails the upload."""

    def __init__(self, chunks: Iterable[bytes], size: int, progress: Progress | None) -> None:
        self.size = size
        self._chunks = chunks
        self._progress = progress

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in _counted(self._chunks, self._progress):
            sent += len(chunk)
            if sent > self.size:
                raise SizeMismatch(f"the data is longer than the announced {self.size} bytes")
            yield chunk
        if sent != self.size:
            raise SizeMismatch(f"the data ended after {sent} of the announced {self.size} bytes")


def _md5_checked(chunks: Iterable[bytes], expected: str) -> Iterator[bytes]:
    """``chunks``, but the last one is sent only once the MD5 of all matches ``expected``.

    For v2, whose upload has no checksum header: on a mismatch the body breaks off
    before its end, so the server never stores the data (the image stays queued)."""
    md5 = hashlib.md5(usedforsecurity=False)
    held = b""
    for chunk in chunks:
        if not chunk:
            continue
        if held:
            yield held
        md5.update(chunk)
        held = chunk
    if md5.hexdigest() != expected.strip().lower():
        raise ChecksumMismatch(
            f"checksum mismatch: the data has MD5 {md5.hexdigest()}, not the expected {expected}"
        )
    if held:
        yield held


def upload_body(
    data: DataSource,
    size: int | None,
    chunk_size: int,
    progress: Progress | None,
    *,
    expect_md5: str | None = None,
) -> Iterable[bytes]:
    """The request body for ``data``: sized when ``size`` is known, chunked otherwise.

    An empty body is sent chunked too: to a Glance v1 server ``Content-Length: 0`` means
    "no data" (register a queued image), while a chunked body with no chunks is data of
    zero bytes. ``expect_md5``: checked here before the last chunk goes out.
    """
    if isinstance(data, bytes | bytearray | memoryview | str):
        raise TypeError("pass image data as a file or an iterable of chunks, not as one object")
    chunks: Iterable[bytes] = iter_chunks(data, chunk_size)
    if expect_md5 is not None:
        chunks = _md5_checked(chunks, expect_md5)
    if not size:
        return _counted(chunks, progress)
    return SizedBody(chunks, size, progress)


def range_header(offset: int, length: int | None) -> dict[str, str]:
    """The Range header for ``offset``..``offset+length`` (none for the whole image)."""
    if offset == 0 and length is None:
        return {}
    if offset < 0 or (length is not None and length <= 0):
        raise ValidationError("range", "offset must be >= 0 and length > 0")
    end = "" if length is None else str(offset + length - 1)
    return {"Range": f"bytes={offset}-{end}"}


def ranged_chunks(
    chunks: Iterator[bytes], status: int, size: int | None, offset: int, length: int | None
) -> tuple[Iterator[bytes], int | None]:
    """The asked-for range of a response: a server that ignored Range (200 to a ranged
    request, as Glance v1 does) sent the whole image, so it is cut here."""
    if (offset > 0 or length is not None) and status == 200:
        chunks = slice_chunks(chunks, offset, length)
        if size is not None:
            size = max(0, min(size - offset, size if length is None else length))
    return chunks, size


class Download:
    """An image's data as it arrives, with the image's metadata.

    Iterate it for chunks, or :meth:`read_all`. ``size`` is the number of bytes this
    response carries (the range, for a partial download). At the end of a full download
    (``verify``) the data is checked against the image's MD5 ``checksum`` (or the
    response's Content-MD5 when the image has none) and against its multihash
    (``os_hash_algo``/``os_hash_value``), both in the same pass; a short body raises
    rather than passing silently. Close it (or use ``with``) if you stop early.
    """

    def __init__(
        self,
        image: Image,
        size: int | None,
        chunks: Iterator[bytes],
        *,
        close: Callable[[], Any],
        verify: bool,
        content_md5: str | None = None,
    ) -> None:
        self.image = image
        self.size = size
        self._chunks = chunks
        self._close = close
        self._md5 = (image.checksum or content_md5) if verify else None
        self._multihash = (
            (image.os_hash_algo, image.os_hash_value)
            if verify and image.os_hash_algo and image.os_hash_value
            else None
        )

    def __iter__(self) -> Iterator[bytes]:
        try:
            md5 = hashlib.md5(usedforsecurity=False) if self._md5 else None
            multi = self._hasher()
        except BaseException:
            self.close()
            raise
        received = 0
        try:
            for chunk in self._chunks:
                if chunk:
                    received += len(chunk)
                    if md5 is not None:
                        md5.update(chunk)
                    if multi is not None:
                        multi.update(chunk)
                    yield chunk
        finally:
            self.close()
        if self.size is not None and received != self.size:
            raise SizeMismatch(f"image {self.image.id}: received {received} of {self.size} bytes")
        if md5 is not None and md5.hexdigest() != self._md5:
            raise ChecksumMismatch(
                f"image {self.image.id}: downloaded data has MD5 {md5.hexdigest()}, "
                f"the image's checksum is {self._md5}"
            )
        if multi is not None and self._multihash is not None:
            algo, value = self._multihash
            if multi.hexdigest() != value:
                raise ChecksumMismatch(
                    f"image {self.image.id}: downloaded data has {algo} {multi.hexdigest()}, "
                    f"the image's os_hash_value is {value}"
                )

    def _hasher(self) -> Any:
        if self._multihash is None:
            return None
        algo = self._multihash[0]
        try:
            return hashlib.new(algo)
        except (ValueError, TypeError):
            raise Invalid(
                f"image {self.image.id}: its os_hash_algo {algo!r} is not available here, so "
                "the data cannot be verified (download without verification to accept it)"
            ) from None

    def read_all(self) -> bytes:
        """All the data in memory: for small images and tests."""
        return b"".join(self)

    def close(self) -> None:
        self._close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
