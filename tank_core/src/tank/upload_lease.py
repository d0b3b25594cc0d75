"""Upload leases: an upload in progress shows it is alive, so that one cut short by a
crash can be ended by whoever notices.

The image of an upload in progress (``saving``) keeps a heartbeat in its reserved
property ``os_glance_upload_heartbeat`` (seconds since the epoch, a wall-clock time
because another host reads it): set when the image goes ``saving``, refreshed while
data flows and, in tank-api, by a thread for as long as the request goes on (at most
every quarter lease, one registry write each), removed when the upload ends either way.
Neither API version shows it.

A tank-api killed mid-upload stops refreshing it. Several tank-api processes may share
the registry and one of them may be uploading right now, so starting up proves nothing:
only a heartbeat older than ``[scrubber] upload_lease`` does. Then any of them
(:func:`sweep`, at start-up and every half lease) marks the image ``killed`` (Glance
v1's state for a failed upload: its uploader is gone) with the reason logged, and asks
every store to remove what the upload left (:meth:`Backend.remove_partial`).

A ``saving`` image without the property (saving since before leases existed, or whose
properties a v1 PUT purged: v1 never shows it, so a client cannot send it back) counts
from its last change (``updated_at``) instead; the next refresh writes it again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import attrs

from tank import errors
from tank.model import Context, Image, ListQuery, Status
from tank.streams import DataSource, iter_chunks

if TYPE_CHECKING:
    from tank.service import ImageService

log = logging.getLogger(__name__)

HEARTBEAT = "os_glance_upload_heartbeat"
DEFAULT_LEASE = 60.0
PAGE = 1000


def heartbeat_now() -> str:
    return f"{time.time():.3f}"


def last_sign_of_life(image: Image) -> float:
    """When the upload of ``image`` last said it is alive (epoch seconds)."""
    try:
        return float(image.properties[HEARTBEAT])
    except (KeyError, ValueError):
        updated = image.updated_at
        if updated.tzinfo is None:
            updated = updated.replace(tzinfo=dt.UTC)
        return updated.timestamp()


def expired(image: Image, lease: float) -> bool:
    return time.time() - last_sign_of_life(image) > lease


@attrs.define(eq=False)
class Lease:
    """The lease of one upload in progress in this process."""

    leases: UploadLeases
    image_id: str
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    due: float = 0.0
    ended: bool = False

    def stream(self, data: DataSource) -> Iterator[bytes]:
        """The chunks of ``data``, refreshing the heartbeat as they come (when due). An
        image that stopped being ``saving`` meanwhile (its lease expired and a sweep
        killed it, or it was deleted) ends the upload at once."""
        for chunk in iter_chunks(data):
            if time.monotonic() >= self.due:
                self.refresh(strict=True)
            yield chunk

    def refresh(self, *, strict: bool = False) -> None:
        """Write a heartbeat if one is due (every quarter lease) and the upload has not
        ended: a heartbeat never lands after the upload's last write."""
        with self.lock:
            now = time.monotonic()
            if self.ended or now < self.due:
                return
            self.due = now + self.leases.service.upload_lease / 4
            try:
                self.leases.service.registry.update(
                    self.image_id,
                    {"properties": {HEARTBEAT: heartbeat_now()}},
                    context=Context.admin(),
                    expected_status=Status.SAVING,
                )
            except (errors.Conflict, errors.NotFound) as exc:
                if strict:
                    raise errors.Conflict(
                        f"image {self.image_id} is no longer saving (its upload lease expired "
                        f"or it was deleted): {exc}"
                    ) from None
                log.info("image %s: no longer saving: %s", self.image_id, exc)
            except errors.TankError as exc:
                log.info("image %s: upload heartbeat not recorded: %s", self.image_id, exc)

    def end(self) -> None:
        """No heartbeat after this (waits for one being written)."""
        with self.lock:
            self.ended = True


