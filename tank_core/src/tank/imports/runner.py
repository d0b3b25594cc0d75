"""The background pool imports run in: bounded, one import per image at a time.

``POST /v2/images/{id}/import`` answers 202 at once; the import (fetch, steps, copying
into the stores) runs here, at most ``[import] workers`` at a time, the rest queued.
An image never has two imports running: a second submit is a Conflict.

On shutdown, queued imports that never started are dropped and running ones may be
left to finish (``wait=True``) or abandoned with the process. Either way the registry
still marks each unfinished import as in flight (the image's ``os_glance_import_task``
property, set before submitting), so the next start finds them and finishes or fails
them; :meth:`ImportRunner.shutdown` returns their image ids to log.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable

from tank import errors

log = logging.getLogger(__name__)

Job = Callable[[], object]


class ImportRunner:
    """A thread pool of ``workers`` threads running import jobs (plain callables)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._pool = concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="tank-import"
        )
        self._lock = threading.Lock()
        self._jobs: dict[str, concurrent.futures.Future[object]] = {}
        self._closed = False
        #: Set when shutdown begins: a long job may check it and stop between stages.
        self.stopping = threading.Event()

    def submit(self, image_id: str, job: Job) -> concurrent.futures.Future[object]:
        """Queue ``job`` for ``image_id``; its future holds its result or exception
        (which is also logged: nobody may be waiting for it).

        :raises errors.Conflict: an import of this image is queued or running.
        :raises errors.ShuttingDown: the runner no longer takes jobs.
        """
        with self._lock:
            if self._closed:
                raise errors.ShuttingDown("the server is stopping: try the import again later")
            previous = self._jobs.get(image_id)
            # a finished job may not be forgotten yet (its done-callback runs after the
            # job returned): only an unfinished one is in the way
            if previous is not None and not previous.done():
                raise errors.Conflict(f"an import of image {image_id} is already in progress")
            future = self._pool.submit(self._run, image_id, job)
            self._jobs[image_id] = future
        future.add_done_callback(lambda f: self._forget(image_id, f))
        return future

    def busy(self, image_id: str) -> bool:
        """Whether an import of ``image_id`` is queued or running here."""
        with self._lock:
            return image_id in self._jobs

    def pending(self) -> list[str]:
        """Image ids with a queued or running import, sorted."""
        with self._lock:
            return sorted(self._jobs)

    def shutdown(self, wait: bool) -> list[str]:
        """Take no more jobs and drop the queued ones; with ``wait``, let the running
        ones finish first. Returns the image ids whose import did not finish here:
        dropped, or (without ``wait``) still running."""
        with self._lock:
            self._closed = True
            self.stopping.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)
        with self._lock:
            unfinished = sorted(i for i, f in self._jobs.items() if not f.done())
            cancelled = [i for i, f in self._jobs.items() if f.cancelled()]
        return sorted({*unfinished, *cancelled})

    def _run(self, image_id: str, job: Job) -> object:
        try:
            return job()
        except BaseException:
            log.exception("import of image %s failed", image_id)
            raise

    def _forget(self, image_id: str, done: concurrent.futures.Future[object]) -> None:
        with self._lock:
            if self._jobs.get(image_id) is done and not done.cancelled():
                del self._jobs[image_id]
