"""Prometheus metrics of the Images API (``GET /metrics``, ``[api] metrics``).

Requests by route template (``/v2/images/{image_id}/file``, never a raw path: one
series per endpoint, not per image), method and status; request and response body
bytes by route; the duration of each request, of each successful upload and download;
failed uploads by cause (the error's class, e.g. ``ClientGone``, ``ChecksumMismatch``,
``ClientTooSlow``, ``StorageFull``); the latency of every store call by store and
operation (``open_writer``, ``write`` per chunk, ``commit``, ``read`` until the data
starts, ``remove``, ``size_of``); notification events by sink and outcome
(:mod:`tank.notify.metrics`: sent, retried, dropped).

With pre-forked workers (:mod:`tank.web.prefork`) the counts are kept in
prometheus_client's multiprocess mode: tank-api makes a directory of its own for the
run (``<data_dir>/run/metrics-<port>``, emptied at start, removed at exit) before any
worker starts, every worker writes its counts there, and whichever worker answers
``/metrics`` adds them all up; the counts of a worker that died stay counted.
prometheus_client is imported only when metrics are made, after that directory is
set (it decides its mode once, at import).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tank.web.app import ENV_ERROR, ENV_ROUTE

if TYPE_CHECKING:
    from tank.stores import StoreSet

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: (method, route template) → the API an upload or download goes through.
UPLOADS = {
    ("PUT", "/v2/images/{image_id}/file"): "v2",
    ("PUT", "/v2/images/{image_id}/stage"): "v2-stage",
    ("POST", "/v1/images"): "v1",
    ("PUT", "/v1/images/{image_id}"): "v1",
}
DOWNLOADS = {
    ("GET", "/v2/images/{image_id}/file"): "v2",
    ("GET", "/v1/images/{image_id}"): "v1",
}
#: Seconds: from a metadata call to a large image's transfer.
TRANSFER_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def prepare_multiprocess_dir(data_dir: Path, port: int) -> Path:
    """Make this run's empty metrics directory and select multiprocess mode (before
    prometheus_client is imported, before the workers fork)."""
    path = data_dir / "run" / f"metrics-{port}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def mark_process_dead(pid: int) -> None:
    """A worker exited: drop what only a live process may report."""
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid)
    except OSError as exc:
        log.warning("metrics of worker %d not cleaned up: %s", pid, exc)


class Metrics:
    """The metrics of one process (in multiprocess mode, its share of the run's)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = MULTIPROC_ENV in os.environ
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "tank_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.received = Counter(
            "tank_http_received_bytes", "Request body bytes received.", ["route"], registry=r
        )
        self.sent = Counter(
            "tank_http_sent_bytes", "Response body bytes sent.", ["route"], registry=r
        )
        self.duration = Histogram(
            "tank_http_request_duration_seconds",
            "Request durations, by route template.",
            ["route"],
            buckets=TRANSFER_BUCKETS,
            registry=r,
        )
        self.uploads = Histogram(
            "tank_upload_duration_seconds",
            "Durations of successful image uploads (v1, v2, v2-stage).",
            ["api"],
            buckets=TRANSFER_BUCKETS,
            registry=r,
        )
        self.downloads = Histogram(
            "tank_download_duration_seconds",
            "Durations of successful image downloads (v1, v2).",
            ["api"],
            buckets=TRANSFER_BUCKETS,
            registry=r,
        )
        self.upload_failures = Counter(
            "tank_upload_failures",
            "Failed image uploads by cause (the error's class, or http_<status>).",
            ["api", "cause"],
            registry=r,
        )
        self.notifications = Counter(
            "tank_notification_events",
            "Notification events by sink and outcome (sent, retried, dropped_*).",
            ["sink", "outcome"],
            registry=r,
        )
        from tank.notify import metrics as notify_metrics

        notify_metrics.subscribe(self._count_notification)
        self.store_calls = Histogram(
            "tank_store_call_duration_seconds",
            "Latency of store calls by store and operation.",
            ["store", "operation"],
            buckets=CALL_BUCKETS,
            registry=r,
        )

    def observe(self, environ: dict[str, Any], status: int, sent: int, seconds: float) -> None:
        """Record one finished request (:meth:`tank.web.WebApp.observe`)."""
        route = environ.get(ENV_ROUTE) or "unmatched"
        method = str(environ.get("REQUEST_METHOD", ""))[:10]
        body = environ.get("wsgi.input")
        received = int(getattr(body, "received", 0) or 0)
        self.requests.labels(method, route, str(status)).inc()
        if received:
            self.received.labels(route).inc(received)
        if sent:
            self.sent.labels(route).inc(sent)
        self.duration.labels(route).observe(seconds)
        key = (method, route)
        upload = UPLOADS.get(key)
        if upload is not None and (
            received or str(environ.get("CONTENT_TYPE", "")).startswith("application/octet")
        ):
            if status < 300:
                self.uploads.labels(upload).observe(seconds)
            elif status >= 400:
                exc = environ.get(ENV_ERROR)
                cause = type(exc).__name__ if exc is not None else f"http_{status}"
                self.upload_failures.labels(upload, cause).inc()
        download = DOWNLOADS.get(key)
        if download is not None and status < 300:
            self.downloads.labels(download).observe(seconds)

    def _count_notification(self, sink: str, outcome: str, n: int) -> None:
        self.notifications.labels(sink, outcome).inc(n)

    def render(self) -> tuple[bytes, str]:
        """The exposition (every worker's, in multiprocess mode) and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    # --- store calls -------------------------------------------------------------------

    def instrument_stores(self, stores: StoreSet) -> None:
        """Time every store's primitives (and its writers' ``write`` and ``commit``)."""
        for backend in stores:
            name = backend.name
            for operation in ("read", "remove", "size_of", "remove_partial"):
                method = getattr(backend, operation)
                setattr(backend, operation, self._timed(name, operation, method))
            backend.open_writer = self._timed_writer(name, backend.open_writer)  # type: ignore[method-assign]

    def _timed(self, store: str, operation: str, fn: F) -> F:
        histogram = self.store_calls.labels(store, operation)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return timed  # type: ignore[return-value]

    def _timed_writer(self, store: str, open_writer: F) -> F:
        opened = self._timed(store, "open_writer", open_writer)

        @functools.wraps(open_writer)
        def timed(*args: Any, **kwargs: Any) -> Any:
            writer = opened(*args, **kwargs)
            for operation in ("write", "commit"):
                try:
                    setattr(
                        writer, operation, self._timed(store, operation, getattr(writer, operation))
                    )
                except AttributeError:  # a writer with __slots__: not timed
                    pass
            return writer

        return timed  # type: ignore[return-value]
