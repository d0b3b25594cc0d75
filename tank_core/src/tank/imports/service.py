"""Interoperable import as a service: staging data, claiming an import, keeping it alive.

:class:`ImportService` sits beside :class:`~tank.service.ImageService` (which it uses for
reads, stores and hooks) and writes the import state through the registry itself, with
an admin context: the ``os_glance_*`` properties are refused on the user path
(``ImageService.update``), and a copy-image runs for an admin on another tenant's
image.

Each stage or import in flight here is *live*: its image id, a lock, and the import's
id. A heartbeat thread refreshes the heartbeat of every live one each quarter lease
(under its lock, so a heartbeat never lands after the import ended and resurrects its
state); a recovery thread, at start-up and then every half lease, asks
:mod:`tank.imports.recovery` to fail the imports whose heartbeat stopped (their
tank-api died) and to clean up what they left.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from tank import errors, quotas
from tank.config import ImportConfig, TankConfig
from tank.imports import job, recovery, state, web
from tank.imports.request import (
    COPY_IMAGE,
    GLANCE_DIRECT,
    WEB_DOWNLOAD,
    ImportRequest,
    check_image,
    check_method,
    target_stores,
)
from tank.imports.runner import ImportRunner
from tank.imports.staging import Staging
from tank.imports.steps import ImportStep, build_steps
from tank.model import Context, Image, Status, parse_int
from tank.service import ImageService
from tank.streams import DataSource, iter_chunks

log = logging.getLogger(__name__)

#: A quota check that only ends an image's reservations.
RELEASE = quotas.QuotaCheck(reserve={quotas.SIZE_TOTAL: 0, quotas.STAGE_TOTAL: 0})


@attrs.define
class _Live:
    task_id: str | None  # None: a stage
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    ended: bool = False


class ImportService:
    """Stage, import, and recover imports for one tank-api (see the module docstring)."""

    def __init__(
        self,
        images: ImageService,
        config: ImportConfig,
        steps: list[ImportStep],
        staging: Staging,
        *,
        host: str | None = None,
    ) -> None:
        self.images = images
        self.config = config
        self.steps = steps
        self.staging = staging
        #: Where staged data is (``os_glance_stage_host``): this host's name.
        self.host = host or socket.gethostname()
        self.admin = Context.admin()
        self.runner = ImportRunner(config.workers)
        self._live: dict[str, _Live] = {}
        self._live_lock = threading.Lock()
        self._queued: dict[str, tuple[job.Task, concurrent.futures.Future[object]]] = {}
        self._closing = threading.Event()
        self._keepers: list[threading.Thread] = []
        self._aborts: list[Callable[[], None]] = []
        #: Images deleted while their import ran here: the job stops at its next chunk.
        self._cancelled: set[str] = set()
        self._image_aborts: dict[str, list[Callable[[], None]]] = {}

    @classmethod
    def from_config(cls, config: TankConfig, images: ImageService) -> ImportService:
        """The ``[import]`` section over ``images``; ConfigError for a bad step setting."""
        settings = config.imports
        assert settings.staging_dir is not None  # config.load always sets it
        try:
            staging = Staging(settings.staging_dir, hash_algo=images.hashing_algorithm)
        except OSError as exc:
            raise errors.ConfigError(
                f"{config.source} [import] staging_dir: cannot create {settings.staging_dir}: "
                f"{exc.strerror}"
            ) from None
        steps = build_steps(
            settings,
            images.plugins.import_step_types(),
            staging=staging,
            size_cap=images.image_size_cap,
            source=config.source,
        )
        return cls(images, settings, steps, staging)

    @property
    def methods(self) -> tuple[str, ...]:
        return self.config.methods

    # --- lifecycle ---------------------------------------------------------------

    def start(self, *, recover: bool = True) -> None:
        """Recover expired imports now, then keep heartbeats and recover periodically
        (two threads: a slow recovery never delays a heartbeat). Without ``recover``,
        heartbeats only (tank-api recovers in its worker slot 0)."""
        beat = max(self.config.lease_seconds / 4, 0.2)
        sweep = max(self.config.lease_seconds / 2, 0.5)
        self._keepers = [
            threading.Thread(
                target=self._every, args=(beat, self._heartbeat), name="tank-import-heartbeat"
            ),
        ]
        if recover:
            self._keepers.append(
                threading.Thread(
                    target=self._every, args=(sweep, self._sweep), name="tank-import-recovery"
                )
            )
        for thread in self._keepers:
            thread.daemon = True
            thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop: imports not started are failed (cleanly, now); running ones stop at
        their next chunk and fail themselves; ``timeout`` seconds are given to them."""
        self._closing.set()
        unfinished = self.runner.shutdown(wait=False)
        with self._live_lock:
            aborts = list(self._aborts)
        for abort in aborts:
            abort()
        queued = dict(self._queued)  # done-callbacks change it from other threads
        for image_id in unfinished:
            task, future = queued.get(image_id, (None, None))
            if task is not None and future is not None and future.cancelled():
                job.fail(self, task, "tank-api stopped before the import started")
                self.release(task)
        concurrent.futures.wait([f for _, f in queued.values()], timeout=timeout)
        for thread in self._keepers:
            thread.join(timeout)
        left = sorted(i for i, (_, f) in queued.items() if not f.done())
        if left:
            log.warning("imports still running at shutdown (their leases will expire): %s", left)

    @contextlib.contextmanager
    def on_stop(self, abort: Callable[[], None], image_id: str | None = None) -> Iterator[None]:
        """Call ``abort`` (from the stopping thread) if tank-api stops during the block,
        or if image ``image_id`` is deleted (:meth:`cancel`): a job blocked on the
        network cannot see :attr:`ImportRunner.stopping`."""
        with self._live_lock:
            self._aborts.append(abort)
            if image_id is not None:
                self._image_aborts.setdefault(image_id, []).append(abort)
        try:
            if self.runner.stopping.is_set() or image_id in self._cancelled:
                abort()
            yield
        finally:
            with self._live_lock:
                self._aborts.remove(abort)
                if image_id is not None:
                    aborts = self._image_aborts.get(image_id, [])
                    if abort in aborts:
                        aborts.remove(abort)
                    if not aborts:
                        self._image_aborts.pop(image_id, None)

    def cancel(self, image_id: str) -> None:
        """The image was deleted: stop its import in this process (a web-download
        blocked on a slow server included), so it frees its worker and staging."""
        with self._live_lock:
            if image_id not in self._live and image_id not in self._queued:
                return
            self._cancelled.add(image_id)
            aborts = list(self._image_aborts.get(image_id, []))
        for abort in aborts:
            abort()
        log.info("image %s deleted during its import: stopping the import", image_id)

    def cancelled(self, image_id: str) -> bool:
        return image_id in self._cancelled

    def forget_cancel(self, image_id: str) -> None:
        with self._live_lock:
            self._cancelled.discard(image_id)

    def _every(self, seconds: float, work: Callable[[], None]) -> None:
        """Run ``work`` now and then every ``seconds`` until :meth:`close`."""
        while True:
            try:
                work()
            except Exception:
                log.exception("%s failed; trying again in %g s", work.__name__, seconds)
            if self._closing.wait(seconds):
                return

    def _sweep(self) -> None:
        recovery.sweep(self)

    def _heartbeat(self) -> None:
        with self._live_lock:
            live = list(self._live.items())
        for image_id, entry in live:
            deleted = False
            with entry.lock:
                if entry.ended:
                    continue
                try:
                    image = self.images.registry.update(
                        image_id,
                        {"properties": {state.HEARTBEAT: state.heartbeat_now()}},
                        context=self.admin,
                    )
                    deleted = image.deleted
                except errors.NotFound:
                    deleted = True
                except errors.TankError as exc:
                    log.info("image %s: heartbeat not recorded: %s", image_id, exc)
            if deleted and not self.cancelled(image_id):
                # deleted through another process (another tank-api worker): stop here too
                self.cancel(image_id)

    # --- staging (PUT /v2/images/{id}/stage) ---------------------------------------

    def stage(
        self, image_id: str, data: DataSource, *, context: Context, size: int | str | None = None
    ) -> Image:
        """Put the data of a queued image in the staging area (status ``uploading``).
        Any failure returns the image to ``queued`` with nothing staged.

        :param size: what the client announced (``x-openstack-image-size``), verified.
        """
        if GLANCE_DIRECT not in self.methods:
            raise errors.NotFound("the glance-direct import method is not enabled here")
        image = self.images.get(image_id, context=context)
        if not context.can_modify(image):
            raise errors.Forbidden(f"image {image.id} belongs to another tenant")
        if image.status is not Status.QUEUED:
            raise errors.Conflict(
                f"image {image.id} is {image.status}: only a queued image can be staged"
            )
        expected = None if size is None else parse_int("x-openstack-image-size", size)
        limits = self.images.quota_limits(context, image.owner)
        reserved = 1 if expected is None else expected  # see ImageService._upload
        check = quotas.check_for(limits, **{quotas.STAGE_TOTAL: reserved})
        with self._holding(image.id, None) as entry:
            self.images.registry.update(
                image.id,
                {
                    "status": Status.UPLOADING,
                    "properties": {
                        state.STAGE_HOST: self.host,
                        state.HEARTBEAT: state.heartbeat_now(),
                    },
                },
                context=self.admin,
                expected_status=Status.QUEUED,
                **quotas.quota_kwargs(check),
            )
            try:
                chunks = quotas.metered(
                    data,
                    self.images.registry,
                    image.id,
                    quotas.STAGE_TOTAL,
                    limits.get(quotas.STAGE_TOTAL),
                    reserved,
                )
                staged = self.staging.write(
                    image.id, iter_chunks(chunks), max_size=self.images.image_size_cap
                )
                if expected is not None and staged.size != expected:
                    raise errors.SizeMismatch(
                        f"received {staged.size} bytes but x-openstack-image-size was {expected}"
                    )
                return self._set(
                    image.id,
                    {"size": staged.size},
                    drop=(state.HEARTBEAT,),
                    expected=Status.UPLOADING,
                    entry=entry,
                    release=check is not None,  # staged: its size counts from now on
                )
            except BaseException as exc:
                self.unstage(image.id, job.reason_of(exc), entry=entry)
                raise

    def unstage(self, image_id: str, reason: str, *, entry: _Live | None = None) -> None:
        """A stage failed or was interrupted: nothing staged, the image queued again."""
        with contextlib.suppress(OSError):
            self.staging.remove(image_id)
        try:
            self._set(
                image_id,
                {"status": Status.QUEUED, "size": None},
                drop=(state.STAGE_HOST, state.HEARTBEAT),
                expected=Status.UPLOADING,
                entry=entry,
            )
        except (errors.Conflict, errors.NotFound) as exc:
            log.info("image %s: not queued again after its stage failed: %s", image_id, exc)
        log.info("image %s: stage failed, queued again: %s", image_id, reason)

    # --- importing (POST /v2/images/{id}/import) -----------------------------------

    def start_import(
        self, image_id: str, request: ImportRequest, *, context: Context
    ) -> job.Task | None:
        """Check, claim and queue an import; None if there is nothing to do (copy-image
        with ``all_stores`` of an image in every store already)."""
        check_method(request, self.methods)
        if request.method == WEB_DOWNLOAD:
            assert request.uri is not None
            web.check_uri(request.uri, allow_private_networks=self.config.allow_private_networks)
        image = self.images.get(image_id, context=context)
        if state.TASK in image.properties or state.HEARTBEAT in image.properties:
            image = self._steal_expired(image, context)
        check_image(request, image, context)
        stores = target_stores(request, image, self.images.stores)
        if not stores:
            log.info("image %s is in every store already: nothing to copy", image.id)
            return None
        if request.method == GLANCE_DIRECT and not self.staging.exists(image.id):
            raise errors.Conflict(
                f"the staged data of image {image.id} is not on this host "
                f"({image.properties.get(state.STAGE_HOST, 'unknown host')})"
            )
        copying = request.method == COPY_IMAGE
        limits = self.images.quota_limits(context, image.owner)
        task = job.Task(
            id=str(uuid.uuid4()),
            image_id=image.id,
            method=request.method,
            stores=stores,
            uri=request.uri,
            all_must_succeed=request.all_stores_must_succeed,
            restore=Status.ACTIVE if copying else Status.QUEUED,
            limits=limits,
        )
        props = state.without(image.properties, state.STAGE_HOST, job.REASON)
        failed = [s for s in state.store_list(props.pop(state.FAILED, None)) if s not in stores]
        if failed:
            props[state.FAILED] = state.join_stores(failed)
        props.update(
            {
                state.TASK: task.id,
                state.IMPORTING: state.join_stores(stores),
                state.HEARTBEAT: state.heartbeat_now(),
            }
        )
        changes: dict[str, Any] = {"properties": props}
        if not copying:
            changes["status"] = Status.IMPORTING
        # room for the data in every target store (the size is known once staged or
        # active; a web-download needs at least one byte, and staging room as it comes)
        check = quotas.check_for(
            limits,
            **{
                quotas.SIZE_TOTAL: 1
                if not image.size
                else image.size * (len(image.locations) + len(stores)),
                quotas.STAGE_TOTAL: 1 if request.method == WEB_DOWNLOAD else 0,
            },
        )
        with self._claiming(image.id, task.id) as live:
            claimed = self.images.registry.update(
                image.id,
                changes,
                context=self.admin,
                purge_props=True,
                expected_status=image.status,
                **quotas.quota_kwargs(check),
            )
            # Glance saves the image through its notifying repository here: image.update,
            # before the job's own events
            self.images.plugins.image_updated(image=claimed, previous=image, context=context)
            try:
                future = self.runner.submit(image.id, lambda: job.run(self, task))
            except BaseException:
                self._unclaim(image, live)
                raise
            self._queued[image.id] = (task, future)
            # kept when cancelled (never started): close() fails those
            future.add_done_callback(
                lambda f: None if f.cancelled() else self._queued.pop(image.id, None)
            )
        log.info("image %s: %s import %s queued into %s", image.id, task.method, task.id, stores)
        return task

    def _steal_expired(self, image: Image, context: Context) -> Image:
        """An import or stage in flight: Conflict, unless its lease expired (its tank-api
        died); then it is failed and cleaned up first, as Glance busts a stale lock."""
        if self.is_live(image.id) or not state.lease_expired(
            image.properties, self.config.lease_seconds
        ):
            raise errors.Conflict(f"an import of image {image.id} is already in progress")
        recovery.recover(self, image)
        return self.images.get(image.id, context=context)

    def _unclaim(self, before: Image, live: _Live) -> None:
        with live.lock:
            live.ended = True
            changes: dict[str, Any] = {"properties": before.properties}
            current = self.registry_get(before.id)
            if current.status is not before.status:
                changes["status"] = before.status
            with contextlib.suppress(errors.TankError):
                self.images.registry.update(
                    before.id, changes, context=self.admin, purge_props=True, quota=RELEASE
                )

    # --- what jobs and recovery use --------------------------------------------

    def registry_get(self, image_id: str) -> Image:
        return self.images.registry.get(image_id, context=self.admin)

    def is_live(self, image_id: str) -> bool:
        with self._live_lock:
            return image_id in self._live

    def release(self, task: job.Task) -> None:
        with self._live_lock:
            entry = self._live.get(task.image_id)
            if entry is not None and entry.task_id == task.id:
                del self._live[task.image_id]
            self._cancelled.discard(task.image_id)

    def record(
        self,
        task: job.Task,
        *,
        props: Mapping[str, str] | None = None,
        replace_props: Mapping[str, str] | None = None,
        final: bool = False,
        **fields: Any,
    ) -> Image:
        """Write ``fields`` and properties of ``task``'s image, if the import is still
        ``task`` (not failed by another tank-api after its lease expired: Conflict).
        ``final``: the import ends with this write (no heartbeat after it)."""
        with self._live_lock:
            entry = self._live.get(task.image_id)
        lock = entry.lock if entry is not None and entry.task_id == task.id else None
        with lock or contextlib.nullcontext():
            image = self.registry_get(task.image_id)
            if image.deleted:
                raise errors.NotFound(f"image {task.image_id} was deleted during its import")
            if image.properties.get(state.TASK) != task.id:
                raise errors.Conflict(
                    f"import {task.id} of image {task.image_id} is no longer in flight "
                    "(its lease expired and it was failed)"
                )
            if final and lock is not None:
                assert entry is not None
                entry.ended = True
            changes = dict(fields)
            if replace_props is not None:
                changes["properties"] = dict(replace_props)
            elif props:
                changes["properties"] = dict(props)
            # the import's last write ends its quota reservations (copy-image keeps
            # its status, which would end them otherwise; an import failed by recovery
            # no longer knows whether it held any)
            extra: dict[str, Any] = {"quota": RELEASE} if final else {}
            return self.images.registry.update(
                task.image_id,
                changes,
                context=self.admin,
                purge_props=replace_props is not None,
                **extra,
            )

    def _set(
        self,
        image_id: str,
        fields: Mapping[str, Any],
        *,
        drop: tuple[str, ...],
        expected: Status,
        entry: _Live | None = None,
        release: bool = False,
    ) -> Image:
        """Change fields and remove properties of an image in one conditional write;
        with the ``entry`` of a live stage, that stage ends with it (no heartbeat after).
        ``release``: the image's quota reservations end with the write."""
        with entry.lock if entry is not None else contextlib.nullcontext():
            if entry is not None:
                entry.ended = True
            image = self.registry_get(image_id)
            changes = {**fields, "properties": state.without(image.properties, *drop)}
            extra = {"quota": RELEASE} if release else {}
            return self.images.registry.update(
                image_id,
                changes,
                context=self.admin,
                purge_props=True,
                expected_status=expected,
                **extra,
            )

    @contextlib.contextmanager
    def _holding(self, image_id: str, task_id: str | None) -> Iterator[_Live]:
        """Make ``image_id`` live for the block (Conflict if it is already)."""
        with self._claiming(image_id, task_id) as entry:
            try:
                yield entry
            finally:
                with self._live_lock:
                    if self._live.get(image_id) is entry:
                        del self._live[image_id]

    @contextlib.contextmanager
    def _claiming(self, image_id: str, task_id: str | None) -> Iterator[_Live]:
        """Make ``image_id`` live; it stays live if the block succeeds (the job releases
        it), and not if it fails."""
        entry = _Live(task_id)
        with self._live_lock:
            if image_id in self._live:
                raise errors.Conflict(f"an import of image {image_id} is already in progress")
            self._live[image_id] = entry
        try:
            yield entry
        except BaseException:
            with self._live_lock:
                if self._live.get(image_id) is entry:
                    del self._live[image_id]
            raise
