"""``tank-manage restore``: bring a ``pending_delete`` image back (glance-scrubber
``--restore``)."""

from __future__ import annotations

import logging

from tank import errors, quotas
from tank.model import Context, Image, Status
from tank.service import ImageService

log = logging.getLogger(__name__)


def restore(service: ImageService, image_id: str, *, force: bool = False) -> Image:
    """``pending_delete -> active`` (not deleted, ``deleted_at`` cleared), with its data
    and members as they were. NotFound for an unknown id; Conflict for an image in any
    other status, a scrub pass having claimed it meanwhile included (Glance's words).

    A pending_delete image counts for no quota; an active one does. Unless ``force``,
    QuotaExceeded (nothing changed) if the restore would take its owner over one of its
    ``[quotas]`` limits, checked by the registry in the same transaction as the write.
    The operator is held to the owner's limits even though admins may be exempt from
    quotas (``admins_exempt``): the image is the project's, not the operator's.
    """
    admin = Context.admin()
    try:
        previous = service.registry.get(image_id, context=admin)
    except errors.NotFound:
        raise errors.NotFound(f"No image found with ID {image_id}") from None
    if previous.status is not Status.PENDING_DELETE:
        raise errors.Conflict(_not_pending(previous.status))
    try:
        image = service.registry.update(
            previous.id,
            {"status": Status.ACTIVE, "deleted": False, "deleted_at": None},
            context=admin,
            expected_status=Status.PENDING_DELETE,
            quota=None if force else _quota_check(service, previous.owner),
        )
    except errors.Conflict:  # a scrub pass claimed it between the two calls
        current = service.registry.get(image_id, context=admin)
        raise errors.Conflict(_not_pending(current.status)) from None
    log.info("image %s restored: pending_delete -> active", image.id)
    service.plugins.image_updated(image=image, previous=previous, context=admin)
    return image


def _quota_check(service: ImageService, owner: str | None) -> quotas.QuotaCheck | None:
    if owner is None:
        return None
    return quotas.check_for(service.quota_config.limits_of(owner).in_units())


def _not_pending(status: Status) -> str:
    return f"cannot restore the image from {status} to active (wanted from_state=pending_delete)"
