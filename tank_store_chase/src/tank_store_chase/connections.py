"""Talking to Swift: authentication, a pool of swiftclient connections, error translation.

A ``swiftclient.client.Connection`` is not thread-safe (it holds one HTTP session and its
retry state), so each operation borrows one from :class:`ConnectionPool` and gives it
back. A connection authenticates on first use and again, transparently, when Swift
answers 401 (an expired token): swiftclient's retry loop does that for every call that
can be replayed. Streamed uploads cannot be replayed, so callers run a cheap request on
the connection right before one (see ``upload.py``).

swiftclient, requests and keystoneauth1 are imported here, inside functions, so that
loading the plugin never needs them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from tank import errors

if TYPE_CHECKING:
    from swiftclient.client import Connection

log = logging.getLogger(__name__)

#: First pause before swiftclient retries a failed request (doubling, at most MAX_BACKOFF).
STARTING_BACKOFF = 0.25
MAX_BACKOFF = 4.0
#: Idle connections kept per store; more are made when needed and closed when returned.
MAX_IDLE = 16


def import_swiftclient() -> Any:
    """The ``swiftclient.client`` module, or BadStoreConfig saying what to install."""
    try:
        import swiftclient.client
    except ImportError as exc:
        raise errors.BadStoreConfig(
            f"python-swiftclient is not importable ({exc}): pip install python-swiftclient"
        ) from None
    return swiftclient.client


def import_keystoneauth() -> tuple[Any, Any]:
    """keystoneauth1's ``session`` and ``identity.v3`` modules, for ``auth_version = 3``."""
    try:
        from keystoneauth1 import session
        from keystoneauth1.identity import v3
    except ImportError as exc:
        raise errors.BadStoreConfig(
            f"auth_version = 3 needs keystoneauth1, which is not importable ({exc}): "
            "pip install keystoneauth1"
        ) from None
    return session, v3


@attrs.frozen
class ClusterInfo:
    """What the cluster's ``/info`` says about large objects."""

    slo: bool
    max_manifest_segments: int = 1000


class ConnectionPool:
    """Hands out swiftclient Connections, one borrower at a time each.

    ``config`` is the store's ``ChaseBackend.Config``. With Keystone v3, every
    connection shares one keystoneauth session (thread-safe; it caches the token and
    renews it when swiftclient reports a 401).
    """

    def __init__(self, config: Any, store: str) -> None:
        self._config = config
        self._store = store
        self._idle: list[Connection] = []
        self._all: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._session: Any = None

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """Borrow a connection for one operation (not across threads)."""
        conn = self.take()
        broken = True
        try:
            yield conn
            broken = False
        finally:
            self.give(conn, broken=broken)

    def take(self) -> Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        conn = self._new()
        with self._lock:
            self._all.add(conn)
        return conn

    def give(self, conn: Connection, *, broken: bool = False) -> None:
        """Return ``conn``; a ``broken`` one drops its HTTP connection (its token stays)."""
        if broken:
            _close_quietly(conn)
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        _close_quietly(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)

    def _new(self) -> Connection:
        client = import_swiftclient()
        cfg = self._config
        common: dict[str, Any] = {
            "retries": cfg.retries,
            "starting_backoff": STARTING_BACKOFF,
            "max_backoff": MAX_BACKOFF,
            "timeout": (cfg.connect_timeout, cfg.timeout),
            "insecure": cfg.insecure,
            "cacert": cfg.ca_file,
        }
        if cfg.auth_version == 3:
            os_options = {
                "service_type": "object-store",
                "endpoint_type": cfg.interface,
                "region_name": cfg.region_name,
            }
            return client.Connection(session=self._keystone(), os_options=os_options, **common)
        return client.Connection(
            authurl=cfg.auth_address, user=cfg.user, key=cfg.key, auth_version="1", **common
        )

    def _keystone(self) -> Any:
        with self._lock:
            if self._session is None:
                session, v3 = import_keystoneauth()
                cfg = self._config
                user_domain_id = cfg.user_domain_id
                if cfg.user_domain_name is None and user_domain_id is None:
                    user_domain_id = "default"
                project_domain_id = cfg.project_domain_id
                if cfg.project_domain_name is None and project_domain_id is None:
                    project_domain_id = "default"
                auth = v3.Password(
                    auth_url=cfg.auth_address,
                    username=cfg.user,
                    password=cfg.key,
                    project_name=cfg.project_name,
                    project_id=cfg.project_id,
                    user_domain_name=cfg.user_domain_name,
                    user_domain_id=user_domain_id,
                    project_domain_name=cfg.project_domain_name,
                    project_domain_id=project_domain_id,
                )
                verify: bool | str = False if cfg.insecure else (cfg.ca_file or True)
                self._session = session.Session(auth=auth, verify=verify, timeout=cfg.timeout)
            return self._session


def _close_quietly(conn: Connection) -> None:
    try:
        conn.close()
    except Exception:
        log.debug("closing a swift connection failed", exc_info=True)


