"""Upload writes that bypass the page cache (``O_DIRECT``).

Copying a write into the page cache costs the writer more CPU than copying the bytes
(pages are allocated and accounted one by one): on the 2-core machine Tank is measured
on, 0.6-1.0 CPU-s per GiB buffered against 0.11 with ``O_DIRECT``, which also reached
the disk sooner. The upload's other costs are the two hashes (~2.1 CPU-s per GiB), so
the page cache was a third of the upload's CPU. An uploaded image is written once and
read later, mostly by other hosts: caching it on the way in buys little.

``O_DIRECT`` wants block-aligned memory, file offsets and lengths, so the data is
gathered into an aligned buffer and written a whole buffer at a time; the last,
partial block goes through the page cache (``O_DIRECT`` switched off for it) before
the writer's ``fsync``. A filesystem that refuses ``O_DIRECT`` (tmpfs) gets ordinary
writes.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os

log = logging.getLogger(__name__)

#: Alignment of offsets and lengths (the largest logical block size in common use).
ALIGN = 4096
#: Bytes gathered per direct write.
BUFFER = 1 << 20


class DirectWriter:
    """Appends to ``fd`` (opened for writing, at offset 0) with ``O_DIRECT``."""

    def __init__(self, fd: int, size: int = BUFFER) -> None:
        self.fd = fd
        self._buffer = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT needs
        self._view = memoryview(self._buffer)
        self._filled = 0

    @classmethod
    def open(cls, fd: int) -> DirectWriter | None:
        """Switch ``fd`` to ``O_DIRECT``; None where the filesystem does not allow it."""
        direct = getattr(os, "O_DIRECT", 0)
        if not direct:
            return None
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | direct)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
            return None
        return cls(fd)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        size = len(self._view)
        while len(view):
            n = min(len(view), size - self._filled)
            self._view[self._filled : self._filled + n] = view[:n]
            self._filled += n
            view = view[n:]
            if self._filled == size:
                self._write_direct(self._view)
                self._filled = 0

    def finish(self) -> None:
        """Write what is gathered: whole blocks directly, the rest through the cache."""
        filled, self._filled = self._filled, 0
        whole = filled - filled % ALIGN
        if whole:
            with self._view[:whole] as blocks:  # released even if the write fails
                self._write_direct(blocks)
        if whole < filled:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
            with self._view[whole:filled] as rest:
                write_all(self.fd, rest)

    def close(self) -> None:
        self._view.release()
        try:
            self._buffer.close()
        except BufferError:  # a view is still held (a traceback's frame): unmapped by GC
            pass

    def _write_direct(self, view: memoryview) -> None:
        try:
            write_all(self.fd, view)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # refused after all (e.g. a device with larger blocks): write through the cache
            log.info("O_DIRECT write refused (%s); writing through the page cache", exc)
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
            write_all(self.fd, view)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until all of ``data`` is written (a write may be partial)."""
    done = os.write(fd, data)
    if done < len(data):
        view = memoryview(data)
        while done < len(view):
            done += os.write(fd, view[done:])
