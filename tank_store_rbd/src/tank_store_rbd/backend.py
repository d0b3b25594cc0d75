"""The Ceph RBD store: one format-2 RBD image per Tank image, frozen in a protected snapshot.

Add creates the image (at full size when the size is known, else growing in large steps),
writes it with asynchronous writes of about ``io_size`` bytes (a bounded number in flight),
trims it to the exact size, then snapshots it as ``snap`` and protects the snapshot so compute
hosts can clone it copy-on-write. The location is ``rbd://<fsid>/<pool>/<image>/snap``.
Reads stream from that snapshot with read-ahead; delete refuses while clones exist.

Writing is :mod:`tank_store_rbd.writer`, reading :mod:`tank_store_rbd.reader`; the
connection and error translation are :mod:`tank_store_rbd.cluster`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import attrs

from tank import errors
from tank.config import between, positive, power_of_two
from tank.store import Backend, Capability, ItemKind, ReadResult, StoredItem, image_id_named
from tank_store_rbd.cluster import Cluster, Handles, load_bindings, translate
from tank_store_rbd.location import EXAMPLE, SCHEME, SNAPSHOT, RBDLocation
from tank_store_rbd.reader import SnapshotReader
from tank_store_rbd.writer import RBDWriter

log = logging.getLogger(__name__)

KiB, MiB = 1 << 10, 1 << 20

#: Feature names as ``rbd feature enable`` spells them -> rbd module constant.
FEATURES = {
    "layering": "RBD_FEATURE_LAYERING",
    "exclusive-lock": "RBD_FEATURE_EXCLUSIVE_LOCK",
    "object-map": "RBD_FEATURE_OBJECT_MAP",
    "fast-diff": "RBD_FEATURE_FAST_DIFF",
    "deep-flatten": "RBD_FEATURE_DEEP_FLATTEN",
}
_FEATURE_NEEDS = {"object-map": "exclusive-lock", "fast-diff": "object-map"}


def _to_tuple(value: Any) -> tuple[Any, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _check_features(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for name in value:
        if name not in FEATURES:
            known = ", ".join(FEATURES)
            raise ValueError(f"features: unknown RBD feature {name!r} (known: {known})")
        needed = _FEATURE_NEEDS.get(name)
        if needed and needed not in value:
            raise ValueError(f"features: {name} needs {needed}")
    if "layering" not in value:
        raise ValueError("features must include layering, or compute hosts cannot clone images")


class RBDBackend(Backend):
    """Images as RBD images of one pool of one Ceph cluster."""

    type_name = "rbd"
    schemes = (SCHEME,)
    location_example = EXAMPLE
    capabilities = Backend.capabilities | {Capability.LIST}

    @attrs.frozen(kw_only=True)
    class Config:
        """``[stores.rbd]``; names follow Glance's ``rbd_store_*`` options."""

        #: Pool the images go to (and legacy ``rbd://<image>`` locations are read from).
        pool: str = "images"
        #: ceph.conf path; "" lets librados search ($CEPH_CONF, /etc/ceph/ceph.conf, ...).
        ceph_conf: str = ""
        #: RADOS client id (``glance`` for client.glance); None: librados' default (admin).
        user: str | None = None
        #: Keyring path; None: the one ceph.conf names for the user.
        keyring: str | None = None
        #: RBD object size (a power of two, 4 KiB to 32 MiB): what compute hosts' clones
        #: inherit.
        chunk_size: int = attrs.field(
            default=8 * MiB, validator=[power_of_two, between(4 * KiB, 32 * MiB)]
        )
        #: Bytes per aio read, and the size small incoming chunks are gathered to before
        #: a write (chunks at least this large are written as they come, uncopied).
        #: 512 KiB: tank-api downloads as fast as with 1 MiB reads (a bare librbd read
        #: loop is ~18% slower, but it is not what limits a download), and the smaller
        #: buffers leave glibc's heap less fragmented: the download peak was 10-30 MiB lower.
        io_size: int = attrs.field(default=512 * KiB, validator=between(4 * KiB, 32 * MiB))
        #: Seconds to reach the monitors before the store reports itself unavailable.
        connect_timeout: int = attrs.field(default=10, validator=positive)
        #: Seconds any single monitor or OSD operation may take once connected.
        op_timeout: int = attrs.field(default=30, validator=positive)
        #: aio writes in flight per upload, in io_size units: an upload holds about
        #: queue_depth * io_size bytes (plus the chunk being received), sent from Tank's
        #: own chunks. 2 MiB in flight were as fast as 4; 1 MiB was slower.
        queue_depth: int = attrs.field(default=4, validator=positive)
        #: Bytes of aio reads in flight per download (read_ahead // io_size reads, at
        #: least one). Each read arrives in a librbd buffer before it is copied into
        #: Tank's, so a download holds about 2 * read_ahead bytes. With 1 MiB tank-api
        #: downloaded as fast as with 2 or 4 MiB (alternating runs, within the noise) and
        #: peaked 5-10 MiB lower.
        read_ahead: int = attrs.field(default=MiB, validator=between(4 * KiB, 256 * MiB))
        #: Features of new images; keep them to what compute hosts' clients support.
        features: tuple[str, ...] = attrs.field(
            default=("layering",), converter=_to_tuple, validator=_check_features
        )
        #: Skip writes whose bytes are all zeros (Glance's ``rbd_thin_provisioning``): RBD
        #: images are sparse, so those extents stay unallocated and read back as zeros.
        #: Off, every byte is written and the image's space is allocated at upload.
        thin_provisioning: bool = False

    def __init__(self, config: RBDBackend.Config, *, name: str | None = None) -> None:
        super().__init__(config, name=name)
        self.rados, self.rbd = load_bindings()
        self.cluster = Cluster(
            self.rados,
            ceph_conf=config.ceph_conf,
            user=config.user,
            keyring=config.keyring,
            connect_timeout=config.connect_timeout,
            op_timeout=config.op_timeout,
            store=self.name,
        )
        self.read_chunk_size = config.io_size
        self.features = 0
        for feature in config.features:
            self.features |= getattr(self.rbd, FEATURES[feature])
        self.order = config.chunk_size.bit_length() - 1

    # --- primitives ----------------------------------------------------------------

    def open_writer(self, image_id: str, size: int | None) -> RBDWriter:
        if not image_id or "/" in image_id or "@" in image_id:
            raise errors.Invalid(f"{image_id!r} cannot be an RBD image name", store=self.name)
        pool = self.config.pool
        with Handles() as stack:
            handle = self._lease(stack)
            ioctx = self._open_pool(stack, handle, pool, configured=True)
            try:
                self.rbd.RBD().create(
                    ioctx,
                    image_id,
                    size or 0,
                    order=self.order,
                    old_format=False,
                    features=self.features,
                )
            except self.rbd.ImageExists:
                raise errors.Duplicate(
                    f"RBD image {image_id} already exists in pool {pool}", store=self.name
                ) from None
            except self.rbd.Error as exc:
                what = f"cannot create RBD image {image_id} in pool {pool}"
                raise self._error(exc, what) from None
            location = RBDLocation(
                image=image_id, pool=pool, fsid=self.cluster.fsid, snapshot=SNAPSHOT
            )
            try:
                image = self.rbd.Image(ioctx, image_id)
            except self.rbd.Error as exc:
                self._remove_quietly(ioctx, image_id)
                raise self._error(exc, f"cannot open new RBD image {image_id}") from None
            return RBDWriter(self, ioctx, image, location, size, stack.pop_all())

    def read(self, location: str, offset: int, length: int | None) -> ReadResult:
        with Handles() as stack:
            loc, image = self._open_snapshot(stack, location)
            total = self._call(image.size, f"cannot stat {loc}", loc)
            start = min(offset, total)
            end = total if length is None else min(total, offset + length)
            if start >= end:
                return ReadResult(size=0, total_size=total, chunks=iter(()))
            reader = SnapshotReader(self, loc, image, start, end, stack.pop_all())
            return ReadResult(size=end - start, total_size=total, chunks=reader)

    def size_of(self, location: str) -> int:
        with Handles() as stack:
            loc, image = self._open_snapshot(stack, location)
            return int(self._call(image.size, f"cannot stat {loc}", loc))

    def remove(self, location: str) -> None:
        """Remove the image and its snapshots; InUse while clones or clients use it."""
        with Handles() as stack:
            loc = self._parse(location)
            handle = self._lease(stack)
            self._check_cluster(loc)
            pool = loc.pool or self.config.pool
            ioctx = self._open_pool(stack, handle, pool, configured=loc.legacy)
            what = f"cannot delete {loc}"
            try:
                snapshots = self._check_unused(ioctx, loc)
                with self.rbd.Image(ioctx, loc.image) as image:
                    for snap, protected in snapshots:
                        if protected:
                            image.unprotect_snap(snap)
                        image.remove_snap(snap)
            except self.rbd.ImageNotFound:
                raise errors.NotFound(
                    f"no RBD image {loc.image} in pool {pool}", store=self.name, location=str(loc)
                ) from None
            except self.rbd.ImageBusy:
                raise errors.InUse(
                    f"{loc} gained a clone while being deleted; not deleted",
                    store=self.name,
                    location=str(loc),
                ) from None
            except self.rbd.Error as exc:
                raise self._error(exc, what, loc) from None
            try:
                self.rbd.RBD().remove(ioctx, loc.image)
            except self.rbd.ImageBusy:
                self._restore_snapshots(ioctx, loc, snapshots)
                raise errors.InUse(
                    f"{loc} is open by another client (e.g. mapped on a host); not deleted",
                    store=self.name,
                    location=str(loc),
                ) from None
            except self.rbd.Error as exc:
                raise self._error(exc, what, loc) from None
            log.info("store %s: deleted %s", self.name, loc)

    def remove_partial(self, image_id: str) -> list[str]:
        """A killed writer leaves the RBD image it created in the configured pool (and the
        protected ``snap`` if it died after the commit, before the registry recorded it).

        Removed like :meth:`remove`, and like it never forced: an image with clones or
        other clients is left in place, and the returned list (and the log) says so.
        """
        if not image_id or "/" in image_id or "@" in image_id:
            return []  # no writer could have created it
        pool = self.config.pool
        name = f"RBD image {pool}/{image_id}"
        with Handles() as stack:
            handle = self._lease(stack)
            try:
                ioctx = self._open_pool(stack, handle, pool, configured=False)
            except errors.NotFound:
                return []  # no pool: nothing was written
            loc = RBDLocation(image=image_id, pool=pool, fsid=self.cluster.fsid, snapshot=SNAPSHOT)
            removed: list[str] = []
            snapshots: list[tuple[str, bool]] = []
            try:
                snapshots = self._check_unused(ioctx, loc)
                with self.rbd.Image(ioctx, image_id) as image:
                    for snap, protected in snapshots:
                        if protected:
                            image.unprotect_snap(snap)
                        image.remove_snap(snap)
                        removed.append(f"snapshot {pool}/{image_id}@{snap}")
                self.rbd.RBD().remove(ioctx, image_id)
            except self.rbd.ImageNotFound:
                return removed
            except errors.InUse as exc:
                return [*removed, self._left(name, str(exc))]
            except self.rbd.ImageBusy:
                self._restore_snapshots(ioctx, loc, snapshots[: len(removed)])
                return [self._left(name, "it gained a clone or a client while being removed")]
            except self.rbd.Error as exc:
                raise self._error(exc, f"cannot remove partial {name}", loc) from None
            removed.append(name)
            return removed

    def list_items(self) -> Iterator[StoredItem]:
        """RBD images of the configured pool named by an image id, each with its
        snapshots: one with Tank's ``snap`` snapshot is data (at
        ``rbd://<fsid>/<pool>/<id>/snap``), one without it an upload that never
        finished. Other images of the pool (clones such as VM disks, anything not named
        by an image id) are not Tank's and are never listed. The detail names the
        snapshots, and clones hanging off them: :meth:`remove_item` never removes those.
        """
        pool = self.config.pool
        with Handles() as stack:
            handle = self._lease(stack)
            try:
                ioctx = self._open_pool(stack, handle, pool, configured=False)
            except errors.NotFound:
                return  # no pool: nothing was written
            names = self._call(lambda: self.rbd.RBD().list(ioctx), f"cannot list pool {pool}")
            for name in sorted(names):
                if image_id_named(name) is None:
                    continue
                try:
                    item = self._item(ioctx, name)
                except self.rbd.ImageNotFound:
                    continue  # removed meanwhile
                except self.rbd.Error as exc:
                    raise self._error(exc, f"cannot look at RBD image {pool}/{name}") from None
                yield item

    def _item(self, ioctx: Any, name: str) -> StoredItem:
        pool = self.config.pool
        loc = RBDLocation(image=name, pool=pool, fsid=self.cluster.fsid, snapshot=SNAPSHOT)
        with self.rbd.Image(ioctx, name, read_only=True) as image:
            size = image.size()
            modified = _timestamp(image, self.rbd)
            snapshots = []
            for snap in image.list_snaps():
                protected = image.is_protected_snap(snap["name"])
                image.set_snap(snap["name"])
                clones = sum(1 for _ in image.list_children2())
                snapshots.append(
                    snap["name"]
                    + (" (protected)" if protected else "")
                    + (f" with {clones} clone{'s' if clones > 1 else ''}" if clones else "")
                )
        names = {s.split(" ", 1)[0] for s in snapshots}
        return StoredItem(
            kind=ItemKind.DATA if SNAPSHOT in names else ItemKind.PARTIAL,
            name=f"{pool}/{name}",
            location=loc.to_uri(),
            image_id=name,
            size=size,
            modified=modified,
            detail=f"snapshots: {', '.join(snapshots)}" if snapshots else "no snapshot",
        )

    def remove_item(self, item: StoredItem) -> None:
        """Like :meth:`remove` (InUse while clones or other clients use it), and never
        an image with a snapshot Tank did not make (InUse too)."""
        name = item.image_id or ""
        if item.kind not in (ItemKind.DATA, ItemKind.PARTIAL) or image_id_named(name) is None:
            raise errors.Invalid(f"store {self.name!r} did not list {item.name}")
        pool = self.config.pool
        with Handles() as stack:
            handle = self._lease(stack)
            ioctx = self._open_pool(stack, handle, pool, configured=False)
            try:
                with self.rbd.Image(ioctx, name, read_only=True) as image:
                    foreign = sorted(s["name"] for s in image.list_snaps() if s["name"] != SNAPSHOT)
            except self.rbd.ImageNotFound:
                raise errors.NotFound(f"no RBD image {pool}/{name}", store=self.name) from None
            except self.rbd.Error as exc:
                raise self._error(exc, f"cannot open RBD image {pool}/{name}") from None
            if foreign:
                raise errors.InUse(
                    f"RBD image {pool}/{name} has snapshots Tank did not make "
                    f"({', '.join(foreign)}); not removed",
                    store=self.name,
                )
            loc = RBDLocation(image=name, pool=pool, fsid=self.cluster.fsid, snapshot=SNAPSHOT)
        self.remove(loc.to_uri())

    def canonical_location(self, location: str) -> str:
        """``rbd://<fsid>/<pool>/<image>/snap`` for any location of an image of this
        cluster (a legacy ``rbd://<image>`` is in the configured pool): an image is kept
        whole, with its snapshots, when any location names it."""
        try:
            loc = self._parse(location)
            with self.cluster.lease():
                fsid = self.cluster.fsid
        except errors.TankError:
            return location
        if not loc.legacy and loc.fsid != fsid:
            return location
        pool = loc.pool or self.config.pool
        return RBDLocation(image=loc.image, pool=pool, fsid=fsid, snapshot=SNAPSHOT).to_uri()

    def check_writable(self) -> None:
        """Disable writes if the pool is missing or forbidden; an unreachable cluster
        only logs (it may be back before the first upload)."""
        try:
            with Handles() as stack:
                handle = self._lease(stack)
                ioctx = self._open_pool(stack, handle, self.config.pool, configured=True)
                self.rbd.RBD().list(ioctx)
        except errors.StoreUnavailable as exc:
            log.warning("store %s: Ceph not reachable at start-up: %s", self.name, exc)
        except errors.Forbidden as exc:
            raise errors.BadStoreConfig(str(exc), store=self.name) from None
        except self.rbd.Error as exc:
            raise errors.BadStoreConfig(
                f"cannot list images of pool {self.config.pool}: {exc}", store=self.name
            ) from None

    def close(self) -> None:
        self.cluster.close()

    # --- beyond the contract -------------------------------------------------------

    def direct_url(self, location: str) -> str | None:
        """The location a compute host on this cluster can clone from, or None.

        This is what Glance shows as ``direct_url`` when ``show_image_direct_url`` is on:
        Nova and Cinder parse ``rbd://<fsid>/<pool>/<image>/<snap>``, check the fsid is
        their own cluster's and clone ``pool/image@snap`` instead of downloading. It names
        data only (no credentials) but reveals the cluster layout, so expose it to trusted
        callers only. Legacy ``rbd://<image>`` locations are resolved to the long form
        when the image has a protected ``snap`` snapshot.
        """
        self.check_location(location)  # called directly, not through a template method
        loc = self._parse(location)
        if not loc.legacy:
            return loc.to_uri()
        with Handles() as stack:
            handle = self._lease(stack)
            ioctx = self._open_pool(stack, handle, self.config.pool, configured=True)
            try:
                with self.rbd.Image(ioctx, loc.image, read_only=True) as image:
                    names = {s["name"] for s in image.list_snaps()}
                    if SNAPSHOT not in names or not image.is_protected_snap(SNAPSHOT):
                        return None
            except self.rbd.Error as exc:
                raise self._error(exc, f"cannot open {loc}", loc) from None
            full = RBDLocation(
                image=loc.image, pool=self.config.pool, fsid=self.cluster.fsid, snapshot=SNAPSHOT
            )
            return full.to_uri()

    # --- helpers -------------------------------------------------------------------

    def _parse(self, location: str) -> RBDLocation:
        """The location; its scheme is checked already (``Backend.get``/``delete``/...)."""
        return RBDLocation.parse(location)

    def _lease(self, stack: Handles) -> Any:
        handle = self.cluster.acquire()
        stack.callback(self.cluster.release)
        return handle

    def _check_cluster(self, loc: RBDLocation) -> None:
        """NotFound if ``loc`` names another cluster (call while holding a lease)."""
        if not loc.legacy and loc.fsid != self.cluster.fsid:
            raise errors.NotFound(
                f"{loc} is on Ceph cluster {loc.fsid}, but store {self.name!r} is "
                f"connected to cluster {self.cluster.fsid}",
                store=self.name,
                location=str(loc),
            )

    def _open_pool(self, stack: Handles, handle: Any, pool: str, *, configured: bool) -> Any:
        """An I/O context on ``pool``, closed with ``stack``. A missing configured pool is
        a configuration error; a missing pool named by a location means missing data."""
        try:
            ioctx = handle.open_ioctx(pool)
        except self.rados.ObjectNotFound:
            if configured:
                raise errors.BadStoreConfig(
                    f"store {self.name!r}: pool {pool!r} does not exist (create it with "
                    f"`ceph osd pool create {pool}` and `rbd pool init {pool}`)",
                    store=self.name,
                ) from None
            raise errors.NotFound(f"there is no pool {pool!r}", store=self.name) from None
        except self.rados.Error as exc:
            raise self._error(exc, f"cannot open pool {pool!r}") from None
        stack.callback(ioctx.close)
        return ioctx

    def _open_snapshot(self, stack: Handles, location: str) -> tuple[RBDLocation, Any]:
        """Open the image read-only at its snapshot (legacy: ``snap`` if present, else head)."""
        loc = self._parse(location)
        handle = self._lease(stack)
        self._check_cluster(loc)
        pool = loc.pool or self.config.pool
        ioctx = self._open_pool(stack, handle, pool, configured=loc.legacy)
        try:
            image = self.rbd.Image(ioctx, loc.image, snapshot=loc.snapshot, read_only=True)
            stack.callback(image.close)
            if loc.legacy and SNAPSHOT in {s["name"] for s in image.list_snaps()}:
                image.set_snap(SNAPSHOT)
        except self.rbd.ImageNotFound:
            at = f" at snapshot {loc.snapshot}" if loc.snapshot else ""
            raise errors.NotFound(
                f"no RBD image {loc.image}{at} in pool {pool}", store=self.name, location=str(loc)
            ) from None
        except self.rbd.Error as exc:
            raise self._error(exc, f"cannot open {loc}", loc) from None
        return loc, image

    def _check_unused(self, ioctx: Any, loc: RBDLocation) -> list[tuple[str, bool]]:
        """The image's snapshots as (name, protected); InUse if it has clones or users."""
        with self.rbd.Image(ioctx, loc.image, read_only=True) as image:
            snapshots = [
                (s["name"], bool(image.is_protected_snap(s["name"]))) for s in image.list_snaps()
            ]
            # a read-only handle registers no watch: every watcher is another client
            watchers = sum(1 for _ in image.watchers_list())
            clones = 0
            for snap, _ in snapshots:
                image.set_snap(snap)
                clones += sum(1 for _ in image.list_children2())
        if clones:
            raise errors.InUse(
                f"{loc} is in use by {clones} clone{'s' if clones > 1 else ''} "
                "(e.g. VM disks); flatten or delete them first",
                store=self.name,
                location=str(loc),
            )
        if watchers:
            raise errors.InUse(
                f"{loc} is open by {watchers} other client{'s' if watchers > 1 else ''} "
                "(e.g. mapped on a host); not deleted",
                store=self.name,
                location=str(loc),
            )
        return snapshots

    def _restore_snapshots(
        self, ioctx: Any, loc: RBDLocation, snapshots: list[tuple[str, bool]]
    ) -> None:
        """Put back the snapshots delete removed before the image turned out to be busy."""
        try:
            with self.rbd.Image(ioctx, loc.image) as image:
                for snap, protected in snapshots:
                    image.create_snap(snap)
                    if protected:
                        image.protect_snap(snap)
        except self.rbd.Error:
            log.exception("store %s: could not restore the snapshots of %s", self.name, loc)

    def _left(self, name: str, why: str) -> str:
        """What remove_partial says (and logs) about an image it must not remove."""
        log.warning("store %s: partial %s left in place: %s", self.name, name, why)
        return f"not removed: {name}, left in place ({why})"

    def _remove_quietly(self, ioctx: Any, image: str) -> None:
        try:
            self.rbd.RBD().remove(ioctx, image)
        except self.rbd.ImageNotFound:
            pass
        except self.rbd.Error:
            log.exception("store %s: could not remove RBD image %s", self.name, image)

    def _call(self, fn: Any, what: str, loc: RBDLocation | None = None) -> Any:
        try:
            return fn()
        except (self.rbd.Error, self.rados.Error) as exc:
            raise self._error(exc, what, loc) from None

    def _error(
        self, exc: BaseException, what: str, loc: RBDLocation | None = None
    ) -> errors.TankError:
        return translate(exc, what, store=self.name, location=str(loc) if loc else None)


def _timestamp(image: Any, rbd: Any) -> dt.datetime | None:
    """When the image was last written (librbd gives naive UTC datetimes; older
    bindings have only a creation time)."""
    for getter in ("modify_timestamp", "create_timestamp"):
        try:
            stamp = getattr(image, getter)()
        except (AttributeError, rbd.Error):  # missing in older bindings, or in the OSDs
            continue
        if isinstance(stamp, dt.datetime):
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    return None
