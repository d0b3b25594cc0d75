"""Counts of what happened to events, per sink, for ``/metrics`` and tests.

Outcomes: ``sent`` (delivered), ``retried`` (a delivery attempt failed and was tried
again), ``dropped_queue_full`` (the sink's queue was full: the event was never tried),
``dropped_undeliverable`` (given up after its retries, or refused for good),
``dropped_at_exit`` (still queued when the process stopped waiting for the sink). Counts
are per process (each tank-api worker has its own).
"""

from __future__ import annotations

import threading
from collections import Counter

OUTCOMES = (
    "sent",
    "retried",
    "dropped_queue_full",
    "dropped_undeliverable",
    "dropped_at_exit",
)

_lock = threading.Lock()
_counts: Counter[tuple[str, str]] = Counter()


def count(sink: str, outcome: str, n: int = 1) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    with _lock:
        _counts[(sink, outcome)] += n


def snapshot() -> dict[tuple[str, str], int]:
    """``{(sink, outcome): count}`` so far in this process."""
    with _lock:
        return dict(_counts)


def dropped(sink: str | None = None) -> int:
    """Events dropped (for any reason), by ``sink`` or all sinks."""
    with _lock:
        return sum(
            n
            for (name, outcome), n in _counts.items()
            if outcome.startswith("dropped") and (sink is None or name == sink)
        )
