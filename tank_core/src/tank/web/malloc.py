"""glibc malloc tuning for the servers: fewer arenas, and free memory handed back.

Image data moves through 1 MiB buffers allocated on one thread and freed on another
(hash threads, store threads, librados). glibc serves them from its heaps, which is
fast (mmap per buffer costs ~0.5 CPU s/GiB in page faults) but keeps freed pages:
after an upload, a download would start from the upload's high-water mark and the
peaks stack. :func:`trim` after each large transfer gives the free pages back, so
peak RSS is one transfer's working set, not the sum of the last few.
On other C libraries both functions do nothing.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

M_ARENA_MAX = -8


@functools.cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018  (glibc only)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas: with a thread per request each keeps its own
    free 1 MiB chunks, and peak RSS grows with the thread count for no speed gain
    (measured: 101 → 76 MiB peak for a 1 GiB upload, same throughput).

    Call it first thing, before any library starts threads: a thread keeps the arena it
    got on its first malloc, and glibc fixes its arena limit once eight exist. librados
    starts a dozen threads when the rbd store connects at start-up; capped after that,
    they kept their own arenas and tank-api's rbd downloads peaked 10-25 MiB higher."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, arenas)


def trim() -> None:
    """Return the free pages of every malloc arena to the kernel (``malloc_trim(0)``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
