"""Threads busy with long transfers, counted by kind, under one joint limit.

A client that keeps just above the rate floor may hold a thread for as long as its
transfer lasts: an upload's body as it arrives, or image data it reads slowly. Each kind
has a cap of its own (``body_threads``, tank-api's ``download_threads``), and together
they never take more than ``limit`` threads, so the others always serve short requests
(listings, metadata, the console) however the slow transfers are mixed.

The server counts request bodies itself; an application counts what it sends through the
instance in the WSGI environ (:data:`ENVIRON_KEY`).
"""

from __future__ import annotations

import threading

#: Where the server's :class:`Transfers` is in the WSGI environ.
ENVIRON_KEY = "tank.transfers"
#: ``Retry-After`` (seconds) of a refusal because a cap is reached: a thread frees when
#: any one of the transfers ends, so soon, but not at once.
RETRY_AFTER = 2


class Transfers:
    """How many transfers of each kind are under way; :meth:`take` says, without waiting,
    whether one more may start."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, kind: str, cap: int) -> bool:
        """One more ``kind`` (at most ``cap`` of them, and :attr:`limit` of all kinds)."""
        with self._lock:
            if self._counts.get(kind, 0) >= cap or sum(self._counts.values()) >= self.limit:
                return False
            self._counts[kind] = self._counts.get(kind, 0) + 1
            return True

    def give_back(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] -= 1

    def count(self, kind: str) -> int:
        with self._lock:
            return self._counts.get(kind, 0)

    def busy(self) -> str:
        """What is under way, for a refusal's message: ``3 uploads and 9 downloads``."""
        with self._lock:
            parts = [f"{n} {kind}s" for kind, n in sorted(self._counts.items()) if n]
        return " and ".join(parts) or "nothing"
