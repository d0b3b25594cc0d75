"""Prefetching: fill the cache with the images queued for it (``PUT /v2/cache/{id}``,
``tank-manage cache queue``)."""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING

from tank import errors
from tank.model import Context, Status

if TYPE_CHECKING:
    from tank.service import ImageService

log = logging.getLogger(__name__)


def entry_is_valid(service: ImageService, image_id: str, size: int) -> bool:
    """A copy of ``size`` bytes may stay in the cache: its image is active with that size
    (``clean`` removes the others)."""
    try:
        image = service.registry.get(image_id, context=Context.admin())
    except errors.NotFound:
        return False
    return image.status is Status.ACTIVE and not image.deleted and image.size == size


def prefetch_once(service: ImageService) -> int:
    """Cache every queued image that can be: the number cached. An image that is gone
    or not active leaves the queue; one whose store failed stays queued for next time;
    one another process is filling right now is left to it."""
    cache = service.cache
    if cache is None:
        return 0
    done = 0
    admin = Context.admin()
    for image_id in cache.queued():
        try:
            image = service.registry.get(image_id, context=admin)
        except errors.NotFound:
            log.info("image cache: queued image %s does not exist: dequeued", image_id)
            cache.dequeue(image_id)
            continue
        if image.deleted or image.status is not Status.ACTIVE or not image.has_data:
            log.info("image cache: queued image %s is %s: dequeued", image_id, image.status)
            cache.dequeue(image_id)
            continue
        if cache.is_cached(image_id):
            cache.dequeue(image_id)
            continue
        if not service.cacheable(image):
            log.info("image cache: image %s is not in a cached store: dequeued", image_id)
            cache.dequeue(image_id)
            continue
        try:
            with service.read(image) as result:
                for _ in result.chunks:
                    pass
        except errors.TankError as exc:
            log.warning(
                "image cache: prefetching image %s failed (stays queued): %s", image_id, exc
            )
            continue
        if cache.is_cached(image_id):
            cache.dequeue(image_id)
            done += 1
    return done


class Prefetcher:
    """A daemon thread running :func:`prefetch_once` every ``interval`` seconds, and at
    once on :meth:`wake`. A started prefetcher starts again in a forked child (tank-api's
    pre-forked workers each prefetch; the ``O_EXCL`` claim keeps their fills apart)."""

    def __init__(self, service: ImageService, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _restart(ref))

    def _after_fork(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        if self._started:
            self.start()

    def start(self) -> None:
        if self.service.cache is None or self._thread is not None:
            return
        self._started = True
        self._thread = threading.Thread(target=self._run, name="tank-cache-prefetch", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._started = False
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                prefetch_once(self.service)
            except Exception:
                log.exception("image cache: prefetch pass failed")
            self._wake.wait(self.interval)


def _restart(ref: weakref.ref[Prefetcher]) -> None:
    prefetcher = ref()
    if prefetcher is not None:
        prefetcher._after_fork()