class UploadLeases:
    """The uploads in progress in this process, and the two threads tank-api runs:
    one refreshes their heartbeats each quarter lease (so that a client sending less
    than a read's worth of data in that time keeps its lease: the server ends uploads
    slower than ``[api] min_rate`` itself), one runs :func:`sweep` at start-up and then
    every half lease. Without the threads (an application embedding ImageService),
    heartbeats are refreshed as chunks arrive only."""

    def __init__(self, service: ImageService) -> None:
        self.service = service
        self._live: set[Lease] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    @contextlib.contextmanager
    def holding(self, image_id: str) -> Iterator[Lease]:
        lease = Lease(self, image_id, due=time.monotonic() + self.service.upload_lease / 4)
        with self._lock:
            self._live.add(lease)
        try:
            yield lease
        finally:
            lease.end()
            with self._lock:
                self._live.discard(lease)

    def start(self, *, sweep: bool = True) -> None:
        """Start the heartbeat thread and, with ``sweep``, the sweep thread (one
        process of a host is enough: tank-api runs it in its worker slot 0)."""
        every = max(self.service.upload_lease / 4, 0.2)
        self._threads = [
            threading.Thread(
                target=self._every, args=(every, self._refresh), name="tank-upload-heartbeat"
            ),
        ]
        if sweep:
            self._threads.append(
                threading.Thread(
                    target=self._every, args=(every * 2, self._sweep), name="tank-upload-sweep"
                )
            )
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self._closing.set()
        for thread in self._threads:
            thread.join(timeout)

    def _sweep(self) -> None:
        sweep(self.service)

    def _refresh(self) -> None:
        with self._lock:
            live = list(self._live)
        for lease in live:
            lease.refresh()

    def _every(self, seconds: float, work: Callable[[], None]) -> None:
        while True:
            try:
                work()
            except Exception:
                log.exception("%s failed; trying again in %g s", work.__name__, seconds)
            if self._closing.wait(seconds):
                return


def sweep(service: ImageService) -> list[str]:
    """Kill every ``saving`` image whose upload lease expired and remove the partial
    data its upload left; the ids killed."""
    admin = Context.admin()
    killed = []
    for image in _saving(service, admin):
        if expired(image, service.upload_lease) and kill(service, image.id):
            killed.append(image.id)
    return killed


def kill(service: ImageService, image_id: str) -> bool:
    """Kill ``image_id`` if it is still ``saving`` with an expired lease (read again:
    the upload may have ended, or another tank-api may have killed it, meanwhile)."""
    admin = Context.admin()
    lease = service.upload_lease
    try:
        image = service.registry.get(image_id, context=admin)
    except errors.NotFound:
        return False
    if image.deleted or image.status is not Status.SAVING or not expired(image, lease):
        return False
    silent = time.time() - last_sign_of_life(image)
    reason = (
        f"the upload stopped: its tank-api showed no sign of life for {silent:.0f} s "
        f"(upload lease {lease:g} s)"
    )
    props = {k: v for k, v in image.properties.items() if k != HEARTBEAT}
    try:
        image = service.registry.update(
            image_id,
            {"status": Status.KILLED, "properties": props},
            context=admin,
            purge_props=True,
            expected_status=Status.SAVING,
        )
    except (errors.Conflict, errors.NotFound):
        return False  # the upload ended, or another tank-api was first
    log.warning("image %s killed: %s", image_id, reason)
    service.plugins.image_upload_failed(image=image, reason=reason, context=admin)
    service.plugins.image_killed(image=image, reason=reason, context=admin)
    if image.locations:  # never the case for an upload; never remove data in use
        return True
    for backend in service.stores:
        try:
            removed = backend.remove_partial(image_id)
        except Exception:
            log.exception("image %s: partial data in store %s not removed", image_id, backend.name)
            continue
        for what in removed:  # a store says "not removed: ..." for what it had to leave
            log.info("image %s: partial data in store %s: %s", image_id, backend.name, what)
    return True


def _saving(service: ImageService, admin: Context) -> Iterator[Image]:
    marker = None
    while True:
        query = ListQuery(
            filters={"status": Status.SAVING.value, "visibility": "all"},
            sort=(("id", "asc"),),
            limit=PAGE,
            marker=marker,
        )
        page = service.registry.list(query, context=admin)
        yield from page
        if len(page) < PAGE:
            return
        marker = page[-1].id
