"""A floor under the speed of a transfer: a request body or a response that moves less
than ``min_bytes`` in any ``window`` seconds is ended.

A worker thread serves one request at a time, so a client that sends its body (or reads
the answer) a byte at a time holds a worker for as long as it likes: a per-read timeout
alone never fires while a byte arrives now and then. With the floor, each such client
holds a worker for one window at most (Apache's mod_reqtimeout ``MinRate`` does the
same for bodies).
"""

from __future__ import annotations


class TooSlow(ConnectionError):
    """The peer moved fewer bytes than the floor in a window."""


class Pace:
    """Counts only the time spent waiting on the peer (inside socket calls), so the
    application's own work between reads and writes (an fsync, a store's commit) is
    never held against the client."""

    def __init__(self, min_bytes: int, window: float, what: str) -> None:
        self.min_bytes = min_bytes
        self.window = window
        self.what = what
        self._waited = 0.0
        self._moved = 0

    def timeout(self) -> float:
        """Seconds the next socket call may wait: what is left of the window."""
        return max(0.001, self.window - self._waited)

    def moved(self, count: int, waited: float) -> None:
        """A socket call moved ``count`` bytes after ``waited`` seconds (count 0: it
        timed out); raises TooSlow when a window ends below the floor."""
        self._moved += count
        self._waited += waited
        if self._waited >= self.window:
            moved, self._moved, self._waited = self._moved, 0, 0.0  # a fresh window after
            if moved < self.min_bytes:
                raise TooSlow(
                    f"{self.what}: the client moved {moved} bytes in {self.window:g} s, "
                    f"less than the {self.min_bytes} required"
                )
