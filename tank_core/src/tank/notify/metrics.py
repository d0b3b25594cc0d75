"""Counts of what happened to events, per sink, for ``/metrics`` and tests.

Outcomes: ``sent`` (delivered), ``retried`` (a delivery attempt failed and was tried
again), ``dropped_queue_full`` (the sink's queue was full: the event was never tried),
``dropped_undeliverable`` (given up after its retries, or refused for good),
``dropped_at_exit`` (still queued when the process stopped waiting for the sink). Counts
are per process (each tank-api worker has its own): ``/metrics`` subscribes a counter of
its own (:func:`subscribe`, e.g. a prometheus_client ``Counter`` labelled by sink and
outcome, which adds up the workers' counts in multiprocess mode).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

OUTCOMES = (
    "sent",
    "retried",
    "dropped_queue_full",
    "dropped_undeliverable",
    "dropped_at_exit",
)

_lock = threading.Lock()
_counts: Counter[tuple[str, str]] = Counter()
_subscribers: list[Callable[[str, str, int], None]] = []


def count(sink: str, outcome: str, n: int = 1) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    with _lock:
        _counts[(sink, outcome)] += n
        subscribers = list(_subscribers)
    for subscriber in subscribers:
        subscriber(sink, outcome, n)


def subscribe(subscriber: Callable[[str, str, int], None]) -> None:
    """Call ``subscriber(sink, outcome, n)`` for every count from now on (in the thread
    that counts: it must be quick and must not raise)."""
    with _lock:
        _subscribers.append(subscriber)


def unsubscribe(subscriber: Callable[[str, str, int], None]) -> None:
    with _lock:
        _subscribers.remove(subscriber)


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
