"""Finding imports a dead tank-api left half-done, and failing them cleanly.

An import or stage in flight keeps a heartbeat in its image
(:data:`~tank.imports.state.HEARTBEAT`). Several tank-api processes may share one
registry, and one of them may be running an import right now, so starting up proves
nothing: only a heartbeat older than ``[import] lease_seconds`` does. Such an import is
failed exactly as a failing one fails itself (:func:`tank.imports.job.fail`): the
copies it wrote, found by the import id on their locations, are deleted, the image goes
back to ``queued`` (copy-image: stays active), its stores are listed in
``os_glance_failed_import``, and its staging files go. A stage whose tank-api died
returns its image to ``queued`` with nothing staged.

The candidates are images ``importing`` or ``uploading`` and images with files in this
host's staging area (a copy-image keeps its active status, but stages its data here).
Staging files no import or stage claims any more (their image was deleted, or an
import's cleanup was cut short) are removed.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from tank import errors
from tank.imports import job, state
from tank.model import Image, ListQuery, Status

if TYPE_CHECKING:
    from tank.imports.service import ImportService

log = logging.getLogger(__name__)
PAGE = 1000


def sweep(service: ImportService) -> list[str]:
    """Recover every candidate image (see the module docstring); the ids recovered."""
    candidates = set(service.staging.leftovers())
    candidates.update(_in_flight(service))
    recovered = []
    for image_id in sorted(candidates):
        if service.is_live(image_id):
            continue
        try:
            image = service.registry_get(image_id)
        except errors.NotFound:
            with contextlib.suppress(OSError):
                service.staging.remove(image_id)
            continue
        if recover(service, image):
            recovered.append(image_id)
    return recovered


def recover(service: ImportService, image: Image) -> bool:
    """Fail the import or stage of ``image`` if its lease expired; remove staging files
    nothing claims. True if something was failed."""
    props = image.properties
    lease = service.config.lease_seconds
    if image.deleted:
        with contextlib.suppress(OSError):
            service.staging.remove(image.id)
        return False
    if state.TASK in props or state.HEARTBEAT in props:
        if not state.lease_expired(props, lease):
            return False
        reason = (
            f"the tank-api running this import stopped: no sign of life for more than {lease:g} s"
        )
        if state.TASK not in props:  # a stage
            log.warning("image %s: interrupted stage found; queued again", image.id)
            service.unstage(image.id, reason)
            return True
        marked = [
            loc.store
            for loc in image.locations
            if loc.metadata.get(job.MARK) == props[state.TASK] and loc.store
        ]
        stores = state.store_list(props.get(state.IMPORTING))
        task = job.Task(
            id=props[state.TASK],
            image_id=image.id,
            method="interrupted",
            stores=[*marked, *stores],
            restore=Status.ACTIVE if image.status is Status.ACTIVE else Status.QUEUED,
        )
        log.warning("image %s: interrupted import %s found; failing it", image.id, task.id)
        job.fail(service, task, reason)
        return True
    waiting = image.status is Status.UPLOADING and service.staging.exists(image.id)
    if not waiting and image.id in service.staging.leftovers():
        log.info("image %s: removing staging files no import claims", image.id)
        with contextlib.suppress(OSError):
            service.staging.remove(image.id)
    return False


def _in_flight(service: ImportService) -> list[str]:
    ids: list[str] = []
    marker = None
    while True:
        query = ListQuery(
            filters={
                "status": (Status.IMPORTING.value, Status.UPLOADING.value),
                "visibility": "all",
            },
            sort=(("id", "asc"),),
            limit=PAGE,
            marker=marker,
        )
        page = service.images.registry.list(query, context=service.admin)
        ids.extend(image.id for image in page)
        if len(page) < PAGE:
            return ids
        marker = page[-1].id
