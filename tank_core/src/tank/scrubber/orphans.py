"""Orphans: data in the stores that no image references.

Data can outlive every record of it: a tank-api killed between a store's commit and the
registry's record, a delete whose store call failed, a named temporary file, an S3
multipart upload never aborted, Swift segments whose manifest is gone, an RBD image
whose upload never finished. :func:`scan` walks what each store holds
(:meth:`tank.store.Backend.stored`: only what Tank's own naming says Tank wrote) and
compares it with the locations of every image in the registry, deleted and
``pending_delete`` ones included, for they may still be restored or scrubbed.

An item is an orphan only if all of these hold:

* no image's location names it (locations compared in the store's canonical form, so a
  legacy Glance spelling of a location keeps its data too);
* the image whose upload wrote it (stores name data by image id) is not ``saving``,
  ``uploading`` or ``importing``: its upload may still be writing;
* it is older than the grace period (``[scrubber] orphan_grace``, a day by default), so
  an upload that committed after the registry was read is never taken for an orphan.

Orphans are reported; with ``delete`` they are removed (each image read again first),
never forced: an RBD image with clones stays, and is reported as kept.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Iterable, Iterator

import attrs

from tank import errors
from tank.locations import redact
from tank.model import Context, Image, ListQuery, Status
from tank.registry import Registry
from tank.store import Backend, Capability, StoredItem

log = logging.getLogger(__name__)

#: Seconds an item must have been left alone before it can be an orphan.
DEFAULT_GRACE = 86400.0
#: Images in these states may be writing data their record does not name yet.
IN_PROGRESS = frozenset({Status.SAVING, Status.UPLOADING, Status.IMPORTING})
PAGE = 1000


class Outcome(enum.StrEnum):
    #: An orphan, reported (not deleting).
    ORPHAN = "orphan"
    #: An orphan, removed.
    REMOVED = "removed"
    #: An orphan that had to stay (in use, of an unknown age, or removal failed).
    KEPT = "kept"
    #: An orphan that was gone when it was to be removed.
    GONE = "gone"
    #: The store cannot list what it holds, or its listing failed (no item).
    UNLISTED = "unlisted"


@attrs.frozen
class Finding:
    """One line of the report: an orphan and what became of it, or a store not listed."""

    store: str
    outcome: Outcome
    item: StoredItem | None = None
    #: Seconds since the item was last written (None: unknown).
    age: float | None = None
    reason: str = ""
    #: Something went wrong (a listing or a removal failed), as opposed to data that
    #: had to stay (in use) or a store that cannot list at all.
    failed: bool = False

    def describe(self) -> str:
        """The finding as one line, without credentials."""
        if self.item is None:
            return f"{self.store}: {self.outcome}: {self.reason}"
        item = self.item
        where = redact(item.location or item.name)
        parts = [self.store, str(item.kind), where]
        if item.location and item.name not in item.location:
            parts.append(f"({redact(item.name)})")
        parts.append(f"{item.size} bytes" if item.size is not None else "size unknown")
        parts.append(f"age {_duration(self.age)}" if self.age is not None else "age unknown")
        if item.detail:
            parts.append(item.detail)
        line = "  ".join(parts) + f": {self.outcome}"
        return f"{line} ({self.reason})" if self.reason else line


@attrs.define
class Tally:
    """What a scan saw besides its findings."""

    listed: int = 0
    referenced: int = 0
    in_progress: int = 0
    young: int = 0
    findings: dict[Outcome, int] = attrs.field(factory=dict)

    def count(self, finding: Finding) -> Finding:
        self.findings[finding.outcome] = self.findings.get(finding.outcome, 0) + 1
        return finding

    def summary(self) -> str:
        found = ", ".join(f"{n} {o}" for o, n in sorted(self.findings.items())) or "no orphans"
        return (
            f"{self.listed} items listed: {self.referenced} referenced by images, "
            f"{self.in_progress} of uploads in progress, {self.young} younger than the "
            f"grace period; {found}"
        )


@attrs.define
class References:
    """The locations of every image, and the ids of images whose upload may be writing."""

    locations: set[str] = attrs.field(factory=set)
    in_progress: set[str] = attrs.field(factory=set)

    @classmethod
    def of(cls, images: Iterable[Image]) -> References:
        refs = cls()
        for image in images:
            refs.add(image)
        return refs

    def add(self, image: Image) -> None:
        self.locations.update(loc.url for loc in image.locations)
        if image.status in IN_PROGRESS:
            self.in_progress.add(image.id)

    def for_store(self, store: Backend) -> set[str]:
        """The locations ``store`` reads, in its canonical form."""
        return {canonical(store, url) for url in self.locations if _handles(store, url)}


def canonical(store: Backend, url: str) -> str:
    """``url`` as ``store`` spells it; as given when the store cannot parse it (a
    registered location the store refuses still protects whatever it names)."""
    try:
        return store.canonical_location(url)
    except errors.TankError:
        return url


def all_images(registry: Registry) -> Iterator[Image]:
    """Every image the registry holds, deleted ones too, a page at a time."""
    admin = Context.admin()
    marker = None
    while True:
        query = ListQuery(
            filters={"deleted": True, "visibility": "all"},
            sort=(("id", "asc"),),
            limit=PAGE,
            marker=marker,
        )
        page = registry.list(query, context=admin)
        yield from page
        if len(page) < PAGE:
            return
        marker = page[-1].id


def scan(
    registry: Registry,
    stores: Iterable[Backend],
    *,
    grace: float = DEFAULT_GRACE,
    delete: bool = False,
    tally: Tally | None = None,
    now: dt.datetime | None = None,
) -> Iterator[Finding]:
    """The orphans of every store (and the stores that could not be listed), as found.

    The registry is read first, then each store is listed: anything an upload commits
    after the registry was read is younger than ``grace``. With ``delete`` each orphan
    is removed as it is found. ``tally`` collects the counts.
    """
    if grace < 0:
        raise errors.Invalid(f"the grace period must be 0 s or more, not {grace:g}")
    tally = tally if tally is not None else Tally()
    refs = References.of(all_images(registry))
    for store in stores:
        yield from _scan_store(registry, store, refs, grace, delete, tally, now)


def _scan_store(
    registry: Registry,
    store: Backend,
    refs: References,
    grace: float,
    delete: bool,
    tally: Tally,
    now: dt.datetime | None,
) -> Iterator[Finding]:
    if Capability.LIST not in store.capabilities:
        why = f"store type {store.type_name} cannot list what it holds"
        yield tally.count(Finding(store.name, Outcome.UNLISTED, reason=why))
        return
    referenced: set[str] | None = None
    items = store.stored()
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except errors.TankError as exc:
            log.error("orphans: listing store %s failed: %s", store.name, exc)
            why = f"listing failed: {exc}"
            yield tally.count(Finding(store.name, Outcome.UNLISTED, reason=why, failed=True))
            return
        if referenced is None:  # once the store answered: canonical forms may ask it
            referenced = refs.for_store(store)
        tally.listed += 1
        if item.location is not None and item.location in referenced:
            tally.referenced += 1
            continue
        if item.image_id is not None and item.image_id in refs.in_progress:
            tally.in_progress += 1
            continue
        age = _age(item, now)
        if age is not None and age < grace:
            tally.young += 1
            continue
        if age is None:
            why = "its store does not tell when it was written"
            yield tally.count(Finding(store.name, Outcome.KEPT, item, age, why))
        elif not delete:
            yield tally.count(Finding(store.name, Outcome.ORPHAN, item, age))
        else:
            yield tally.count(_remove(registry, store, item, age))


def _remove(registry: Registry, store: Backend, item: StoredItem, age: float) -> Finding:
    """Remove ``item``, unless its image, read again, now references it or is writing."""
    if item.image_id is not None:
        try:
            image = registry.get(item.image_id, context=Context.admin())
        except errors.NotFound:
            image = None
        if image is not None and image.status in IN_PROGRESS:
            why = f"image {image.id} is {image.status} now"
            return Finding(store.name, Outcome.KEPT, item, age, why)
        if image is not None and item.location is not None:
            urls = {canonical(store, loc.url) for loc in image.locations}
            if item.location in urls:
                why = f"image {image.id} references it now"
                return Finding(store.name, Outcome.KEPT, item, age, why)
    try:
        store.remove_stored(item)
    except errors.NotFound:
        return Finding(store.name, Outcome.GONE, item, age, "removed meanwhile")
    except errors.InUse as exc:
        log.info("orphans: %s in store %s stays: %s", item.name, store.name, exc)
        return Finding(store.name, Outcome.KEPT, item, age, str(exc))
    except errors.TankError as exc:
        log.warning("orphans: %s in store %s not removed: %s", item.name, store.name, exc)
        return Finding(store.name, Outcome.KEPT, item, age, str(exc), failed=True)
    log.info(
        "orphans: removed %s %s from store %s (%s bytes)",
        item.kind,
        redact(item.location or item.name),
        store.name,
        item.size,
    )
    return Finding(store.name, Outcome.REMOVED, item, age)


def _handles(store: Backend, url: str) -> bool:
    try:
        return store.handles(url)
    except errors.TankError:
        return False


def _age(item: StoredItem, now: dt.datetime | None) -> float | None:
    if item.modified is None:
        return None
    modified = item.modified
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=dt.UTC)
    return ((now or dt.datetime.now(dt.UTC)) - modified).total_seconds()


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
