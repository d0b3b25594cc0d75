"""A requests session with the host policy built into its transport.

The one HTTP client for URLs users give Tank: the http store's locations and
web-download imports. Import it only when a request is about to be made (it imports
requests and urllib3; :mod:`tank.net.hosts` does not). The policy is enforced where no
code path can skip it:

* :meth:`GuardedAdapter.send` checks the host name of *every* request (each redirect hop
  is a request of its own);
* for direct connections, the connection classes resolve the host themselves, check
  every address, and connect to exactly those addresses: there is no second DNS lookup
  that a rebinding name could answer differently;
* through a proxy (``http_proxy``/``https_proxy``/``no_proxy`` from the environment, as
  requests does) the connection goes to the proxy, so the target's addresses are
  resolved and checked before the request is handed to it. The proxy resolves the name
  again: a proxy that must not reach internal hosts has to enforce that itself.
"""

from __future__ import annotations

import http.cookiejar
import socket
import urllib.parse
from typing import Any

import requests
import requests.adapters
import requests.auth
import requests.utils
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

from tank.net.hosts import HostPolicy, HostRefused

__all__ = ["GuardedAdapter", "HostRefused", "make_session", "resolve"]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (raises gaierror)."""
    infos = socket.getaddrinfo(host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _GuardedConnectionMixin:
    """Resolve, check every address, then connect to one of exactly those addresses."""

    policy: HostPolicy
    host: str
    port: int
    proxy: Any
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        if self.proxy is not None or not self.policy.checks_addresses:
            return super()._new_conn()  # type: ignore[misc]
        try:
            addresses = resolve(self.host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        self.policy.check(self.host, addresses)
        error: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                error = exc
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(
                self, f"connection to {self.host} timed out (connect timeout={self.timeout})"
            ) from error
        raise NewConnectionError(
            self,  # type: ignore[arg-type]
            f"Failed to establish a new connection: {error}",
        ) from error


def _pool_classes(policy: HostPolicy) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pool classes whose connections apply ``policy``."""

    class Connection(_GuardedConnectionMixin, HTTPConnection):
        pass

    class SecureConnection(_GuardedConnectionMixin, HTTPSConnection):
        pass

    Connection.policy = SecureConnection.policy = policy

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    return {"http": Pool, "https": SecurePool}


class GuardedAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter that refuses hosts the policy refuses (see the module docstring)."""

    def __init__(self, policy: HostPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.policy)

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        parts = urllib.parse.urlsplit(request.url or "")
        host = parts.hostname or ""
        self.policy.check(host)
        proxies = kwargs.get("proxies") or {}
        if self.policy.checks_addresses and requests.utils.select_proxy(request.url or "", proxies):
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                addresses = resolve(host, port)
            except socket.gaierror as exc:
                raise requests.ConnectionError(
                    f"cannot resolve {host!r} to check it before using the proxy: {exc}"
                ) from None
            self.policy.check(host, addresses)
        return super().send(request, *args, **kwargs)


class _NoCredentials(requests.auth.AuthBase):
    """Session-wide "auth" that adds nothing. Its presence stops requests from filling
    in credentials from the operator's ``~/.netrc`` for whatever host a user's location
    (or its redirect) names; a location's own credentials still apply per request."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def make_session(
    policy: HostPolicy, *, user_agent: str = "tank", pool_maxsize: int = 10
) -> requests.Session:
    """A session that keeps no cookies, sends no ``.netrc`` credentials and sends every
    request through the policy. (Proxy settings of the environment still apply.)"""
    session = requests.Session()
    session.auth = _NoCredentials()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.headers["User-Agent"] = user_agent
    session.headers["Accept-Encoding"] = "identity"
    adapter = GuardedAdapter(policy, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
