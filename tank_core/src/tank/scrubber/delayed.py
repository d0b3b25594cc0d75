"""Scrubbing ``pending_delete`` images: removing the data a delayed delete kept.

An image is due once ``deleted_at + scrub_time`` has passed. Each is handled alone:

1. **Claim** it: ``pending_delete -> deleted`` in one conditional registry update
   (``expected_status``), which also records the claim in two reserved properties
   (:data:`CLAIMED`, :data:`CLAIM`). Of two scrubbers only one wins; the other skips
   the image. A restore (``pending_delete -> active``) and the claim exclude each other
   the same way, so data is removed only from an image nobody can restore any more.
2. **Remove the data** Tank owns from each store (NotFound counts as removed).
3. All removed: drop the claim; the image stays ``deleted``. A store failed: put the
   image back to ``pending_delete`` (same ``deleted_at``) without the locations whose
   data is gone, so a restore never points at missing data and the next pass retries.

Glance removes the data first and then marks the image deleted; a restore landing in
between leaves an active image without data. Claiming first closes that window, at the
price of step 3's way back (``deleted -> pending_delete``, allowed for the scrubber
only) and of a claim left behind by a scrubber that died between 1 and 3: a claim older
than :data:`CLAIM_LEASE` is taken over by the next pass (found by
``property-os_glance_scrub_claimed``), which does 2 and 3 again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterator

import attrs

from tank import errors
from tank.model import Context, Image, ListQuery, Location, Status
from tank.service import ImageService
from tank.store import Capability

log = logging.getLogger(__name__)

#: Reserved property marking an image a scrub pass claimed (value ``"true"``, so that a
#: listing can filter on it).
CLAIMED = "os_glance_scrub_claimed"
#: Reserved property: who claimed it and when (``<token> <epoch seconds>``).
CLAIM = "os_glance_scrub_claim"
#: Seconds after which a claim counts as abandoned (its scrubber died) and is taken over.
CLAIM_LEASE = 3600.0
PAGE = 1000


@attrs.define
class Outcome:
    """What happened to the images one pass looked at."""

    scrubbed: list[str] = attrs.field(factory=list)
    #: image id -> why it stays pending_delete
    failed: dict[str, str] = attrs.field(factory=dict)
    #: claimed by another scrubber, or restored, meanwhile
    skipped: list[str] = attrs.field(factory=list)


def scrub_due(service: ImageService, scrub_time: float, *, now: float | None = None) -> Outcome:
    """Scrub every pending_delete image due at ``now`` and take over abandoned claims."""
    now = time.time() if now is None else now
    outcome = Outcome()
    due = [i.id for i in _listed(service, _pending_query) if _due(i, scrub_time, now)]
    abandoned = [i.id for i in _listed(service, _claimed_query) if _abandoned(i, now)]
    for image_id in due:
        scrub_one(service, image_id, outcome, expected=Status.PENDING_DELETE)
    for image_id in abandoned:
        log.warning("image %s: taking over a scrub whose scrubber stopped", image_id)
        scrub_one(service, image_id, outcome, expected=Status.DELETED)
    return outcome


def scrub_one(service: ImageService, image_id: str, outcome: Outcome, *, expected: Status) -> None:
    """Claim, remove the data, finish (see the module docstring)."""
    admin = Context.admin()
    token = uuid.uuid4().hex
    try:
        image = service.registry.get(image_id, context=admin)
        if expected is Status.DELETED and image.properties.get(CLAIMED) != "true":
            return  # finished by someone else meanwhile
        image = service.registry.update(
            image_id,
            {
                **({} if expected is Status.DELETED else {"status": Status.DELETED}),
                "properties": {CLAIMED: "true", CLAIM: f"{token} {time.time():.3f}"},
            },
            context=admin,
            expected_status=expected,
        )
    except (errors.Conflict, errors.NotFound) as exc:
        log.info(
            "image %s: not scrubbed here (restored, or another scrubber has it): %s", image_id, exc
        )
        outcome.skipped.append(image_id)
        return
    except errors.TankError as exc:
        log.error("image %s: could not be claimed for scrubbing: %s", image_id, exc)
        outcome.failed[image_id] = f"could not be claimed: {exc}"
        return
    kept, failures = _remove_data(service, image)
    if not failures:
        _finish(service, image, token)
        log.info("image %s has been scrubbed: its data is removed, it is deleted", image_id)
        outcome.scrubbed.append(image_id)
        return
    why = "; ".join(failures)
    log.warning(
        "image %s: data not removed from every store (%s): it stays pending_delete "
        "and the next pass tries again",
        image_id,
        why,
    )
    outcome.failed[image_id] = why
    _give_back(service, image, token, kept)


def _remove_data(service: ImageService, image: Image) -> tuple[list[Location], list[str]]:
    """Remove the owned data of each location: the locations still holding data (or
    not Tank's), and one line per failure."""
    kept: list[Location] = []
    failures: list[str] = []
    for location in image.locations:
        if not location.owned:
            kept.append(location)
            continue
        try:
            backend = service.stores.for_location(location.url, location.store)
            if Capability.DELETE not in backend.capabilities:
                kept.append(location)  # a read-only store: as an immediate delete
                continue
            backend.delete(location.url)
        except errors.NotFound:
            log.info("image %s: data in store %s was already gone", image.id, location.store)
        except Exception as exc:  # noqa: BLE001 - any store failure: retried next pass
            reason = str(exc) if isinstance(exc, errors.TankError) else type(exc).__name__
            log.error(
                "image %s: data in store %s not removed: %s", image.id, location.store, reason
            )
            failures.append(f"store {location.store}: {reason}")
            kept.append(location)
        else:
            log.info("image %s: data removed from store %s", image.id, location.store)
    return kept, failures


def _finish(service: ImageService, image: Image, token: str) -> None:
    """Drop the claim (the image is deleted, its locations stay on record as an
    immediate delete leaves them)."""
    _unclaim(service, image, token, {})


def _give_back(service: ImageService, image: Image, token: str, kept: list[Location]) -> None:
    """Back to pending_delete with only ``kept`` locations: retried next pass."""
    _unclaim(service, image, token, {"status": Status.PENDING_DELETE, "locations": kept})


def _unclaim(service: ImageService, image: Image, token: str, changes: dict[str, object]) -> None:
    admin = Context.admin()
    try:
        current = service.registry.get(image.id, context=admin)
        if not current.properties.get(CLAIM, "").startswith(token):
            log.warning("image %s: its scrub claim was taken over meanwhile", image.id)
            return
        props = {k: v for k, v in current.properties.items() if k not in (CLAIMED, CLAIM)}
        service.registry.update(
            image.id,
            {**changes, "properties": props},
            context=admin,
            purge_props=True,
            expected_status=Status.DELETED,
        )
    except errors.TankError as exc:  # the claim expires; the next pass after it finishes
        log.error(
            "image %s: scrub claim not released (taken over after %g s): %s",
            image.id,
            CLAIM_LEASE,
            exc,
        )


def _due(image: Image, scrub_time: float, now: float) -> bool:
    deleted_at = image.deleted_at
    if deleted_at is None:
        return True
    if deleted_at.tzinfo is None:
        deleted_at = deleted_at.replace(tzinfo=dt.UTC)
    return deleted_at.timestamp() + scrub_time <= now


def _abandoned(image: Image, now: float) -> bool:
    try:
        claimed_at = float(image.properties.get(CLAIM, "").split()[1])
    except (IndexError, ValueError):
        return True
    return now - claimed_at > CLAIM_LEASE


def _pending_query(marker: str | None) -> ListQuery:
    return ListQuery(
        filters={"status": Status.PENDING_DELETE.value, "deleted": True, "visibility": "all"},
        sort=(("id", "asc"),),
        limit=PAGE,
        marker=marker,
    )


def _claimed_query(marker: str | None) -> ListQuery:
    return ListQuery(
        filters={
            "status": Status.DELETED.value,
            "deleted": True,
            "visibility": "all",
            f"property-{CLAIMED}": "true",
        },
        sort=(("id", "asc"),),
        limit=PAGE,
        marker=marker,
    )


def _listed(service: ImageService, query: Callable[[str | None], ListQuery]) -> Iterator[Image]:
    """Every image of a paged admin listing (ids in order, so a status changing
    meanwhile does not skip any)."""
    admin = Context.admin()
    marker = None
    while True:
        page = service.registry.list(query(marker), context=admin)
        yield from page
        if len(page) < PAGE:
            return
        marker = page[-1].id
