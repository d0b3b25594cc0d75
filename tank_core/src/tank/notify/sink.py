"""What a notification sink is, and the queue-and-thread base of those that talk to the
network.

A sink receives every :class:`~tank.notify.events.Event` through :meth:`Sink.send`, on
the thread of the request that caused it: ``send`` must return at once and never raise.
:class:`QueuedSink` gives a sink a bounded queue and a thread of its own that calls
:meth:`QueuedSink.deliver` with retries and exponential backoff; a full queue drops the
event (counted in :mod:`tank.notify.metrics`), it never blocks the request. Drops are
warned about in summary: the first at once, then at most one warning every
``drop_warning_interval`` seconds saying how many were dropped since the last one (a
hung receiver drops hundreds of events a second: one line each would flood the log).
"""

from __future__ import annotations

import abc
import collections
import logging
import os
import threading
import time
import weakref
from typing import Any, ClassVar

import attrs

from tank.config import between
from tank.notify import metrics
from tank.notify.events import Event

log = logging.getLogger(__name__)


class Sink(abc.ABC):
    """A destination of events, configured from ``[notifications.<name>]``.

    Subclasses set ``name`` (an identifier: what ``[notifications] sinks`` lists) and
    ``Config`` (an attrs class, built from the section like a store's), and are
    registered through the ``tank_register_notification_sinks`` hook.
    """

    name: ClassVar[str]
    Config: ClassVar[type[Any]]

    def __init__(self, config: Any) -> None:
        self.config = config

    @abc.abstractmethod
    def send(self, event: Event) -> None:
        """Take ``event``: return at once, never raise (called in the request's thread)."""

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is still queued, waiting at most ``timeout`` seconds."""


@attrs.frozen(kw_only=True)
class QueueConfig:
    """The delivery keys every :class:`QueuedSink` has (its ``Config`` may subclass)."""

    #: Events waiting for delivery at most; more are dropped (and counted).
    queue_size: int = attrs.field(default=1000, validator=between(1, 1_000_000))
    #: Attempts after the first failure before an event is given up (and counted).
    retries: int = attrs.field(default=5, validator=between(0, 100))
    #: Seconds before the first retry; doubled for each next one.
    backoff: float = attrs.field(default=0.5, validator=between(0.0, 3600))
    #: The longest wait between two attempts.
    max_backoff: float = attrs.field(default=30.0, validator=between(0.0, 3600))
    #: Seconds one delivery attempt may take.
    timeout: float = attrs.field(default=10.0, validator=between(0.001, 3600))
    #: Seconds at least between two warnings about events dropped on a full queue (the
    #: first drop is warned about at once; the next warning counts those since).
    drop_warning_interval: float = attrs.field(default=60.0, validator=between(0.0, 86400))


class Permanent(Exception):
    """A delivery that no retry can make succeed (the receiver refused the event)."""


class QueuedSink(Sink):
    """A sink that delivers from a thread of its own, through a bounded queue.

    The thread starts with the first event (in the process that sends it: a pre-forked
    worker gets its own thread and queue) and is a daemon; :meth:`close` gives it
    ``timeout`` seconds to empty the queue.
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._fresh()
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forked(me))

    def _fresh(self) -> None:
        """No thread, an empty queue, locks nobody holds (also in a forked child, whose
        copy of the lock another thread of the parent may have held at the fork)."""
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: collections.deque[Event] = collections.deque()
        self._pid = -1
        self._thread: threading.Thread | None = None
        self._closing = False
        self._busy = False
        #: Set by :meth:`close`: cuts a backoff short (the event is then given up).
        self._stop = threading.Event()
        #: Events dropped on a full queue since the last warning, and the last's type.
        self._unwarned = 0
        self._unwarned_type = ""
        #: When (monotonic) the next drop warning may be logged.
        self._warn_after = 0.0

    # --- called by the notifier ----------------------------------------------------

    def send(self, event: Event) -> None:
        with self._lock:
            if self._pid != os.getpid():  # the first event (of this process)
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name=f"tank-notify-{self.name}", daemon=True
                )
                self._thread.start()
            if self._closing:
                return
            if len(self._queue) >= self.config.queue_size:
                full = True
            else:
                full = False
                self._queue.append(event)
                self._ready.notify()
        if full:
            metrics.count(self.name, "dropped_queue_full")
            with self._lock:
                self._unwarned += 1
                self._unwarned_type = event.event_type
            self._warn_drops()

    def _warn_drops(self, *, at_close: bool = False) -> None:
        """Log the drops not warned about yet, if the interval since the last warning
        has passed (or ``at_close``)."""
        now = time.monotonic()
        with self._lock:
            if not self._unwarned or (now < self._warn_after and not at_close):
                return
            count, last = self._unwarned, self._unwarned_type
            first = self._warn_after == 0.0
            self._unwarned = 0
            self._warn_after = now + self.config.drop_warning_interval
        if first and count == 1:
            log.warning(
                "notification sink %s: queue full (%d events): %s event dropped (further "
                "drops are summarised, at most one warning every %g s)",
                self.name,
                self.config.queue_size,
                last,
                self.config.drop_warning_interval,
            )
            return
        log.warning(
            "notification sink %s: queue full (%d events): %d event%s dropped since the "
            "last warning (the last: %s)",
            self.name,
            self.config.queue_size,
            count,
            "" if count == 1 else "s",
            last,
        )

    def close(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            thread = self._thread if self._pid == os.getpid() else None
            self._closing = True
            self._stop.set()
            self._ready.notify_all()
            while thread is not None and (self._queue or self._busy):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
            left_over = len(self._queue)
            self._queue.clear()
        self._warn_drops(at_close=True)
        if left_over:
            metrics.count(self.name, "dropped_at_exit", left_over)
            log.warning("notification sink %s: %d events not delivered", self.name, left_over)
        if thread is None:
            self.disconnect()

    def pending(self) -> int:
        """Events queued and not yet delivered (or being delivered)."""
        with self._lock:
            return len(self._queue) + self._busy

    # --- for subclasses --------------------------------------------------------------

    @abc.abstractmethod
    def deliver(self, event: Event) -> None:
        """Deliver one event (blocking, in the sink's thread); raise to have it retried,
        :class:`Permanent` to give it up at once."""

    def disconnect(self) -> None:
        """Release a connection :meth:`deliver` holds (after a failure, and at close)."""

    def describe(self) -> str:
        """Where the sink delivers, safe to log (no credentials)."""
        return self.name

    def forget(self) -> None:
        """In a forked child: drop (never close, never use) the parent's connection."""

    # --- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._ready.wait()
                if not self._queue:
                    break
                event = self._queue.popleft()
                self._busy = True
            try:
                self._attempt(event)
            finally:
                with self._lock:
                    self._busy = False
                    self._ready.notify_all()
            self._warn_drops()  # drops during a slow delivery, even if no more come
        self.disconnect()

    def _attempt(self, event: Event) -> None:
        wait = self.config.backoff
        for attempt in range(self.config.retries + 1):
            try:
                self.deliver(event)
            except Permanent as exc:
                metrics.count(self.name, "dropped_undeliverable")
                log.error(
                    "notification sink %s: %s event refused by %s, dropped: %s",
                    self.name,
                    event.event_type,
                    self.describe(),
                    exc,
                )
                return
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then counted
                self.disconnect()
                stopping = self._stop.is_set()
                if attempt == self.config.retries or stopping:
                    metrics.count(
                        self.name, "dropped_at_exit" if stopping else "dropped_undeliverable"
                    )
                    log.error(
                        "notification sink %s: %s event not delivered to %s after %d "
                        "attempts, dropped: %s",
                        self.name,
                        event.event_type,
                        self.describe(),
                        attempt + 1,
                        exc,
                    )
                    return
                metrics.count(self.name, "retried")
                log.warning(
                    "notification sink %s: delivery to %s failed (%s); retrying in %.1f s",
                    self.name,
                    self.describe(),
                    exc,
                    wait,
                )
                self._stop.wait(wait)  # close() cuts it short
                wait = min(wait * 2, self.config.max_backoff)
            else:
                metrics.count(self.name, "sent")
                return


def _forked(sink: weakref.ref[QueuedSink]) -> None:
    alive = sink()
    if alive is not None:
        alive._fresh()  # the parent's thread and connection are not the child's
        alive.forget()
