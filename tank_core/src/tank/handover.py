"""Data handed over by services: the v2 locations API (Glance 2024.1+).

Nova and Cinder on Ceph snapshot a disk straight into the image store (an RBD clone
named after a new queued image) and then tell the image service where it is
(``POST /v2/images/{id}/locations``), instead of uploading the bytes. Two advisories
(OSSN-0065, OSSN-0090) came from letting users do that, so here:

* only services and admins hand data over (the API checks the role), only to a queued
  image, and only once: the first location is the image's data;
* the location must be data of a configured store, readable now (``get_size``), and
  inside what that store owns (the fs store refuses any path outside its directory);
  a location naming *another* image's id is refused, so a handover can neither read
  nor, by deleting this image later, destroy another image's data;
* Tank reads the data back in the background and computes the MD5 and the multihash,
  and compares them with the validation data, if given. Until then the image is
  ``importing`` and has no downloadable data; on a match it becomes ``active`` with
  the size and checksums of what was read, on a mismatch (or unreadable data) the
  location is dropped and the image is ``queued`` again, the reason logged. An image
  never becomes active with checksums that are not its data's.

The image carries the claimed checksums while it is verified, and the reserved property
:data:`VERIFYING` marks it, so a restart finds and verifies it again (:meth:`recover`).

Handed-over data is owned (deleting the image deletes it, as Glance does) unless the
store is read-only (http). A mismatch drops the location but leaves the data: it was
never shown to be this image's, so it is not Tank's to delete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import socket
import threading
from typing import Any

import attrs

from tank import errors, quotas
from tank.locations import redact
from tank.model import Context, Image, ListQuery, Location, Status
from tank.service import ImageService
from tank.store import Backend, Capability
from tank.stores import StoreSet

log = logging.getLogger(__name__)

#: Multihash algorithms a service may name (Glance's add-location schema).
HASH_ALGORITHMS = ("md5", "sha1", "sha256", "sha512")
#: The multihash Tank computes when the service names none (what uploads record).
DEFAULT_HASH_ALGO = "sha256"
#: Reserved property set while a handed-over location is being read back: Glance's
#: marker of the worker computing the hash (kept out of v2 answers).
VERIFYING = "os_glance_hash_op_host"
#: Background verifications running at once; more wait in the queue.
DEFAULT_WORKERS = 2

_HEX = re.compile(r"[0-9a-fA-F]+")
_PAGE = 500


def _hex(field: str, value: object, digest_size: int) -> str:
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) != 2 * digest_size:
        raise errors.ValidationError(
            f"validation_data.{field}", f"must be {2 * digest_size} hexadecimal digits"
        )
    return value.lower()


@attrs.frozen
class ValidationData:
    """What the service says the data is; each part optional (algo and value go together)."""

    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None

    @classmethod
    def parse(cls, raw: object) -> ValidationData:
        """From the request's ``validation_data`` object; ValidationError (400) if bad."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise errors.ValidationError("validation_data", "must be an object")
        unknown = sorted(set(raw) - {"checksum", "os_hash_algo", "os_hash_value"})
        if unknown:
            raise errors.ValidationError(f"validation_data.{unknown[0][:80]}", "unknown key")
        checksum = raw.get("checksum")
        if checksum is not None:
            checksum = _hex("checksum", checksum, 16)
        algo, value = raw.get("os_hash_algo"), raw.get("os_hash_value")
        if (algo is None) != (value is None):
            raise errors.ValidationError(
                "validation_data", "os_hash_algo and os_hash_value go together"
            )
        if algo is not None:
            if algo not in HASH_ALGORITHMS:
                raise errors.ValidationError(
                    "validation_data.os_hash_algo", f"must be one of {', '.join(HASH_ALGORITHMS)}"
                )
            value = _hex("os_hash_value", value, hashlib.new(algo).digest_size)
        return cls(checksum=checksum, os_hash_algo=algo, os_hash_value=value)


