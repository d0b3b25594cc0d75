"""A multipart part's body: the received chunks as one seekable file, never joined.

botocore reads a part's body twice (once to sign it with SHA-256 when the endpoint is
plain HTTP, once to send it) and again on every retry, after ``seek(0)``. Joining 1 MiB
chunks into one ``bytes`` and wrapping it in ``io.BytesIO`` cost a copy per join and
another per read; this file hands out views of the chunks instead.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

Buffer = bytes | memoryview


class PartBody(io.RawIOBase):
    """Read-only, seekable; ``read`` returns views of at most one chunk (short reads)."""

    def __init__(self, chunks: Sequence[Buffer]) -> None:
        super().__init__()
        self._chunks = [memoryview(c).cast("B") for c in chunks if len(c)]
        self._size = sum(len(c) for c in self._chunks)
        self._pos = 0
        self._index = 0  # chunk holding _pos
        self._offset = 0  # _pos within that chunk

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._pos = min(target, self._size)
        self._index, self._offset = 0, self._pos
        while self._index < len(self._chunks) and self._offset >= len(self._chunks[self._index]):
            self._offset -= len(self._chunks[self._index])
            self._index += 1
        return self._pos

    def read(self, size: int | None = -1) -> Buffer:  # type: ignore[override]
        if self._index >= len(self._chunks):
            return b""
        chunk = self._chunks[self._index]
        end = len(chunk) if size is None or size < 0 else min(len(chunk), self._offset + size)
        piece = chunk[self._offset : end]
        self._pos += len(piece)
        if end == len(chunk):
            self._index, self._offset = self._index + 1, 0
        else:
            self._offset = end
        return piece

    def readinto(self, buffer: Buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        piece = self.read(len(view))
        view[: len(piece)] = piece
        return len(piece)