def cluster_info(conn: Connection) -> ClusterInfo:
    """Ask ``/info`` whether the cluster has SLO (Swift answers next to ``/v1``; RGW at
    ``/swift/info``). No ``/info`` at all means no SLO: use DLO."""
    client = import_swiftclient()
    if not conn.url or not conn.token:
        conn.head_account()  # authenticates, with retries
    try:
        info = conn.get_capabilities()
    except client.ClientException as exc:
        if exc.http_status in (404, 401, 403):
            log.info("swift /info unavailable (HTTP %s): using DLO manifests", exc.http_status)
            return ClusterInfo(slo=False)
        raise
    except ValueError:  # not JSON
        return ClusterInfo(slo=False)
    slo = info.get("slo") if isinstance(info, dict) else None
    if not isinstance(slo, dict):
        return ClusterInfo(slo=False)
    return ClusterInfo(slo=True, max_manifest_segments=int(slo.get("max_manifest_segments", 1000)))


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a swiftclient error, else None."""
    status = getattr(exc, "http_status", None)
    return status if isinstance(status, int) else None


def translate(
    exc: BaseException,
    what: str,
    *,
    config: Any,
    store: str,
    location: str | None = None,
) -> errors.TankError:
    """The :mod:`tank.errors` exception for a swiftclient / requests / keystoneauth error.

    ``what`` names the operation ("reading ...") and starts the message. Messages carry
    the status and the auth host, never the key, a token or a response body.
    """
    if isinstance(exc, errors.TankError):
        return exc
    host = _host(config.auth_address)
    kw: dict[str, Any] = {"store": store, "location": location}
    status = status_of(exc)
    cls_name = type(exc).__name__
    module = type(exc).__module__ or ""
    if module.startswith("keystoneauth1"):
        return _translate_keystone(exc, what, host=host, config=config, kw=kw)
    if status is not None:
        return _translate_status(exc, status, what, host=host, config=config, kw=kw)
    if _is_timeout(exc):
        return errors.StoreUnavailable(
            f"{what}: Swift at {host} did not answer in time "
            f"(connect_timeout {config.connect_timeout}s, timeout {config.timeout}s)",
            **kw,
        )
    if _is_connection_error(exc):
        return errors.StoreUnavailable(f"{what}: cannot reach Swift at {host} ({cls_name})", **kw)
    message = getattr(exc, "msg", None) if cls_name == "ClientException" else None
    return errors.StoreError(f"{what}: Swift client error at {host}: {message or cls_name}", **kw)


def _translate_status(
    exc: BaseException, status: int, what: str, *, host: str, config: Any, kw: dict[str, Any]
) -> errors.TankError:
    reason = getattr(exc, "http_reason", "") or ""
    answered = f"Swift at {host} answered {status} {reason}".rstrip()
    if status == 404:
        return errors.NotFound(f"{what}: not found ({answered})", **kw)
    if status == 401:
        return errors.Forbidden(
            f"{what}: {answered}: the credentials were refused; check user "
            f"{config.user!r} and its key in [stores.{kw['store']}]",
            **kw,
        )
    if status == 403:
        return errors.Forbidden(
            f"{what}: {answered}: user {config.user!r} may not do this (check its roles "
            "or the container's ACLs)",
            **kw,
        )
    if status == 412:
        return errors.Duplicate(f"{what}: the object already exists ({answered})", **kw)
    if status in (413, 507):
        return errors.StorageFull(f"{what}: no room ({answered}; quota or disk full)", **kw)
    if status in (408, 429, 498, 499, 502, 503, 504):
        return errors.StoreUnavailable(f"{what}: {answered}", **kw)
    return errors.StoreError(f"{what}: {answered}", **kw)


def _translate_keystone(
    exc: BaseException, what: str, *, host: str, config: Any, kw: dict[str, Any]
) -> errors.TankError:
    from keystoneauth1 import exceptions as ks

    if isinstance(exc, ks.Unauthorized):
        return errors.Forbidden(
            f"{what}: Keystone at {host} refused the credentials of user {config.user!r} "
            f"(check key, project and domains in [stores.{kw['store']}])",
            **kw,
        )
    if isinstance(exc, ks.Forbidden):
        return errors.Forbidden(f"{what}: Keystone at {host} denied access", **kw)
    if isinstance(exc, ks.EndpointNotFound):
        return errors.BadStoreConfig(
            f"{what}: the Keystone catalog at {host} has no object-store endpoint "
            f"(interface {config.interface!r}, region {config.region_name!r})",
            **kw,
        )
    if isinstance(exc, ks.ConnectionError | ks.DiscoveryFailure):
        return errors.StoreUnavailable(
            f"{what}: cannot reach Keystone at {host} ({type(exc).__name__})", **kw
        )
    return errors.StoreError(f"{what}: Keystone error at {host}: {type(exc).__name__}", **kw)


def _is_timeout(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.Timeout | TimeoutError)


def _is_connection_error(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.RequestException | OSError)


def _host(url: str) -> str:
    import urllib.parse

    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
