"""The chase store: image data in OpenStack Swift (or Ceph RGW's Swift API).

Config keys follow Glance's swift store. Credentials live only in the config; locations
(``location.py``) name the cluster's auth host, the container and the object. Writing is
in ``writer.py``, the Swift operations in ``client.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs

from tank import errors
from tank.config import between, http_url, not_negative, one_of, positive
from tank.store import (
    Backend,
    Capability,
    ItemKind,
    ReadResult,
    StoredItem,
    Writer,
    image_id_named,
)
from tank_store_chase.client import UPLOAD_META, SwiftClient
from tank_store_chase.connections import import_keystoneauth, import_swiftclient
from tank_store_chase.location import EXAMPLE, SCHEMES, SwiftLocation

log = logging.getLogger(__name__)

GiB = 1 << 30
MiB = 1 << 20
#: Container names Tank accepts (it adds ``_segments`` and ``_<prefix>`` to them).
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
#: Object names Tank writes: image ids.
_OBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
#: Segment names Tank writes: ``<image id>/<upload id>/<index>``.
_SEGMENT = re.compile(r"(?P<id>[0-9a-f-]{36})/(?P<upload>[0-9a-f]{32})/[0-9]{8}")


def _container(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not _CONTAINER.match(value):
        raise ValueError(
            f"{attribute.name} must be 1-200 characters of letters, digits, '.', '_', '-'"
        )


class ChaseBackend(Backend):
    """Swift store: streamed uploads, segmented large objects, ranged streamed reads."""

    type_name: ClassVar[str] = "chase"
    schemes: ClassVar[tuple[str, ...]] = SCHEMES
    capabilities = Backend.capabilities | {Capability.LIST}
    location_example: ClassVar[str] = EXAMPLE

    @attrs.frozen(kw_only=True)
    class Config:
        """``[stores.<name>]`` of ``type = "chase"``; sizes are bytes, times seconds."""

        #: Auth endpoint: tempauth ``http://proxy:8080/auth/v1.0`` or Keystone ``.../v3``;
        #: no credentials in it (they go in user and key).
        auth_address: str = attrs.field(validator=http_url)
        #: 1 (tempauth / swauth / RGW) or 3 (Keystone v3, needs keystoneauth1).
        auth_version: int = attrs.field(default=1, validator=one_of(1, 3))
        #: v1: ``account:user``; v3: the user name.
        user: str
        #: The password (v1: the tempauth key); take it from the environment.
        key: str = attrs.field(repr=False)
        #: Keystone v3: the project to scope to (this or project_id).
        project_name: str | None = None
        #: Keystone v3: the project's id (instead of project_name).
        project_id: str | None = None
        #: Keystone v3: the user's domain by name (default: the domain id ``default``).
        user_domain_name: str | None = None
        #: Keystone v3: the user's domain by id.
        user_domain_id: str | None = None
        #: Keystone v3: the project's domain by name (default: the domain id ``default``).
        project_domain_name: str | None = None
        #: Keystone v3: the project's domain by id.
        project_domain_id: str | None = None
        #: Keystone v3: the region whose object-store endpoint to use.
        region_name: str | None = None
        #: Keystone v3: which catalog endpoint to use: public, internal or admin.
        interface: str = attrs.field(
            default="public", validator=one_of("public", "internal", "admin")
        )
        #: Container of the images (the prefix of the containers with multiple_containers_seed).
        container: str = attrs.field(default="tank", validator=_container)
        #: Create the container on the first upload when it does not exist.
        create_container_on_put: bool = True
        #: Spread images over containers ``<container>_<first N chars of the id>`` (0: off).
        multiple_containers_seed: int = attrs.field(default=0, validator=between(0, 32))
        #: Images larger than this (or of unknown length) are stored as segments.
        large_object_size: int = attrs.field(default=5 * GiB, validator=positive)
        #: Size of each segment of a large object.
        large_object_chunk_size: int = attrs.field(default=200 * MiB, validator=positive)
        #: ``auto`` (SLO if /info lists it, else DLO), ``slo`` or ``dlo``.
        large_object_manifest: str = attrs.field(
            default="auto", validator=one_of("auto", "slo", "dlo")
        )
        #: Skip verifying the server's TLS certificate (testing only).
        insecure: bool = False
        #: CA bundle to verify the server certificates.
        ca_file: str | None = None
        #: Seconds to wait for a connection.
        connect_timeout: float = attrs.field(default=3.0, validator=positive)
        #: Read timeout of each request.
        timeout: float = attrs.field(default=60.0, validator=positive)
        #: Retries of a failed request (with backoff from 0.25 s), besides one re-auth.
        retries: int = attrs.field(default=2, validator=not_negative)
        #: Take an image's MD5 from Swift (the ETag of an object written in one PUT, which
        #: Swift computes from what it stored) instead of computing it in Tank as well.
        #: Turn off for a Swift-like server whose ETags are not content MD5s.
        server_md5: bool = True

        def __attrs_post_init__(self) -> None:
            if self.auth_version == 3 and not (self.project_name or self.project_id):
                raise ValueError("auth_version 3 needs project_name or project_id")

    def __init__(self, config: Config, *, name: str | None = None) -> None:
        super().__init__(config, name=name)
        import_swiftclient()
        if config.auth_version == 3:
            import_keystoneauth()
        self._swift = SwiftClient(config, self.name, self.read_chunk_size)
        self._home = SwiftLocation.for_object(config.auth_address, config.container, "x")

    # --- primitives -------------------------------------------------------------------

    def open_writer(self, image_id: str, size: int | None) -> Writer:
        from tank_store_chase.writer import ChaseWriter

        if not _OBJECT.match(image_id):
            raise errors.Invalid(f"image id {image_id!r} is not usable as a swift object name")
        cfg = self.config
        location = self._location_for(image_id)
        self._swift.check_absent(location)
        segment_size = None
        if size is None or size > cfg.large_object_size:
            segment_size = cfg.large_object_chunk_size
            if size is not None:
                limit = self._swift.info().max_manifest_segments
                segment_size = max(segment_size, math.ceil(size / limit))
        return ChaseWriter(self._swift, location, size, segment_size)

    def read(self, location: str, offset: int, length: int | None) -> ReadResult:
        return self._swift.read(self._parse(location), offset, length)

    def remove(self, location: str) -> None:
        self._swift.delete(self._parse(location))

    def size_of(self, location: str) -> int:
        return self._swift.size(self._parse(location))

    def remove_partial(self, image_id: str) -> list[str]:
        """A killed writer leaves the segments it wrote (``<container>_segments``, under
        ``<image id>/<upload id>/``), and the object or manifest itself if it died after
        the commit, before the registry recorded it. A single PUT cut off mid-body leaves
        nothing: Swift discards it.

        The manifest goes first, so no manifest ever points at removed segments; the
        segments are listed with the prefix ``<image id>/``, which no other image's
        segments start with.
        """
        if not _OBJECT.match(image_id):
            return []  # no writer could have written it
        loc = self._location_for(image_id)
        removed = []
        if self._swift.remove_object(loc):
            removed.append(f"object {loc.redacted()}")
        segments = self._swift.segments_container(loc.container)
        uploads = self._swift.remove_prefix(segments, f"{image_id}/")
        for upload, count in sorted(uploads.items()):
            plural = "s" if count > 1 else ""
            removed.append(f"{count} segment{plural} of upload {segments}/{image_id}/{upload}/")
        return removed

    def list_items(self) -> Iterator[StoredItem]:
        """Objects named by an image id in the store's containers (``container``, and
        ``<container>_<prefix>`` ones with ``multiple_containers_seed``), then, in their
        ``_segments`` containers, the segments Tank writes (``<image id>/<upload id>/
        <index>``) of each upload no manifest uses: the image's manifest is missing
        (their location is then the manifest's, so an image recording it keeps them) or
        was written by another upload. Other names are not Tank's and are never listed
        (Glance's ``<id>-00001`` segments included)."""
        containers = self._containers()
        for container in containers:
            for obj in self._swift.listing(container):
                if image_id_named(obj["name"]) is None:
                    continue
                loc = SwiftLocation.for_object(self.config.auth_address, container, obj["name"])
                yield StoredItem(
                    kind=ItemKind.DATA,
                    name=loc.redacted(),
                    location=loc.to_uri(),
                    image_id=obj["name"],
                    size=int(obj.get("bytes", 0)),
                    modified=_modified(obj),
                )
        for container in containers:
            segments = self._swift.segments_container(container)
            named = (
                (match, obj)
                for obj in self._swift.listing(segments)
                if (match := _SEGMENT.fullmatch(obj["name"])) is not None
            )
            for (image_id, upload), group in itertools.groupby(
                named, key=lambda pair: (pair[0]["id"], pair[0]["upload"])
            ):
                if image_id_named(image_id) is None:
                    continue
                objs = [obj for _, obj in group]
                item = self._unused_segments(container, segments, image_id, upload, objs)
                if item is not None:
                    yield item

    def _unused_segments(
        self, container: str, segments: str, image_id: str, upload: str, objs: list[Any]
    ) -> StoredItem | None:
        """The segments of one upload as an item, unless a manifest of it uses them."""
        manifest = SwiftLocation.for_object(self.config.auth_address, container, image_id)
        user = self._manifest_upload(manifest)
        if user == upload or user == "":
            return None  # its manifest uses them, or one that does not say which upload wrote it
        stamps = [m for m in map(_modified, objs) if m is not None]
        return StoredItem(
            kind=ItemKind.SEGMENTS,
            name=f"{segments}/{image_id}/{upload}/ ({len(objs)} segments)",
            location=manifest.to_uri() if user is None else None,
            image_id=image_id,
            size=sum(int(o.get("bytes", 0)) for o in objs),
            modified=max(stamps, default=None),
            detail="no manifest" if user is None else f"the manifest is upload {user}'s",
            handle=(segments, f"{image_id}/{upload}/", manifest, upload),
        )

    def _manifest_upload(self, loc: SwiftLocation) -> str | None:
        """The upload id the object at ``loc`` carries; None if there is no object, ""
        if it carries none."""
        try:
            headers = self._swift.head(loc, "checking a manifest")
        except errors.NotFound:
            return None
        return headers.get(UPLOAD_META.lower(), "")

    def remove_item(self, item: StoredItem) -> None:
        if item.kind is ItemKind.DATA and item.location is not None:
            self._swift.delete(self._parse(item.location))
            return
        if item.kind is not ItemKind.SEGMENTS or not isinstance(item.handle, tuple):
            raise errors.Invalid(f"store {self.name!r} did not list {item.name}")
        segments, prefix, manifest, upload = item.handle
        user = self._manifest_upload(manifest)
        if user == upload or user == "":
            raise errors.InUse(
                f"{item.name}: a manifest uses them now; not removed", store=self.name
            )
        if not self._swift.remove_prefix(segments, prefix):
            raise errors.NotFound(f"{item.name}: gone", store=self.name)

    def canonical_location(self, location: str) -> str:
        """The form Tank writes (no credentials, this store's auth address), for a
        location in this store's cluster and containers."""
        try:
            loc = self._parse(location)
        except errors.TankError:
            return location
        return SwiftLocation.for_object(self.config.auth_address, loc.container, loc.obj).to_uri()

    def _containers(self) -> list[str]:
        """The containers this store writes to that exist (or may: the configured one)."""
        container = self.config.container
        if not self.config.multiple_containers_seed:
            return [container]
        found = self._swift.containers(f"{container}_")
        return [container, *(c for c in found if self._owns_container(c))]

    def check_writable(self) -> None:
        """Check the credentials and the container once; unreachable is not fatal."""
        container = self.config.container

        def probe(conn: Any) -> None:
            self._swift.ensure_container(conn, container)

        try:
            self._swift.call(f"checking swift container {container!r}", probe)
            self._swift.info()
        except errors.StoreUnavailable as exc:
            log.warning("store %s: %s (writes are tried anyway)", self.name, exc)
        except (errors.Forbidden, errors.NotFound, errors.StoreError) as exc:
            raise errors.BadStoreConfig(str(exc), store=self.name) from exc

    def close(self) -> None:
        self._swift.close()

    # --- helpers ----------------------------------------------------------------------

    def _location_for(self, image_id: str) -> SwiftLocation:
        """Where the writer puts ``image_id``."""
        cfg = self.config
        container = cfg.container
        if cfg.multiple_containers_seed:
            container = f"{container}_{image_id[: cfg.multiple_containers_seed]}"
        return SwiftLocation.for_object(cfg.auth_address, container, image_id)

    def _parse(self, location: str) -> SwiftLocation:
        """Parse ``location`` (of one of this store's schemes) and refuse one outside this
        store's cluster and containers."""
        loc = SwiftLocation.parse(location)
        if loc.host_port != self._home.host_port:
            host, port = self._home.host_port
            raise errors.BadLocation(
                f"location {loc.redacted()!r} is on another Swift cluster; store "
                f"{self.name!r} uses the auth host {host}:{port}",
                store=self.name,
                location=loc.redacted(),
            )
        if not self._owns_container(loc.container):
            raise errors.BadLocation(
                f"location {loc.redacted()!r} is outside store {self.name!r}'s "
                f"container {self.config.container!r}",
                store=self.name,
                location=loc.redacted(),
            )
        return loc

    def _owns_container(self, container: str) -> bool:
        cfg = self.config
        if container == cfg.container:
            return True
        seed = cfg.multiple_containers_seed
        prefix, _, suffix = container.rpartition("_")
        return bool(seed) and prefix == cfg.container and len(suffix) == seed


def _modified(obj: dict[str, Any]) -> dt.datetime | None:
    """A listing entry's ``last_modified`` (UTC, without a zone) as an aware datetime."""
    try:
        stamp = dt.datetime.fromisoformat(obj["last_modified"])
    except (KeyError, TypeError, ValueError):
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
