"""The Images API as a WSGI application: its routes, the request context, the access log.

Every error becomes JSON ``{"error": {"code", "title", "message"}}`` with the status of
its :mod:`tank.errors` class (:class:`tank.web.WebApp` does that). v2 is served under
``/v2/...``; v1 under ``/v1/...`` and unprefixed paths; ``/`` lists both.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from tank import errors
from tank.api import csrf, health, images, members
from tank.api.context import check_identity_encoding, context_from_headers
from tank.api.v2 import cache as v2_cache
from tank.api.v2 import data as v2_data
from tank.api.v2 import discovery
from tank.api.v2 import images as v2_images
from tank.api.v2 import imports as v2_imports
from tank.api.v2 import locations as v2_locations
from tank.api.v2 import members as v2_members
from tank.checksums import DEFAULT_HASH_ALGO, hash_algo_validator
from tank.config import between, not_negative, one_of
from tank.console import ConsoleConfig, console_match, serve_asset
from tank.handover import LocationHandover
from tank.locations import redact
from tank.model import Context, Image
from tank.service import ImageService
from tank.web import Match, Request, Response, Router, WebApp
from tank.web.app import ENV_CONTEXT
from tank.web.routing import unquote_segment
from tank.web.server import Transfers, default_transfer_threads

if TYPE_CHECKING:
    from tank.api.metrics import Metrics
    from tank.imports.service import ImportService

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class ApiConfig:
    """The ``[api]`` section."""

    #: Trust identity headers from a front proxy / Keystone middleware.
    auth: bool = False
    #: Show image locations to admins (Glance's show_image_direct_url).
    show_image_direct_url: bool = False
    #: Worker threads of the HTTP server (requests served at once). Connections waiting
    #: for their request head, or idle between requests, hold no thread.
    threads: int = attrs.field(default=64, validator=between(1, 4096))
    #: Seconds a client has to send a whole request head, from its first byte; and a
    #: body of up to 64 KiB (a create, an edit), from the end of its head.
    header_timeout: float = attrs.field(default=10.0, validator=between(0.001, 3600))
    #: Seconds an idle kept-alive connection stays open.
    idle_timeout: float = attrs.field(default=60.0, validator=between(0.001, 86400))
    #: The least a client must send (request body) or take (response) per second, measured
    #: over ``rate_window`` seconds of waiting on it; slower transfers are ended (408 for
    #: an upload), so a client trickling bytes cannot hold a worker thread. 0: no floor.
    min_rate: int = attrs.field(default=1024, validator=not_negative)
    #: Seconds over which min_rate is measured.
    rate_window: float = attrs.field(default=30.0, validator=between(0.001, 3600))
    #: Open connections allowed per client address; 0 is no cap (behind a proxy, every
    #: client has the proxy's address).
    max_connections_per_client: int = attrs.field(default=0, validator=not_negative)
    #: Threads that may be reading request bodies (uploads, creates, updates) at once;
    #: another request with a body then gets 503 at once, and the remaining threads stay
    #: free for requests without one (listings, downloads, the console), however many
    #: slow uploads are open. Default: three quarters of ``threads``. Uploads and downloads
    #: together take at most the larger of this and ``download_threads``, and never the
    #: last thread.
    body_threads: int | None = attrs.field(default=None)

    #: Threads that may be sending image data (downloads, v1 and v2) at once; another
    #: download then gets 503 at once, so slow readers of large images cannot take every
    #: thread either. Default: three quarters of ``threads``, leaving at least one.
    download_threads: int | None = attrs.field(default=None)

    @body_threads.validator
    @download_threads.validator
    def _fits_threads(self, attribute: attrs.Attribute[Any], value: int | None) -> None:
        if value is not None and not 1 <= value <= self.threads:
            raise ValueError(f"{attribute.name} must be from 1 to threads ({self.threads})")

    #: The multihash of every upload (``os_hash_algo``/``os_hash_value``): a hashlib
    #: name (Glance's key). The service reads it (:meth:`ImageService.from_config`);
    #: it is declared here so that ``[api]`` is checked as one section at start-up.
    hashing_algorithm: str = attrs.field(default=DEFAULT_HASH_ALGO, validator=hash_algo_validator)
    #: Server processes tank-api pre-forks on its one listening socket (default: the
    #: number of CPUs tank-api may run on); 0 serves in tank-api's own process.
    workers: int = attrs.field(
        factory=lambda: len(os.sched_getaffinity(0)) or 1, validator=between(0, 256)
    )
    #: Seconds in-flight requests get to finish when tank-api stops (SIGTERM) or a
    #: worker is replaced (SIGHUP); then they are ended (an upload gets a 503).
    shutdown_timeout: float = attrs.field(default=10.0, validator=between(0.0, 86400))
    #: Log level (``--log-level`` wins); reloaded on SIGHUP.
    log_level: str = attrs.field(
        default="INFO", validator=one_of("DEBUG", "INFO", "WARNING", "ERROR")
    )
    #: Log file (``--log-file`` wins; default: standard error); reopened on SIGHUP.
    log_file: str | None = None
    #: ``text`` or ``json`` (one JSON object a line; ``--log-format`` wins).
    log_format: str = attrs.field(default="text", validator=one_of("text", "json"))
    #: Serve ``GET /metrics`` (Prometheus text format) without authentication: it shows
    #: counts and durations by route template, status and store, never an image, tenant
    #: or user. Keep it off the public side of the front-end (deploy/nginx).
    metrics: bool = True
    #: Behind a reverse proxy (deploy/nginx-tank-api.conf): take the scheme and host the
    #: client used from ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` (links in answers,
    #: e.g. the versions document, say https), and the client's address from the last
    #: ``X-Forwarded-For`` entry (the one the proxy added) for the access log. Only when
    #: no one but the proxy can reach tank-api (oslo's enable_proxy_headers_parsing).
    trust_proxy_headers: bool = False
    #: While this file exists, ``GET /healthcheck`` answers 503 ``DISABLED BY FILE``
    #: (oslo.middleware's ``disable_by_file_path``): drain a server behind a balancer.
    healthcheck_disable_file: str | None = None


def _decode(name: str, segment: str) -> str:
    """A path parameter, percent-decoded once. A member name that is not UTF-8 is a 400;
    an image id that is not cannot exist (404 from the handler, as for any non-UUID)."""
    if name == "image_id":
        return urllib.parse.unquote(segment, errors="replace")
    return unquote_segment(name, segment)


#: Served before authentication (as the versions document): for balancers and scrapers.
OPS = Router()
OPS.add("/healthcheck", GET=health.healthcheck)
OPS.add("/metrics", GET=health.metrics)

V1 = Router(decode=_decode)
V1.add("/", GET=discovery.versions)
V1.add("/versions", GET=discovery.versions)
V1.add("/images", GET=images.index, POST=images.create)
V1.add("/images/detail", GET=images.detail)
V1.add(
    "/images/{image_id}",
    HEAD=images.head,
    GET=images.download,
    PUT=images.update,
    DELETE=images.delete,
)
V1.add("/images/{image_id}/members", GET=members.list_members, PUT=members.replace_members)
V1.add("/images/{image_id}/members/{member}", PUT=members.add_member, DELETE=members.remove_member)
V1.add("/shared-images/{member}", GET=members.shared_images)

V2 = Router(decode=_decode)
V2.add("/", GET=discovery.versions)
V2.add("/images", GET=v2_images.index, POST=v2_images.create)
V2.add(
    "/images/{image_id}",
    GET=v2_images.show,
    PATCH=v2_images.update,
    DELETE=v2_images.delete,
)
V2.add("/images/{image_id}/file", GET=v2_data.download, PUT=v2_data.upload)
V2.add("/images/{image_id}/tags/{tag}", PUT=v2_images.add_tag, DELETE=v2_images.remove_tag)
V2.add("/images/{image_id}/actions/deactivate", POST=v2_images.deactivate)
V2.add("/images/{image_id}/actions/reactivate", POST=v2_images.reactivate)
V2.add("/images/{image_id}/members", GET=v2_members.index, POST=v2_members.create)
V2.add(
    "/images/{image_id}/members/{member}",
    GET=v2_members.show,
    PUT=v2_members.update,
    DELETE=v2_members.delete,
)
# locations for services (Glance 2024.1+): tank.handover
V2.add("/images/{image_id}/locations", GET=v2_locations.index, POST=v2_locations.add)
V2.add("/stores/{store}/{image_id}", DELETE=v2_locations.remove_from_store)
# interoperable import (tank.imports)
V2.add("/images/{image_id}/stage", PUT=v2_imports.stage)
V2.add("/images/{image_id}/import", POST=v2_imports.import_image)
V2.add("/schemas/{name}", GET=discovery.schema)
V2.add("/info/import", GET=discovery.import_info)
V2.add("/info/stores", GET=discovery.stores_info)
V2.add("/info/usage", GET=discovery.usage_info)
# Glance's cache API (tank.cache)
V2.add("/cache", GET=v2_cache.state, DELETE=v2_cache.clear)
V2.add("/cache/clean", POST=v2_cache.clean)
V2.add("/cache/prune", POST=v2_cache.prune)
V2.add("/cache/{image_id}", PUT=v2_cache.queue, DELETE=v2_cache.remove)


class Api(WebApp):
    """The Images API over one :class:`~tank.service.ImageService`; a WSGI callable."""

    router = V1
    access_log = logging.getLogger("tank.api.access")

    def __init__(
        self,
        service: ImageService,
        config: ApiConfig | None = None,
        imports: ImportService | None = None,
        console: ConsoleConfig | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.service = service
        #: The web console at /console/ (:mod:`tank.console`).
        self.console = console or ConsoleConfig()
        self.config = config or ApiConfig()
        #: Prometheus metrics of this process (None: not recorded, /metrics is 404).
        self.metrics = metrics
        self.handover = LocationHandover(service)
        #: The downloads this process may send at once (``download_threads``), counted
        #: with the server's uploads when the server offers its count (tank-api's does),
        #: else in :attr:`transfers`.
        self.download_threads = self.config.download_threads or default_transfer_threads(
            self.config.threads
        )
        self.transfers = Transfers(self.download_threads)
        #: Interoperable import; None: not offered (stage and import answer 404).
        self.imports = imports

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if self.config.trust_proxy_headers:
            _apply_proxy_headers(environ)
        return super().__call__(environ, start_response)

    def route(self, req: Request, path: str, quoted: bool) -> Match | None:
        """The handler; its template (a metrics label) names the API version."""
        match: Match | None
        if self.console.enabled and (path == "/console" or path.startswith("/console/")):
            return attrs.evolve(
                console_match(path, req.method, quoted=quoted), template="/console/"
            )
        if path == "/v2" or path.startswith("/v2/"):
            match = V2.match(path[3:] or "/", req.method, quoted=quoted)
            return None if match is None else attrs.evolve(match, template="/v2" + match.template)
        ops = OPS.match(path, req.method, quoted=quoted)
        if ops is not None:
            return ops
        if path == "/v1" or path.startswith("/v1/"):
            path = path[3:] or "/"
        match = self.router.match(path, req.method, quoted=quoted)
        if match is None or match.handler is discovery.versions:
            return match
        return attrs.evolve(match, template="/v1" + match.template)

    def call(self, req: Request, match: Match) -> Response:
        refused = csrf.refusal(req)
        if refused is not None:
            raise errors.Forbidden(refused)
        if match.handler is discovery.versions:  # before authentication, as in Glance
            return discovery.versions(self, req, Context())
        if match.handler is serve_asset:  # static files: no data, no identity needed
            return serve_asset(req, **match.params)
        if match.handler is health.healthcheck and "detail" not in req.query:
            return health.healthcheck(self, req, Context())
        if match.handler is health.metrics:  # for Prometheus, which sends no token
            return health.metrics(self, req, Context())
        if self.config.auth:
            check_identity_encoding(req.environ)
        ctx = context_from_headers(req.headers, auth=self.config.auth)
        req.environ[ENV_CONTEXT] = ctx
        return match.handler(self, req, ctx, **match.params)  # type: ignore[no-any-return]

    def observe(self, environ: dict[str, Any], status: int, sent: int, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.observe(environ, status, sent, seconds)

    def cancel_import(self, image_id: str) -> None:
        """Stop an import of a deleted image running in this process."""
        if self.imports is not None:
            self.imports.cancel(image_id)

    def import_methods(self) -> tuple[str, ...]:
        """The interoperable import methods this server offers (``[import] methods``)."""
        return () if self.imports is None else self.imports.methods

    def direct_url(self, ctx: Context) -> Callable[[Image], str | None]:
        """How to show an image's location to this caller: only to admins, only with
        ``show_image_direct_url``, as the store's direct URL (never with secrets)."""
        if not (self.config.show_image_direct_url and ctx.is_admin):
            return lambda image: None
        stores = self.service.stores

        def shown(image: Image) -> str | None:
            if not image.location:
                return None
            try:
                backend = stores.for_location(image.location, image.store)
            except errors.TankError:
                return None
            return backend.direct_url(image.location) or redact(image.location)

        return shown


def _apply_proxy_headers(environ: dict[str, Any]) -> None:
    """What the reverse proxy said about the client (see ``trust_proxy_headers``)."""
    proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
    if proto in ("http", "https"):
        environ["wsgi.url_scheme"] = proto
    host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[-1].strip()
    if host:
        environ["HTTP_HOST"] = host
    forwarded_for = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
    if forwarded_for:
        environ["REMOTE_ADDR"] = forwarded_for


def make_app(
    service: ImageService,
    config: ApiConfig | None = None,
    imports: ImportService | None = None,
    console: ConsoleConfig | None = None,
    *,
    recover: bool = True,
    metrics: Metrics | None = None,
) -> Api:
    """The Images API as a WSGI application, for tank-api or any WSGI server; with
    ``imports`` (started by the caller) it offers interoperable import; with
    ``metrics``, it records them and serves ``GET /metrics`` (``[api] metrics``).

    With ``recover``, locations a stopped process was verifying are verified again (in
    the background): one process of a host does it (tank-api: worker slot 0)."""
    app = Api(service, config, imports, console, metrics)
    if recover:
        try:
            app.handover.recover()
        except errors.TankError:
            log.exception("could not look for handed-over locations left unverified")
    return app
