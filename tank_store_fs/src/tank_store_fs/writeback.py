"""Start writing dirty pages of an upload to disk while the upload goes on.

The kernel starts background writeback only once dirty pages pass
``vm.dirty_background_ratio`` (10% of RAM by default, gigabytes on a server), so
without a hint a 1 GiB upload stays in memory until the final ``fsync``, which then
waits for the whole gigabyte. ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` queues each
written range for writeback without waiting; the disk works while the upload streams
and hashes, and the final ``fsync`` has little left to do. It is only a hint: the
``fsync`` at commit still makes the data durable and reports errors. Python's ``os``
lacks the call, so it comes from libc through ctypes; where it is missing (not Linux),
:func:`start_writeback` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_sync_file_range = _load()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Queue ``length`` bytes of ``fd`` from ``offset`` for writeback; never blocks long."""
    if _sync_file_range is None:
        return
    if _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0:
        log.debug("sync_file_range failed (errno %d); fsync will do it", ctypes.get_errno())
