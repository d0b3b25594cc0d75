"""The service layer: the one object an embedding application (or tank-api) uses.

``ImageService`` runs the image lifecycle over a registry and the configured stores:
queued → saving → active, and killed on any failure of an upload (store error, client
gone, size/checksum mismatch, size cap) with no bytes left in the store. Permission
checks that are not about visibility live here (protected images, owner changes);
visibility itself is the registry's. Lifecycle hooks fire after the registry has
recorded each change.
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tank import config as config_mod
from tank import errors, quotas
from tank.checksums import DEFAULT_HASH_ALGO, check_hash_algo
from tank.config import ImageFormatConfig, QuotasConfig, TankConfig
from tank.image_format import FormatCheck, format_check
from tank.locations import redact
from tank.model import (
    MAX_MEMBERS,
    MAX_PROPERTIES,
    MUTABLE_FIELDS,
    RESERVED_PREFIX,
    Context,
    Image,
    ListQuery,
    Location,
    Member,
    MemberStatus,
    Status,
    Visibility,
    has_control,
    parse_int,
    utcnow,
)
from tank.plugins import Plugins, make_plugin_manager
from tank.registry import Registry
from tank.store import Capability, ReadResult
from tank.stores import StoreSet
from tank.streams import DataSource
from tank.upload_lease import DEFAULT_LEASE, HEARTBEAT, UploadLeases, heartbeat_now

if TYPE_CHECKING:
    from tank.cache import ImageCache
    from tank.cache.prefetch import Prefetcher
    from tank.notify.notifier import Notifier

log = logging.getLogger(__name__)

#: An image id, wherever it appears in a location.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
#: Keys ``create`` accepts besides the user-settable fields.
_CREATE_ONLY = {"id"}
#: Statuses whose data a delayed delete keeps (those that have data).
_DELAYABLE = frozenset({Status.ACTIVE, Status.DEACTIVATED})
#: Attributes that decide how an image's data is inspected (:meth:`ImageService.format_check`).
FORMAT_FIELDS = ("disk_format", "container_format")


def registry_config_of(config: TankConfig, plugins: Plugins) -> tuple[type[Registry], Any]:
    """The registry class ``[registry]`` names and its built config, without opening it
    (tank-api's reload check uses this too: :mod:`tank.config_check`)."""
    section = dict(config.registry)
    where = config.where("registry")
    if "url" in section and "connection" in section:
        raise errors.ConfigError(
            f"{where}: give url (a remote registry over HTTP) or connection (an SQL "
            "database), not both"
        )
    kind = section.pop("kind", "http" if "url" in section else "sql")
    types = plugins.registry_types()
    if kind not in types:
        installed = ", ".join(sorted(types)) or "none"
        hint = " (install tank-registry-sql)" if kind == "sql" else ""
        raise errors.ConfigError(
            f"{where} kind: no installed registry of kind {kind!r}{hint}; installed: {installed}"
        )
    registry_cls = types[kind]
    return registry_cls, config_mod.build(registry_cls.Config, section, where=where)


def open_registry(config: TankConfig, plugins: Plugins) -> Registry:
    """Build the registry named by ``[registry] kind`` (``http`` if ``url`` is set, else
    ``sql``) from the rest of the ``[registry]`` section."""
    registry_cls, registry_config = registry_config_of(config, plugins)
    try:
        return registry_cls(registry_config, data_dir=config.data_dir)
    except errors.ConfigError as exc:  # found on connecting, e.g. a missing driver
        said = str(exc)  # "[registry] key: why" or just "why": add the file
        where = config.where("registry")
        raise errors.ConfigError(
            f"{config.source} {said}" if said.startswith("[") else f"{where}: {said}"
        ) from None


def _check_property_count(properties: Mapping[str, Any]) -> None:
    """Glance's image_property_quota, over the user's properties (Tank's own
    ``os_glance_*`` state does not count)."""
    count = sum(1 for key in properties if not str(key).startswith(RESERVED_PREFIX))
    if count > MAX_PROPERTIES:
        raise errors.OverLimit(
            f"an image has at most {MAX_PROPERTIES} properties (attempted: {count})"
        )


def _check_property_names(properties: Mapping[str, Any]) -> None:
    """Names of properties being set carry no control characters (as tags): a line
    break in one would end a v1 ``x-image-meta-property-*`` header early."""
    for key, value in properties.items():
        if value is not None and has_control(str(key)):
            raise errors.ValidationError(
                "properties", f"a property name must not contain control characters: {key[:80]!r}"
            )


class ImageService:
    """Create, upload, download, update, delete and list images; manage members."""

    def __init__(
        self,
        registry: Registry,
        stores: StoreSet,
        plugins: Plugins,
        *,
        image_size_cap: int = config_mod.DEFAULT_IMAGE_SIZE_CAP,
        hashing_algorithm: str = DEFAULT_HASH_ALGO,
        upload_lease: float = DEFAULT_LEASE,
        delayed_delete: bool = False,
        image_format: ImageFormatConfig | None = None,
        quota_config: QuotasConfig | None = None,
    ) -> None:
        self.registry = registry
        self.stores = stores
        self.plugins = plugins
        self.image_size_cap = image_size_cap
        #: The multihash of every upload (``os_hash_algo``), checked here so that a bad
        #: name stops Tank at start-up rather than failing uploads.
        self.hashing_algorithm = check_hash_algo(hashing_algorithm)
        #: Seconds an upload may go without a heartbeat (:mod:`tank.upload_lease`).
        self.upload_lease = upload_lease
        #: ``[scrubber] delayed_delete``: :meth:`delete` keeps the data (pending_delete).
        self.delayed_delete = delayed_delete
        #: How uploaded data is inspected (``[image_format]``, :mod:`tank.image_format`).
        self.image_format = image_format or ImageFormatConfig()
        #: The uploads in progress here; tank-api starts its heartbeat and sweep threads.
        self.leases = UploadLeases(self)
        #: Sends Glance's events to the configured sinks (:meth:`attach_notifier`).
        self.notifier: Notifier | None = None
        #: ``[quotas]``: the limits of each project (:mod:`tank.quotas`).
        self.quota_config = quota_config or QuotasConfig()
        #: Local copies of images in remote stores (:meth:`attach_cache`).
        self.cache: ImageCache | None = None
        #: Names of the stores whose images are cached.
        self.cached_stores: frozenset[str] = frozenset()
        #: Fills the cache with queued images; tank-api starts it.
        self.prefetcher: Prefetcher | None = None

    @classmethod
    def from_config(cls, config: TankConfig, plugins: Plugins | None = None) -> ImageService:
        """Build the registry and stores named in ``config`` from installed plugins.

        The multihash algorithm is ``[api] hashing_algorithm`` (Glance's key), read here
        because the service computes it for every upload, whatever serves the API.
        """
        try:
            hashing_algorithm = str(
                check_hash_algo(config.api.get("hashing_algorithm", DEFAULT_HASH_ALGO))
            )
        except errors.ConfigError as exc:
            raise errors.ConfigError(f"{config.where('api')} {exc}") from None
        from tank.notify.notifier import Notifier  # it imports the API's views

        plugins = plugins or make_plugin_manager()
        notifier = Notifier.from_config(config.notifications, plugins, source=config.source)
        stores = StoreSet.from_config(config, plugins)
        registry = open_registry(config, plugins)
        service = cls(
            registry,
            stores,
            plugins,
            image_size_cap=config.image_size_cap,
            hashing_algorithm=hashing_algorithm,
            upload_lease=config.scrubber.upload_lease,
            delayed_delete=config.scrubber.delayed_delete,
            image_format=config.image_format,
            quota_config=config.quotas,
        )
        if notifier is not None:
            service.attach_notifier(notifier)
        if config.cache.enabled:
            from tank.cache.hooks import cache_from_config

            cache, names = cache_from_config(config, stores)
            service.attach_cache(cache, names, prefetch_interval=config.cache.prefetch_interval)
        return service

    def attach_cache(
        self, cache: ImageCache, stores: Iterable[str], *, prefetch_interval: float = 300.0
    ) -> None:
        """Serve the images of ``stores`` through ``cache`` (``[cache]``); their copies
        are evicted when an image is deleted or deactivated."""
        from tank.cache.hooks import CacheEviction
        from tank.cache.prefetch import Prefetcher

        self.cache = cache
        self.cached_stores = frozenset(stores)
        self.prefetcher = Prefetcher(self, prefetch_interval)
        self.plugins.pm.register(CacheEviction(cache), name=f"cache-{id(cache):x}")

    def attach_notifier(self, notifier: Notifier) -> None:
        """Send Glance's events (``[notifications]``) from this service's hooks; the
        notifier is closed (its queues given time to empty) with the service."""
        self.plugins.pm.register(notifier, name=f"notifications-{id(notifier):x}")
        self.notifier = notifier

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()
        notifier, self.notifier = self.notifier, None
        if notifier is not None:
            self.plugins.pm.unregister(notifier)
            notifier.close()
        self.registry.close()
        self.stores.close()

    def __enter__(self) -> ImageService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- quotas ----------------------------------------------------------------------

    def quota_limits(self, context: Context, owner: str | None) -> dict[str, int]:
        """The limits (sizes in bytes) a write by ``context`` to an image of ``owner`` is
        held to; {} when none are (an exempt admin, an image without an owner)."""
        if owner is None or (context.is_admin and self.quota_config.admins_exempt):
            return {}
        return self.quota_config.limits_of(owner).in_units()

    def usage(self, project: str) -> dict[str, dict[str, int]]:
        """``project``'s limit and usage of every quota, as ``GET /v2/info/usage``
        shows them: sizes in MiB (usage rounded down, as Glance), -1 for no limit."""
        limits = self.quota_config.limits_of(project).in_units()
        used = self.registry.usage(project)
        out = {}
        for name in quotas.RESOURCES:
            unit = quotas.MIB if name in quotas.SIZES else 1
            limit = limits.get(name)
            out[name] = {
                "limit": -1 if limit is None else limit // unit,
                "usage": used[name] // unit,
            }
        return out

    def _create_image(self, image: Image, context: Context) -> Image:
        check = quotas.check_for(self.quota_limits(context, image.owner))
        if check is None:
            return self.registry.create(image)
        return self.registry.create(image, quota=check)

    # --- reading ---------------------------------------------------------------------

    def get(self, image_id: str, *, context: Context) -> Image:
        return self.registry.get(image_id, context=context)

    def list(self, query: ListQuery | None = None, *, context: Context) -> builtins.list[Image]:
        return self.registry.list(query or ListQuery(), context=context)

    def download(
        self,
        image_id: str,
        *,
        context: Context,
        offset: int = 0,
        length: int | None = None,
    ) -> tuple[Image, ReadResult]:
        """The image and a stream of its data (or of the range ``offset``/``length``).

        Only active images have data; others raise NotFound, as in Glance v1.
        """
        image = self.with_data(image_id, context=context)
        return image, self.read(image, offset=offset, length=length)

    def with_data(self, image_id: str, *, context: Context) -> Image:
        """The image if it has data to download (see :meth:`read`), else NotFound.
        A deactivated image's data is for admins only (Forbidden for others)."""
        return self.check_data(self.registry.get(image_id, context=context), context)

    def check_data(self, image: Image, context: Context) -> Image:
        """``image`` (read for ``context``) if its data may be downloaded: see
        :meth:`with_data`."""
        if image.status is Status.DEACTIVATED and not image.deleted:
            if not context.is_admin:
                raise errors.Forbidden(
                    f"image {image.id} is deactivated: only an admin may download its data"
                )
        elif image.status is not Status.ACTIVE or image.deleted:
            raise errors.NotFound(f"image {image.id} is not active (status {image.status})")
        if not image.has_data:
            raise errors.NotFound(f"image {image.id} has no data")
        return image

    def read(self, image: Image, *, offset: int = 0, length: int | None = None) -> ReadResult:
        """A stream of the data of ``image`` (from :meth:`with_data`, which checked the
        caller may see it), from its first location that can be read; the next ones
        are tried when a store is unreachable or lost the data. Data whose size is not
        the image's is never served. With ``[cache]``, a cached image is read from its
        local copy, and a whole read of an active image not yet cached fills it."""
        if not image.has_data:
            raise errors.NotFound(f"image {image.id} has no data")
        cache = self.cache
        if cache is not None and self.cacheable(image):
            hit = cache.open(image, offset, length)
            if hit is not None:
                return hit
            if offset == 0 and length is None and image.status is Status.ACTIVE:
                result = self._read_locations(image, offset, length)
                return cache.fill(image, result, lambda: self._still_cacheable(image))
        return self._read_locations(image, offset, length)

    def cacheable(self, image: Image) -> bool:
        """``image`` is kept in a store whose images are cached (``[cache] stores``)."""
        if image.size is None:
            return False
        for location in image.locations:
            name = location.store
            if name is None:
                try:
                    name = self.stores.for_location(location.url).name
                except errors.TankError:
                    continue
            if name in self.cached_stores:
                return True
        return False

    def _still_cacheable(self, image: Image) -> bool:
        """The image a fill started from is still active with the same data."""
        try:
            now = self.registry.get(image.id, context=Context.admin())
        except errors.NotFound:
            return False
        return (
            now.status is Status.ACTIVE
            and not now.deleted
            and now.size == image.size
            and now.checksum == image.checksum
            and now.os_hash_value == image.os_hash_value
        )

    def _read_locations(self, image: Image, offset: int, length: int | None) -> ReadResult:
        failure: errors.TankError | None = None
        for n, location in enumerate(image.locations, 1):
            try:
                return self._read_location(image, location, offset, length)
            except (errors.NotFound, errors.StoreError, errors.StoreUnavailable) as exc:
                if n < len(image.locations):
                    log.warning(
                        "image %s: location in store %s could not be read (%s); trying the next",
                        image.id,
                        location.store,
                        exc,
                    )
                failure = exc
        assert failure is not None
        log.error(
            "image %s: no location of its data could be read (%d tried; last, in store %s: %s)",
            image.id,
            len(image.locations),
            image.locations[-1].store,
            failure,
        )
        raise failure

    def _read_location(
        self, image: Image, location: Location, offset: int, length: int | None
    ) -> ReadResult:
        backend = self.stores.for_location(location.url, location.store)
        result = backend.get(location.url, offset, length)
        if image.size is not None and result.total_size != image.size:
            result.close()
            log.error(
                "integrity fault: image %s has %d bytes in store %s but %d in the registry; "
                "not served",
                image.id,
                result.total_size,
                backend.name,
                image.size,
            )
            raise errors.StoreError(
                f"the stored data of image {image.id} is {result.total_size} bytes, not the "
                f"{image.size} the image has: it is not served (an integrity fault, logged)",
                store=backend.name,
            )
        return result

    # --- creating and uploading ------------------------------------------------------------

    def create(
        self,
        meta: Mapping[str, Any],
        data: DataSource | None = None,
        *,
        context: Context,
        size: int | None = None,
        checksum: str | None = None,
        store: str | None = None,
        location: str | None = None,
        body_size: int | None = None,
    ) -> Image:
        """Register an image; with ``data`` also upload it, with ``location`` point at
        data that already lives in a store (active at once; never both).

        ``size``/``checksum`` are what the client announced (verified against the data).
        ``body_size`` is the length of the data as the transport knows it (an HTTP
        Content-Length): the size the store is told when no size was announced.
        """
        if not context.is_admin and (context.tenant is None or context.read_only):
            who = "a reader" if context.read_only else "a caller without a project"
            raise errors.Forbidden(f"{who} cannot create images")
        fields = self._user_fields(meta, context, allowed=MUTABLE_FIELDS | _CREATE_ONLY)
        if data is not None and location is not None:
            raise errors.Invalid("give either image data or a location, not both")
        if store is not None or data is not None:
            # Fail before anything is recorded: unknown store, or one that cannot write.
            backend = self.stores.get(store)
            if data is not None:
                backend.require(Capability.WRITE)
        fields.setdefault("owner", context.tenant)
        if isinstance(fields.get("properties"), Mapping):
            _check_property_names(fields["properties"])
            _check_property_count(fields["properties"])
        if location is not None:
            return self._create_with_location(fields, location, context, size, checksum)
        if size is not None:
            fields["size"] = parse_int("size", size)
        image = self._create_image(Image(**fields), context)
        self.plugins.image_created(image=image, context=context)
        if data is None:
            return image
        return self._upload(
            image, data, context, size=size, checksum=checksum, store=store, body_size=body_size
        )

    def upload(
        self,
        image_id: str,
        data: DataSource,
        *,
        context: Context,
        size: int | None = None,
        checksum: str | None = None,
        store: str | None = None,
        body_size: int | None = None,
        requeue_on_failure: bool = False,
    ) -> Image:
        """Upload data to a queued image; Conflict for any other status. ``body_size``:
        as for :meth:`create`. A failed upload kills the image (v1), or with
        ``requeue_on_failure`` returns it to queued so that it can be uploaded again (v2,
        as Glance does); either way no data is left in the store."""
        image = self.registry.get(image_id, context=context)
        self._check_modify(image, context)
        if image.status is not Status.QUEUED:
            raise errors.Conflict(
                f"image {image.id} is {image.status}: data can only be uploaded to a queued image"
            )
        return self._upload(
            image,
            data,
            context,
            size=size,
            checksum=checksum,
            store=store,
            body_size=body_size,
            failed=Status.QUEUED if requeue_on_failure else Status.KILLED,
        )

    def _upload(
        self,
        image: Image,
        data: DataSource,
        context: Context,
        *,
        size: int | None,
        checksum: str | None,
        store: str | None,
        body_size: int | None = None,
        failed: Status = Status.KILLED,
    ) -> Image:
        backend = self.stores.get(store)
        backend.require(Capability.WRITE)
        size = image.size if size is None else parse_int("size", size)
        if size is None:  # an announced size (header or record) stays what is verified
            size = body_size
        limits = self.quota_limits(context, image.owner)
        # a known size is reserved (and refused) before a byte is read; else one byte,
        # so that a project with no room left is refused at once too
        reserved = 1 if size is None else size
        check = quotas.check_for(limits, **{quotas.SIZE_TOTAL: reserved})
        with self.leases.holding(image.id) as lease:
            try:
                image = self.registry.update(
                    image.id,
                    {"status": Status.SAVING, "properties": {HEARTBEAT: heartbeat_now()}},
                    context=context,
                    expected_status=Status.QUEUED,
                    **quotas.quota_kwargs(check),
                )
            except errors.QuotaExceeded as exc:
                if failed is Status.KILLED:  # v1: a failed upload kills its image
                    self._kill(image, context, exc, expected=Status.QUEUED)
                raise
            self.plugins.image_upload_started(image=image, store=backend.name, context=context)
            try:
                inspection = self.format_check(image)
                stored = backend.add(
                    image.id,
                    lease.stream(
                        quotas.metered(
                            data,
                            self.registry,
                            image.id,
                            quotas.SIZE_TOTAL,
                            limits.get(quotas.SIZE_TOTAL),
                            reserved,
                        )
                    ),
                    size=size,
                    checksum=checksum,
                    max_size=self.image_size_cap,
                    hash_algo=self.hashing_algorithm,
                    check=inspection,
                )
            except BaseException as exc:
                lease.end()
                self._kill(image, context, exc, failed)
                raise
        inspected = {}
        if inspection is not None and inspection.virtual_size and image.disk_format:
            inspected["virtual_size"] = inspection.virtual_size
        try:
            image = self.registry.update(
                image.id,
                {
                    "status": Status.ACTIVE,
                    "size": stored.size,
                    "checksum": stored.checksums.md5,
                    "os_hash_algo": stored.checksums.hash_algo,
                    "os_hash_value": stored.checksums.hash_value,
                    "locations": [Location(url=stored.location, store=backend.name)],
                    "properties": self._without_lease(image.id),
                    **inspected,
                },
                context=context,
                purge_props=True,
                expected_status=Status.SAVING,
            )
        except BaseException as exc:
            self._discard(backend.name, stored.location)
            self._kill(image, context, exc, failed)
            raise
        self.plugins.image_data_stored(image=image, store=backend.name, context=context)
        self.plugins.image_activated(image=image, context=context)
        return image

    def format_check(self, image: Image) -> FormatCheck | None:
        """The inspection an upload of ``image``'s data gets (:mod:`tank.image_format`):
        only for ``bare`` images with a ``disk_format``, as in Glance."""
        return format_check(image.disk_format, image.container_format, self.image_format)

    def _create_with_location(
        self,
        fields: dict[str, Any],
        location: str,
        context: Context,
        size: int | None,
        checksum: str | None,
    ) -> Image:
        backend = self.stores.for_location(location)
        if Capability.WRITE in backend.capabilities and not context.is_admin:
            # A writable store's namespace holds other images' data: pointing a new image
            # at it would read another tenant's private bytes.
            raise errors.Forbidden(
                f"only an admin may register a location in store {backend.name!r}; "
                "other users may register locations of read-only stores (http)"
            )
        self.refuse_other_images(fields.get("id"), location)
        location = backend.canonical_location(location)  # stored as the store spells it
        self.refuse_other_images(fields.get("id"), location)
        actual = backend.get_size(location)
        if size is not None and parse_int("size", size) != actual:
            raise errors.SizeMismatch(
                f"image size was given as {size} but the data at the location is {actual} bytes"
            )
        image = Image(
            **fields,
            status=Status.ACTIVE,
            size=actual,
            checksum=checksum,
            # Tank did not write this data, so deleting the image keeps it
            locations=[Location(url=location, store=backend.name, owned=False)],
        )
        image = self._create_image(image, context)
        self.plugins.image_created(image=image, context=context)
        self.plugins.image_activated(image=image, context=context)
        return image

    def refuse_other_images(self, image_id: str | None, url: str) -> None:
        """Invalid if ``url`` names the id of an image other than ``image_id`` (deleted
        ones too): stores name data after its image, so that would be another image's
        data, which deleting that image deletes (issue #15: a second image left active
        on nothing). Checked on the URL as given and as its store spells it."""
        admin = Context.admin()
        own = image_id.lower() if isinstance(image_id, str) else None
        for found in {m.lower() for m in _UUID.findall(url)} - {own}:
            try:
                self.registry.get(found, context=admin)
            except errors.NotFound:
                continue
            log.warning("refused a location naming image %s: %s", found, redact(url))
            raise errors.Invalid(
                f"the location names image {found}: a location must be this image's own data"
            )

    def _kill(
        self,
        image: Image,
        context: Context,
        cause: BaseException,
        status: Status = Status.KILLED,
        *,
        expected: Status = Status.SAVING,
    ) -> None:
        """Mark a failed upload's image ``status`` (killed; queued to be tried again)."""
        reason = str(cause) if isinstance(cause, errors.TankError) else type(cause).__name__
        try:
            killed = self.registry.update(
                image.id,
                {"status": status, "properties": self._without_lease(image.id)},
                context=context,
                purge_props=True,
                expected_status=expected,
            )
        except (errors.Conflict, errors.NotFound) as exc:
            # deleted (or otherwise moved on) while its data was arriving: nothing to mark
            log.info("image %s was not marked killed after %s: %s", image.id, reason, exc)
            return
        except Exception:
            log.exception("could not mark image %s killed after: %s", image.id, reason)
            return
        if status is not Status.KILLED:
            log.info("image %s is %s again after a failed upload: %s", image.id, status, reason)
            self.plugins.image_upload_failed(image=killed, reason=reason, context=context)
            return
        log.info("image %s killed: %s", image.id, reason)
        self.plugins.image_upload_failed(image=killed, reason=reason, context=context)
        self.plugins.image_killed(image=killed, reason=reason, context=context)

    def _without_lease(self, image_id: str) -> dict[str, str]:
        """The image's properties as they are now, less the upload's heartbeat (the
        registry removes a property only by replacing them all)."""
        current = self.registry.get(image_id, context=Context.admin())
        return {k: v for k, v in current.properties.items() if k != HEARTBEAT}

    def _discard(self, store: str, location: str) -> None:
        try:
            self.stores.get(store).delete(location)
        except Exception:
            log.exception("could not remove data of a failed upload from store %s", store)

    # --- updating and deleting -------------------------------------------------------

    def update(
        self,
        image_id: str,
        changes: Mapping[str, Any],
        *,
        context: Context,
        purge_props: bool = False,
    ) -> Image:
        """Change user metadata. ``purge_props`` removes properties not named (Glance v1 PUT)."""
        previous = self.registry.get(image_id, context=context)
        self._check_modify(previous, context)
        if previous.status is Status.DELETED:  # Glance v1 (admins see deleted images)
            raise errors.Forbidden(f"image {previous.id} is deleted: it cannot be updated")
        fields = self._user_fields(changes, context, allowed=MUTABLE_FIELDS, previous=previous)
        if "properties" in fields:
            _check_property_names(fields["properties"])
            merged = previous.update({"properties": fields["properties"]}, purge_props=purge_props)
            _check_property_count(merged.properties)
        # a format change is conditional on the status it was allowed in: an upload that
        # starts meanwhile has chosen its inspection by the old formats
        reformat = check_format_change(previous, fields)
        condition: dict[str, Any] = {"expected_status": Status.QUEUED} if reformat else {}
        image = self.registry.update(
            image_id, fields, context=context, purge_props=purge_props, **condition
        )
        self.plugins.image_updated(image=image, previous=previous, context=context)
        return image

    def delete(self, image_id: str, *, context: Context) -> Image:
        """Delete the data, then mark the image deleted. Protected images: Forbidden.

        Only data Tank owns is deleted (``Location.owned``): data registered by
        location belongs to someone else and may back other images, so it stays, and
        so does data in a read-only store. If the store refuses (InUse: RBD clones;
        ReadOnlyStore: its writes were disabled at start-up) or cannot be reached,
        nothing changes.

        With ``delayed_delete`` an image with data is marked ``pending_delete`` instead
        (deleted, its data and members kept) for a scrub pass to finish (Glance's
        delayed delete; :mod:`tank.scrubber`). Deleting it again is Forbidden (Glance v1).
        """
        image = self.registry.get(image_id, context=context)
        self._check_modify(image, context)
        if image.status is Status.PENDING_DELETE:
            raise errors.Forbidden(
                f"image {image.id} is pending_delete: it cannot be deleted again "
                "(the scrubber removes its data)"
            )
        if image.deleted:
            raise errors.NotFound(f"image {image.id} is already deleted")
        if image.protected:
            raise errors.Forbidden(f"image {image.id} is protected and cannot be deleted")
        if self.delayed_delete and image.locations and image.status in _DELAYABLE:
            return self._delete_later(image, context)
        for location in image.locations:
            if not location.owned:
                continue
            backend = self.stores.for_location(location.url, location.store)
            if Capability.DELETE in backend.capabilities:
                try:
                    backend.delete(location.url)
                except errors.NotFound:
                    log.warning("data of image %s was already gone", image.id)
        deleted = self.registry.delete(image.id, context=context)
        self.plugins.image_deleted(image=deleted, context=context)
        return deleted

    def _delete_later(self, image: Image, context: Context) -> Image:
        """Mark ``image`` pending_delete (conditional: a concurrent change of status,
        another delete included, makes this a Conflict and changes nothing)."""
        try:
            deleted = self.registry.update(
                image.id,
                {"status": Status.PENDING_DELETE, "deleted": True, "deleted_at": utcnow()},
                context=context,
                expected_status=image.status,
            )
        except errors.Conflict as exc:
            raise errors.Conflict(f"image {image.id} changed while being deleted: {exc}") from None
        log.info("image %s is pending_delete: its data stays until a scrub pass", image.id)
        self.plugins.image_deleted(image=deleted, context=context)
        return deleted

    def deactivate(self, image_id: str, *, context: Context) -> Image:
        """Keep the data but stop non-admins downloading it (v2). Idempotent."""
        return self._switch(image_id, Status.ACTIVE, Status.DEACTIVATED, context)

    def reactivate(self, image_id: str, *, context: Context) -> Image:
        """Undo :meth:`deactivate`. Idempotent."""
        return self._switch(image_id, Status.DEACTIVATED, Status.ACTIVE, context)

    def _switch(self, image_id: str, old: Status, new: Status, context: Context) -> Image:
        image = self.registry.get(image_id, context=context)
        self._check_modify(image, context)
        if image.status is new:
            return image
        if image.status is not old:
            verb = "deactivate" if new is Status.DEACTIVATED else "reactivate"
            raise errors.Forbidden(f"cannot {verb} image {image.id}: it is {image.status}")
        previous = image
        image = self.registry.update(
            image.id, {"status": new}, context=context, expected_status=old
        )
        self.plugins.image_updated(image=image, previous=previous, context=context)
        return image

    def add_tag(self, image_id: str, tag: str, *, context: Context) -> Image:
        image = self.registry.get(image_id, context=context)
        if tag in image.tags:
            self._check_modify(image, context)
            return image
        return self.update(image_id, {"tags": (*image.tags, tag)}, context=context)

    def remove_tag(self, image_id: str, tag: str, *, context: Context) -> Image:
        image = self.registry.get(image_id, context=context)
        self._check_modify(image, context)
        if tag not in image.tags:
            raise errors.NotFound(f"image {image.id} has no tag {tag[:255]!r}")
        return self.update(
            image_id, {"tags": tuple(t for t in image.tags if t != tag)}, context=context
        )

    # --- members -------------------------------------------------------------------

    def list_members(self, image_id: str, *, context: Context) -> builtins.list[Member]:
        return self.registry.list_members(image_id, context=context)

    def add_member(
        self,
        image_id: str,
        member: str,
        *,
        can_share: bool = False,
        context: Context,
        new_only: bool = False,
    ) -> Member:
        """Share the image with ``member``; adding a member again updates ``can_share``
        (v1) or, with ``new_only``, is a Conflict (v2)."""
        existing = self.registry.list_members(image_id, context=context)
        if new_only and any(m.member == member for m in existing):
            raise errors.Conflict(f"{member[:255]!r} is already a member of image {image_id}")
        if len(existing) >= MAX_MEMBERS and all(m.member != member for m in existing):
            raise errors.OverLimit(
                f"image {image_id} already has {len(existing)} members, the most it may have"
            )
        added = self.registry.add_member(image_id, member, can_share=can_share, context=context)
        before = next((m for m in existing if m.member == member), None)
        if before is None:
            self.plugins.member_created(member=added, context=context)
        elif before.can_share != added.can_share:
            self.plugins.member_updated(member=added, context=context)
        return added

    def remove_member(self, image_id: str, member: str, *, context: Context) -> None:
        # read first: the member's record is what image.member.delete carries
        before = next(
            (
                m
                for m in self.registry.list_members(image_id, context=context)
                if m.member == member
            ),
            None,
        )
        self.registry.remove_member(image_id, member, context=context)
        if before is not None:
            self.plugins.member_deleted(member=before, context=context)

    def replace_members(
        self, image_id: str, members: Iterable[tuple[str, bool]], *, context: Context
    ) -> builtins.list[Member]:
        members = list(members)
        if len({name for name, _ in members}) > MAX_MEMBERS:
            raise errors.OverLimit(f"an image has at most {MAX_MEMBERS} members")
        before = {m.member: m for m in self.registry.list_members(image_id, context=context)}
        after = self.registry.replace_members(image_id, members, context=context)
        now = {m.member for m in after}
        for gone in before.values():
            if gone.member not in now:
                self.plugins.member_deleted(member=gone, context=context)
        for member in after:
            old = before.get(member.member)
            if old is None:
                self.plugins.member_created(member=member, context=context)
            elif old.can_share != member.can_share:
                self.plugins.member_updated(member=member, context=context)
        return after

    def set_member_status(
        self, image_id: str, member: str, status: MemberStatus | str, *, context: Context
    ) -> Member:
        if context.read_only:
            raise errors.Forbidden("a reader cannot accept or reject images")
        changed = self.registry.set_member_status(image_id, member, status, context=context)
        self.plugins.member_updated(member=changed, context=context)
        return changed

    def shared_with(self, member: str, *, context: Context) -> builtins.list[Member]:
        return self.registry.shared_with(member, context=context)

    # --- checks --------------------------------------------------------------------

    @staticmethod
    def _check_modify(image: Image, context: Context) -> None:
        if not context.can_modify(image):
            raise errors.Forbidden(f"image {image.id} belongs to another tenant")

    @staticmethod
    def _user_fields(
        meta: Mapping[str, Any],
        context: Context,
        *,
        allowed: frozenset[str] | set[str],
        previous: Image | None = None,
    ) -> dict[str, Any]:
        """Fields a user may set. ``os_glance_*`` properties are Tank's: a user may send
        them back unchanged (a v2 patch returns the whole property dict, a v1 client
        echoes what HEAD showed) but not add or change one."""
        unknown = sorted(set(meta) - set(allowed))
        if unknown:
            raise errors.ValidationError(unknown[0], "cannot be set by a client")
        fields = dict(meta)
        if "owner" in fields and not context.is_admin and fields["owner"] != context.tenant:
            raise errors.Forbidden("only an admin may set an image's owner to another tenant")
        public = Visibility.PUBLIC
        if (
            fields.get("visibility") == public
            and not context.is_admin
            and (previous is None or previous.visibility is not public)
        ):
            # Glance's publicize_image: admins only, whichever API asks (v1's is_public too)
            raise errors.Forbidden("only an admin may make an image public")
        properties = fields.get("properties")
        kept = previous.properties if previous is not None else {}
        if isinstance(properties, Mapping):
            for key, value in properties.items():
                if (
                    isinstance(key, str)
                    and key.startswith(RESERVED_PREFIX)
                    and kept.get(key) != value
                ):
                    raise errors.Forbidden(
                        f"property {key[:80]!r} is reserved: {RESERVED_PREFIX}* properties "
                        "are set by Tank itself"
                    )
        return fields


def check_format_change(image: Image, changes: Mapping[str, Any]) -> bool:
    """Whether ``changes`` change ``image``'s disk or container format; Forbidden (403)
    unless it is queued. Glance allows ``importing`` too (its conversion step sets the
    format through the same setter); Tank's import chooses its inspection by the formats
    the image had when it started and its steps write theirs directly, so a client's
    change during an import would make the image active in a format its data was never
    inspected as. Resending the current value is no change (v1 clients echo HEAD)."""
    changed = [k for k in FORMAT_FIELDS if k in changes and changes[k] != getattr(image, k)]
    if changed and image.status is not Status.QUEUED:
        raise errors.Forbidden(format_change_refused(changed[0], image.status))
    return bool(changed)


def format_change_refused(attribute: str, status: Status | str) -> str:
    """The 403 message for a format change of an image in ``status`` (Glance's, with why)."""
    return (
        f"Attribute {attribute} can be only replaced for a queued image (this one is "
        f"{status}): the data is checked against its format when it is uploaded"
    )
