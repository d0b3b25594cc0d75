"""One import, from its source to the stores, and how a failed one is undone.

A job runs in the :class:`~tank.imports.runner.ImportRunner` pool:

1. the data comes into the staging area: already there (glance-direct), fetched
   (web-download, with a total deadline) or read from the image's first readable
   location (copy-image, verified against the image's size and MD5);
2. the configured steps run on it (not for copy-image: its data is already the image's,
   as in Glance);
3. each target store gets the file through :meth:`Backend.add`, told the size and MD5
   to verify before commit; its SHA-256 is compared after (see :class:`Data` for where
   the expected hashes come from). Each written copy is recorded at once as a location
   marked with the import's id, so that a crash after this point leaves a record of
   what to delete (a crash between a store's commit and that record leaves an
   unrecorded copy: the one window left);
4. the image becomes ``active`` (copy-image: stays active) with one location per
   store and the size and hashes of the data stored; the staging files go.

Any failure undoes it (:func:`fail`): the copies this import wrote are deleted, the
image returns to ``queued`` (copy-image: stays active with its old locations), the
stores are listed in ``os_glance_failed_import``, the reason is logged and kept in
``os_glance_failed_import_reason``, and the staging files go. With
``all_stores_must_succeed = false`` the stores that worked are kept and only the
failing ones listed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from tank import errors, quotas
from tank.checksums import Checksums
from tank.imports import state, web
from tank.imports.pipeline import run_steps
from tank.imports.request import COPY_IMAGE, GLANCE_DIRECT, WEB_DOWNLOAD
from tank.imports.staging import Staged
from tank.model import RESERVED_PREFIX, Image, Location, Status
from tank.streams import iter_chunks

if TYPE_CHECKING:
    from tank.imports.service import ImportService

log = logging.getLogger(__name__)

#: Location metadata naming the import that wrote a copy (removed when it succeeds).
MARK = "os_glance_import_task"
REASON = "os_glance_failed_import_reason"
_REASON_MAX = 1000


@attrs.define
class Data:
    """The file that goes into the stores. Its hashes are known when the file was
    written by this import (download, copy, a step); staged by a client they are taken
    from the first store's write, which reads the file anyway (one pass fewer), and
    every further store is verified against them."""

    path: Path
    size: int
    md5: str | None = None
    hash_algo: str | None = None
    hash_value: str | None = None
    #: What the format inspection found while writing it (None: not inspected).
    virtual_size: int | None = None

    @classmethod
    def of(cls, staged: Staged) -> Data:
        return cls(staged.path, staged.size, staged.md5, staged.hash_algo, staged.hash_value)


@attrs.define(kw_only=True)
class Task:
    """One claimed import. ``restore``: the status the image returns to on failure."""

    id: str
    image_id: str
    method: str
    stores: list[str]
    uri: str | None = None
    all_must_succeed: bool = True
    restore: Status = Status.QUEUED
    #: Copies written so far (deleted if the import fails).
    written: list[Location] = attrs.field(factory=list)
    #: The quota limits of the image's owner the import is held to (bytes; {}: none).
    limits: dict[str, int] = attrs.field(factory=dict)


def multihash(sums: Checksums) -> tuple[str, str]:
    """``(os_hash_algo, os_hash_value)`` of stored data (the algorithm is ``[api]
    hashing_algorithm``: the staging area and every store write use the service's)."""
    return sums.hash_algo, sums.hash_value


def run(service: ImportService, task: Task) -> Image | None:
    """Run ``task`` to its end; on failure undo it. A :mod:`tank.errors` failure is the
    import's outcome (logged by :func:`fail`, None returned); anything else is a bug,
    re-raised for the runner to log with its traceback."""
    try:
        return _run(service, task)
    except BaseException as exc:
        reason = reason_of(exc)
        if service.runner.stopping.is_set() and not isinstance(exc, errors.ShuttingDown):
            reason = f"tank-api stopped during the import of {task.image_id} ({reason})"
        fail(service, task, reason)
        if isinstance(exc, errors.TankError):
            return None
        raise
    finally:
        service.release(task)


def _run(service: ImportService, task: Task) -> Image:
    image = service.registry_get(task.image_id)
    source = _stage_source(service, task, image)
    path = source.path
    changes: dict[str, Any] = {}
    if task.method != COPY_IMAGE and service.steps:
        result = run_steps(service.steps, path, image, stopping=service.runner.stopping)
        path, changes = result.path, dict(result.changes)
    final = source if path == source.path else _made_by_steps(path, changes)
    _reserve_stores(service, task, image, final)
    failed: list[str] = []
    made = _as_made(image, changes)
    for name in task.stores:
        _check_stopping(service, task)
        try:
            _write(service, task, name, final, made)
        except Exception as exc:
            if task.all_must_succeed or isinstance(exc, errors.ShuttingDown):
                raise
            log.warning("image %s: import into store %s failed: %s", task.image_id, name, exc)
            failed.append(name)
            service.record(task, props={state.IMPORTING: _left(task, name, failed)})
    if not task.written:
        raise errors.ImportStepFailed(
            f"the data could not be written to any store ({', '.join(failed)})"
        )
    return _finish(service, task, final, changes, failed)


def _as_made(image: Image, changes: dict[str, Any]) -> Image:
    """``image`` with the formats the steps gave its data (``convert``)."""
    formats = {k: changes[k] for k in ("disk_format", "container_format") if k in changes}
    return attrs.evolve(image, **formats) if formats else image


def _stage_source(service: ImportService, task: Task, image: Image) -> Data:
    cap = service.images.image_size_cap
    if task.method == GLANCE_DIRECT:
        path = service.staging.path(task.image_id)
        try:
            return Data(path, path.stat().st_size)
        except FileNotFoundError:
            raise errors.NotFound(
                f"image {task.image_id} has no staged data on this host"
            ) from None
    if task.method == WEB_DOWNLOAD:
        assert task.uri is not None
        settings = service.config
        with (
            web.fetch(
                task.uri,
                allow_private_networks=settings.allow_private_networks,
                max_size=cap,
                timeout=settings.web_download_timeout,
                deadline=settings.web_download_deadline,
            ) as stream,
            service.on_stop(stream.abort, task.image_id),
        ):
            chunks = quotas.metered(
                _watch(service, task, stream),
                service.images.registry,
                task.image_id,
                quotas.STAGE_TOTAL,
                task.limits.get(quotas.STAGE_TOTAL),
                1,
            )
            staged = service.staging.write(task.image_id, chunks, max_size=cap)
            return Data.of(staged)
    # copy-image: the image's own data, from its first readable location
    with service.images.read(image) as data:
        staged = service.staging.write(task.image_id, _watch(service, task, data), max_size=cap)
    if staged.size != image.size or (image.checksum and staged.md5 != image.checksum):
        raise errors.StoreError(
            f"the stored data of image {image.id} does not match its size and checksum: not copied"
        )
    return Data.of(staged)


def _reserve_stores(service: ImportService, task: Task, image: Image, final: Data) -> None:
    """Hold room for the data in every target store before writing any (its size is
    known now: steps may have changed it); QuotaExceeded fails the import."""
    limit = task.limits.get(quotas.SIZE_TOTAL)
    if limit is None:
        return
    total = final.size * (len(image.locations) + len(task.stores))
    service.images.registry.reserve(task.image_id, quotas.SIZE_TOTAL, total, limit=limit)


def _made_by_steps(path: Path, changes: dict[str, Any]) -> Data:
    """The steps' output, with the size and hashes the step that wrote it computed."""
    return Data(
        path,
        path.stat().st_size,
        changes.get("checksum"),
        changes.get("os_hash_algo"),
        changes.get("os_hash_value"),
    )


def _write(service: ImportService, task: Task, name: str, final: Data, image: Image) -> None:
    """Copy ``final`` into store ``name``; ``image`` as the data makes it (the steps'
    changes applied): its formats decide the inspection, as Glance's import does."""
    backend = service.images.stores.get(name)
    check = service.images.format_check(image)
    formats = {k: getattr(image, k) for k in ("disk_format", "container_format")}
    service.images.plugins.image_upload_started(  # Glance's image.prepare, per store
        image=attrs.evolve(service.registry_get(task.image_id), **formats),
        store=name,
        context=service.admin,
    )
    with final.path.open("rb") as f:
        stored = backend.add(
            task.image_id,
            _watch(service, task, iter_chunks(f)),
            size=final.size,
            checksum=final.md5,
            max_size=service.images.image_size_cap,
            hash_algo=final.hash_algo or service.images.hashing_algorithm,
            check=check,
        )
    if check is not None and check.virtual_size and final.virtual_size is None:
        final.virtual_size = check.virtual_size
    location = Location(url=stored.location, store=name, metadata={MARK: task.id})
    if final.md5 is None:  # the first store read the file: its hashes are the file's
        final.md5 = stored.checksums.md5
        final.hash_algo, final.hash_value = multihash(stored.checksums)
    elif multihash(stored.checksums) != (final.hash_algo, final.hash_value):
        _delete(service, location)
        raise errors.ChecksumMismatch(
            f"the copy of image {task.image_id} in store {name} has another "
            f"{final.hash_algo} than the staged data",
            store=name,
        )
    task.written.append(location)
    try:
        image = service.registry_get(task.image_id)
        recorded = service.record(
            task,
            locations=(*image.locations, location),
            props={state.IMPORTING: _left(task, name)},
        )
    except BaseException:
        task.written.remove(location)
        _delete(service, location)
        raise
    data = {"size": final.size, "checksum": final.md5}
    data.update(os_hash_algo=final.hash_algo, os_hash_value=final.hash_value, **formats)
    service.images.plugins.image_data_stored(  # Glance's image.upload, per store
        image=attrs.evolve(recorded, **data), store=name, context=service.admin
    )


def _left(task: Task, done: str, failed: Iterable[str] = ()) -> str:
    finished = {*[loc.store for loc in task.written], done, *failed}
    return state.join_stores(s for s in task.stores if s not in finished)


def _finish(
    service: ImportService, task: Task, final: Data, changes: dict[str, Any], failed: list[str]
) -> Image:
    image = service.registry_get(task.image_id)
    locations = [_unmarked(loc) if loc.metadata.get(MARK) == task.id else loc
                 for loc in image.locations]  # fmt: skip
    fields: dict[str, Any] = {"locations": locations}
    if task.method != COPY_IMAGE:
        algo, value = final.hash_algo, final.hash_value
        if final.virtual_size is not None and changes.get("virtual_size") is None:
            fields["virtual_size"] = final.virtual_size
        fields.update(changes)
        fields.update(
            status=Status.ACTIVE,
            size=final.size,
            checksum=final.md5,
            os_hash_algo=algo,
            os_hash_value=value,
        )
    props = dict(image.properties)  # as they are now: a user may have changed some
    for key, value in fields.pop("properties", {}).items():  # what the steps set
        if not key.startswith(RESERVED_PREFIX):
            props[key] = value
    previous_failed = [s for s in state.store_list(props.get(state.FAILED)) if s not in task.stores]
    props = state.without(props, *state.IN_FLIGHT, state.FAILED, REASON)
    if previous_failed or failed:
        props[state.FAILED] = state.join_stores([*previous_failed, *failed])
    done = service.record(task, replace_props=props, final=True, **fields)
    task.written.clear()  # the image's now: nothing to undo any more
    with contextlib.suppress(OSError):
        service.staging.remove(task.image_id)
    log.info(
        "image %s: %s import %s done into %s%s",
        task.image_id,
        task.method,
        task.id,
        ", ".join(loc.store or "?" for loc in task.written),
        f" (failed: {', '.join(failed)})" if failed else "",
    )
    if task.method != COPY_IMAGE:
        service.images.plugins.image_activated(image=done, context=service.admin)
    return done


def fail(service: ImportService, task: Task, reason: str, *, failed: Iterable[str] = ()) -> None:
    """Undo ``task``: delete what it wrote, put the image back, record why. Never raises
    (it runs in error paths); what it cannot do is logged."""
    log.warning("image %s: %s import %s failed: %s", task.image_id, task.method, task.id, reason)
    for location in task.written:
        _delete(service, location)
    try:
        image = service.registry_get(task.image_id)
    except errors.NotFound:
        image = None
    except Exception:
        log.exception("image %s: cannot read it to undo its import", task.image_id)
        image = None
    if image is not None and not image.deleted and image.properties.get(state.TASK) == task.id:
        _restore(service, task, image, reason, [*failed] or task.stores)
    elif image is not None and image.deleted:
        _delete_marked(service, task, image)
    with contextlib.suppress(Exception):
        service.staging.remove(task.image_id)


def _restore(
    service: ImportService, task: Task, image: Image, reason: str, failed: list[str]
) -> None:
    kept: list[Location] = []
    for location in image.locations:
        if location.metadata.get(MARK) == task.id or (
            task.restore is not Status.ACTIVE and location.owned
        ):
            _delete(service, location)
        else:
            kept.append(location)
    props = state.without(image.properties, *state.IN_FLIGHT, state.STAGE_HOST)
    props[state.FAILED] = state.join_stores([*state.store_list(props.get(state.FAILED)), *failed])
    props[REASON] = reason[:_REASON_MAX]
    fields: dict[str, Any] = {"locations": kept}
    if image.status is not task.restore:
        fields["status"] = task.restore
    if task.restore is not Status.ACTIVE:  # no data left: no size or digests of it
        fields.update(
            size=None, checksum=None, os_hash_algo=None, os_hash_value=None, virtual_size=None
        )
    try:
        restored = service.record(task, replace_props=props, final=True, **fields)
    except Exception:
        log.exception("image %s: cannot record that its import failed", task.image_id)
        return
    if task.method != COPY_IMAGE:  # its data failed to arrive: Glance's failed image.upload
        service.images.plugins.image_upload_failed(
            image=restored, reason=reason, context=service.admin
        )


def _delete_marked(service: ImportService, task: Task, image: Image) -> None:
    for location in image.locations:
        if location.metadata.get(MARK) == task.id:
            _delete(service, location)


def _delete(service: ImportService, location: Location) -> None:
    try:
        service.images.stores.for_location(location.url, location.store).delete(location.url)
    except errors.NotFound:
        pass
    except Exception:
        log.exception("could not delete an import's copy in store %s", location.store)


def _unmarked(location: Location) -> Location:
    metadata = {k: v for k, v in location.metadata.items() if k != MARK}
    return attrs.evolve(location, metadata=metadata)


def _watch(service: ImportService, task: Task, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks``, stopping with ShuttingDown once tank-api is stopping."""
    stopping: threading.Event = service.runner.stopping
    for chunk in chunks:
        if stopping.is_set():
            raise errors.ShuttingDown(f"tank-api stopped during the import of {task.image_id}")
        if service.cancelled(task.image_id):
            raise errors.NotFound(f"image {task.image_id} was deleted during its import")
        yield chunk


def _check_stopping(service: ImportService, task: Task) -> None:
    if service.runner.stopping.is_set():
        raise errors.ShuttingDown(f"tank-api stopped during the import of {task.image_id}")


def reason_of(exc: BaseException) -> str:
    """What to tell the user: a Tank error's own message (they never hold secrets; URLs
    are redacted), else only the kind of failure (the details are in the log)."""
    if isinstance(exc, errors.TankError):
        return str(exc)
    return f"internal error ({type(exc).__name__}; see the tank-api log)"