class LocationHandover:
    """Add (and verify), list and remove the locations of images, for the v2 API.

    Verification runs on ``workers`` daemon threads, started on first use; a process
    that exits mid-verification leaves the image marked, for :meth:`recover`.
    """

    def __init__(self, service: ImageService, *, workers: int = DEFAULT_WORKERS) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.service = service
        self.workers = workers
        self.host = f"{socket.gethostname()}:{os.getpid()}"
        self._jobs: queue.Queue[str] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        #: Removals from a store, one at a time: each reads, deletes data, then writes
        #: the image's locations, and two at once could both pass the last-copy check.
        self._remove_lock = threading.Lock()

    # --- adding ----------------------------------------------------------------------

    def add(
        self, image_id: str, url: str, validation: ValidationData, *, context: Context
    ) -> Image:
        """Attach ``url`` to the queued image and verify it in the background.

        Returns the image as recorded: ``importing``, with the one location and the
        claimed checksums. Raises Conflict unless the image is queued, Invalid (400) for
        a location no configured store reads, that has no data, or that names another
        image, ImageTooLarge above the size cap.
        """
        registry = self.service.registry
        image = registry.get(image_id, context=context)
        if image.deleted:
            raise errors.NotFound(f"image {image.id} is deleted")
        if image.status is not Status.QUEUED:
            raise errors.Conflict(
                f"image {image.id} is {image.status}: a location can only be added to a "
                "queued image"
            )
        if not context.can_modify(image):
            raise errors.Forbidden(f"image {image.id} belongs to another tenant")
        if not isinstance(url, str) or not url:
            raise errors.ValidationError("url", "must be a non-empty string")
        self.service.refuse_other_images(image.id, url)
        backend, size, url = self._resolve(url)
        self.service.refuse_other_images(image.id, url)  # as the store spells it
        if image.size is not None and image.size != size:
            raise errors.SizeMismatch(
                f"image {image.id} has size {image.size} but the data at the location is "
                f"{size} bytes"
            )
        cap = self.service.image_size_cap
        if size > cap:
            raise errors.ImageTooLarge(f"the data at the location exceeds the limit of {cap} bytes")
        owned = Capability.WRITE in backend.capabilities
        changes = {
            "status": Status.IMPORTING,
            "locations": [Location(url=url, store=backend.name, owned=owned)],
            "checksum": validation.checksum,
            "os_hash_algo": validation.os_hash_algo,
            "os_hash_value": validation.os_hash_value,
            "properties": {VERIFYING: self.host},
        }
        # the handed-over data counts against the owner's image_size_total from now on
        limits = self.service.quota_limits(context, image.owner)
        check = quotas.check_for(limits, **{quotas.SIZE_TOTAL: size})
        image = registry.update(
            image.id,
            changes,
            context=context,
            expected_status=Status.QUEUED,
            **quotas.quota_kwargs(check),
        )
        log.info(
            "image %s: location %s in store %s handed over (%d bytes); verifying",
            image.id,
            redact(url),
            backend.name,
            size,
        )
        self._submit(image.id)
        return image

    def _resolve(self, url: str) -> tuple[Backend, int, str]:
        """The configured store holding ``url``, the size of the data there and the
        location as that store spells it (:meth:`Backend.canonical_location`).

        Several instances of one type (two fs stores) share a scheme: the first whose
        own checks accept the location (the fs store: a file directly in its
        directory) is the one.
        """
        refused: errors.TankError | None = None
        candidates = [b for b in self.service.stores if _handles(b, url)]
        if not candidates:
            self.service.stores.for_location(url)  # raises UnknownScheme, naming the schemes
            raise errors.UnknownScheme(f"no configured store handles {redact(url)}")
        for backend in candidates:
            try:
                canonical = backend.canonical_location(url)
                return backend, backend.get_size(canonical), canonical
            except (errors.BadLocation, errors.UnknownScheme) as exc:
                refused = refused or exc
            except errors.NotFound:
                raise errors.Invalid(
                    f"there is no data at location {redact(url)} in store {backend.name!r}"
                ) from None
        assert refused is not None
        raise refused

    # --- verifying -------------------------------------------------------------------

    def _submit(self, image_id: str) -> None:
        with self._start_lock:
            while len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work, name=f"tank-handover-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        self._jobs.put(image_id)

    def _work(self) -> None:
        while True:
            image_id = self._jobs.get()
            try:
                self.verify(image_id)
            except Exception:
                log.exception("image %s: verifying its handed-over location failed", image_id)
            finally:
                self._jobs.task_done()

    def join(self) -> None:
        """Wait until every submitted verification has finished (tests, shutdown)."""
        self._jobs.join()

    def verify(self, image_id: str) -> Image | None:
        """Read the location back and activate the image, or return it to queued.

        Does nothing (None) unless the image is importing and marked :data:`VERIFYING`.
        """
        admin = Context.admin()
        registry = self.service.registry
        image = registry.get(image_id, context=admin)
        if image.status is not Status.IMPORTING or VERIFYING not in image.properties:
            return None
        if not image.locations:
            return self._reject(image, "it has no location")
        location = image.locations[0]
        algo = image.os_hash_algo or DEFAULT_HASH_ALGO
        try:
            backend = self.service.stores.for_location(location.url, location.store)
            size, md5, digest = _read_back(backend, location.url, algo)
        except errors.TankError as exc:
            return self._reject(image, f"its data could not be read: {exc}")
        wrong = [
            f"{name} is {actual}, not {claimed}"
            for name, claimed, actual in (
                ("size", image.size, size),
                ("checksum", image.checksum, md5),
                ("os_hash_value", image.os_hash_value, digest),
            )
            if claimed is not None and claimed != actual
        ]
        if wrong:
            return self._reject(
                image, "the data does not match its validation data: " + "; ".join(wrong)
            )
        changes = {
            "status": Status.ACTIVE,
            "size": size,
            "checksum": md5,
            "os_hash_algo": algo,
            "os_hash_value": digest,
            "properties": self._unmarked(image.id),
        }
        try:
            image = registry.update(
                image.id, changes, context=admin, purge_props=True, expected_status=Status.IMPORTING
            )
        except (errors.Conflict, errors.NotFound) as exc:
            log.info("image %s changed while its location was verified: %s", image_id, exc)
            return None
        log.info("image %s: handed-over location verified (%d bytes); active", image.id, size)
        self.service.plugins.image_activated(image=image, context=admin)
        return image

    def _reject(self, image: Image, reason: str) -> Image | None:
        """Drop the location, forget the claims: the image is queued again."""
        changes: dict[str, Any] = {
            "status": Status.QUEUED,
            "locations": [],
            "checksum": None,
            "os_hash_algo": None,
            "os_hash_value": None,
            "properties": self._unmarked(image.id),
        }
        try:
            image = self.service.registry.update(
                image.id,
                changes,
                context=Context.admin(),
                purge_props=True,
                expected_status=Status.IMPORTING,
            )
        except (errors.Conflict, errors.NotFound) as exc:
            log.info("image %s changed while its location was verified: %s", image.id, exc)
            return None
        log.warning(
            "image %s: handed-over location refused, image queued again: %s", image.id, reason
        )
        return image

    def _unmarked(self, image_id: str) -> dict[str, str]:
        """The image's properties as they are now (users may change them meanwhile),
        without the marker: what the last update writes, replacing them all."""
        image = self.service.registry.get(image_id, context=Context.admin())
        return {k: v for k, v in image.properties.items() if k != VERIFYING}

    def recover(self) -> list[str]:
        """Verify again every image a stopped process left marked; their ids."""
        admin = Context.admin()
        found: list[str] = []
        marker: str | None = None
        while True:
            page = self.service.registry.list(
                ListQuery(
                    filters={"status": "importing", "visibility": "all"}, limit=_PAGE, marker=marker
                ),
                context=admin,
            )
            found.extend(i.id for i in page if VERIFYING in i.properties)
            if len(page) < _PAGE:
                break
            marker = page[-1].id
        for image_id in found:
            log.info("image %s: verifying its handed-over location again after a restart", image_id)
            self._submit(image_id)
        return found

    # --- listing and removing ----------------------------------------------------------

    def get(self, image_id: str, *, context: Context) -> Image:
        image = self.service.registry.get(image_id, context=context)
        if image.deleted:
            raise errors.NotFound(f"image {image.id} is deleted")
        return image

    def remove_from_store(self, image_id: str, store: str, *, context: Context) -> Image:
        """Remove the image's copy in ``store`` (Glance's ``delete_from_store``).

        Conflict for a store not configured here or an image that is not active,
        NotFound if the image has no copy in ``store``, Forbidden for the image's only
        copy (delete the image instead; Glance's answer). Owned data is deleted first; if the store
        refuses (InUse: RBD clones), nothing changes.
        """
        stores = self.service.stores
        if store not in {b.name for b in stores}:
            raise errors.Conflict(f"store {store[:80]!r} is not configured here")
        with self._remove_lock:
            image = self.get(image_id, context=context)
            if image.status is not Status.ACTIVE:
                raise errors.Conflict(
                    f"image {image.id} is {image.status}: data can only be removed from a "
                    "store of an active image"
                )
            location = next(
                (loc for loc in image.locations if _store_of(stores, loc) == store), None
            )
            if location is None:
                raise errors.NotFound(f"image {image.id} is not stored in store {store!r}")
            if len(image.locations) == 1:
                raise errors.Forbidden(
                    f"store {store!r} holds the only copy of image {image.id}: delete the "
                    "image instead"
                )
            if location.owned:
                try:
                    stores.get(store).delete(location.url)
                except errors.NotFound:
                    log.warning("image %s: its data in store %s was already gone", image.id, store)
            remaining = [loc for loc in image.locations if loc is not location]
            previous = image
            image = self.service.registry.update(
                image.id, {"locations": remaining}, context=context, expected_status=Status.ACTIVE
            )
        log.info("image %s: removed from store %s", image.id, store)
        self.service.plugins.image_updated(image=image, previous=previous, context=context)
        return image


def _handles(backend: Backend, url: str) -> bool:
    try:
        return backend.handles(url)
    except errors.TankError:  # no scheme at all
        return False


def _store_of(stores: StoreSet, location: Location) -> str | None:
    """The store name of a location; v1 registrations may have none (found by scheme)."""
    if location.store is not None:
        return location.store
    try:
        return stores.for_location(location.url).name
    except errors.TankError:
        return None


def _read_back(backend: Backend, url: str, algo: str) -> tuple[int, str, str]:
    """Size, MD5 and ``algo`` digest of the data at ``url``, streamed."""
    md5 = hashlib.md5(usedforsecurity=False)
    multihash = hashlib.new(algo)
    size = 0
    with backend.get(url) as result:
        for chunk in result.chunks:
            size += len(chunk)
            md5.update(chunk)
            multihash.update(chunk)
    return size, md5.hexdigest(), multihash.hexdigest()
