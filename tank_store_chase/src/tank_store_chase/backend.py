"""The chase store: image data in OpenStack Swift (or Ceph RGW's Swift API).

Config keys follow Glance's swift store. Credentials live only in the config; locations
(``location.py``) name the cluster's auth host, the container and the object. Writing is
in ``writer.py``, the Swift operations in ``client.py``.
"""

from __future__ import annotations

import logging
import math
import re
import urllib.parse
from typing import Any, ClassVar

import attrs

from tank import errors
from tank.config import positive
from tank.store import Backend, Capability, ReadResult, Writer
from tank_store_chase.client import SwiftClient
from tank_store_chase.connections import import_keystoneauth, import_swiftclient
from tank_store_chase.location import EXAMPLE, SCHEMES, SwiftLocation

log = logging.getLogger(__name__)

GiB = 1 << 30
MiB = 1 << 20
#: Container names Tank accepts (it adds ``_segments`` and ``_<prefix>`` to them).
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
#: Object names Tank writes: image ids.
_OBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def _auth_url(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{attribute.name} must be an http:// or https:// URL")
    if "@" in parts.netloc:
        raise ValueError(f"{attribute.name} must not contain credentials; use user and key")
    if parts.query or parts.fragment:
        raise ValueError(f"{attribute.name} must not have a query or fragment")


def _container(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not _CONTAINER.match(value):
        raise ValueError(
            f"{attribute.name} must be 1-200 characters of letters, digits, '.', '_', '-'"
        )


def _not_negative(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


class ChaseBackend(Backend):
    """Swift store: streamed uploads, segmented large objects, ranged streamed reads."""

    type_name: ClassVar[str] = "chase"
    schemes: ClassVar[tuple[str, ...]] = SCHEMES
    location_example: ClassVar[str] = EXAMPLE

    @attrs.frozen(kw_only=True)
    class Config:
        """``[stores.<name>]`` of ``type = "chase"``; sizes are bytes, times seconds."""

        #: Auth endpoint: tempauth ``http://proxy:8080/auth/v1.0`` or Keystone ``.../v3``.
        auth_address: str = attrs.field(validator=_auth_url)
        #: 1 (tempauth / swauth / RGW) or 3 (Keystone v3, needs keystoneauth1).
        auth_version: int = attrs.field(default=1, validator=attrs.validators.in_((1, 3)))
        #: v1: ``account:user``; v3: the user name.
        user: str
        key: str = attrs.field(repr=False)
        #: Keystone v3 scope and domains (domains default to the id ``default``).
        project_name: str | None = None
        project_id: str | None = None
        user_domain_name: str | None = None
        user_domain_id: str | None = None
        project_domain_name: str | None = None
        project_domain_id: str | None = None
        region_name: str | None = None
        interface: str = attrs.field(
            default="public", validator=attrs.validators.in_(("public", "internal", "admin"))
        )
        container: str = attrs.field(default="tank", validator=_container)
        create_container_on_put: bool = True
        #: Spread images over containers ``<container>_<first N chars of the id>`` (0: off).
        multiple_containers_seed: int = attrs.field(
            default=0, validator=[_not_negative, attrs.validators.le(32)]
        )
        #: Images larger than this (or of unknown length) are stored as segments.
        large_object_size: int = attrs.field(default=5 * GiB, validator=positive)
        large_object_chunk_size: int = attrs.field(default=200 * MiB, validator=positive)
        #: ``auto`` (SLO if /info lists it, else DLO), ``slo`` or ``dlo``.
        large_object_manifest: str = attrs.field(
            default="auto", validator=attrs.validators.in_(("auto", "slo", "dlo"))
        )
        insecure: bool = False
        #: CA bundle to verify the server certificates.
        ca_file: str | None = None
        connect_timeout: float = attrs.field(default=3.0, validator=positive)
        #: Read timeout of each request.
        timeout: float = attrs.field(default=60.0, validator=positive)
        #: Retries of a failed request (with backoff from 0.25 s), besides one re-auth.
        retries: int = attrs.field(default=2, validator=_not_negative)
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
        container = cfg.container
        if cfg.multiple_containers_seed:
            container = f"{container}_{image_id[: cfg.multiple_containers_seed]}"
        location = SwiftLocation.for_object(cfg.auth_address, container, image_id)
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
        self.require(Capability.DELETE)
        self._swift.delete(self._parse(location))

    def size_of(self, location: str) -> int:
        return self._swift.size(self._parse(location))

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

    def _parse(self, location: str) -> SwiftLocation:
        """Parse ``location`` and refuse one outside this store's cluster and containers."""
        self.check_location(location)
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
