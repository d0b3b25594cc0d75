"""HTTP for the http store: redirects, status codes and library errors, handled once.

Every error leaving this module is a :mod:`tank.errors` error whose message names the
location redacted: no userinfo password, no signed-URL query secrets, no raw library
message (those repeat the URL).
"""

from __future__ import annotations

import logging
import re
import ssl
import urllib.parse
from collections.abc import Generator, Iterator, Mapping
from typing import Any

import requests
import urllib3.exceptions

from tank import errors
from tank.locations import redact
from tank.net.hosts import HostPolicy, HostRefused
from tank.net.transport import make_session
from tank_store_http.location import HttpLocation

log = logging.getLogger(__name__)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)


class HttpClient:
    """One store's session plus the rules for following it anywhere."""

    def __init__(self, config: Any, policy: HostPolicy, store: str) -> None:
        self.store = store
        self.max_redirects: int = config.max_redirects
        self.timeout = (config.connect_timeout, config.read_timeout)
        self.verify: bool | str = config.ca_bundle or config.verify_tls
        self.session = make_session(policy, user_agent="tank-store-http/0.1")

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        location: HttpLocation,
        headers: Mapping[str, str] | None = None,
        *,
        accept: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """Send ``method``, following redirects; return a 2xx (or ``accept``-ed) response.

        The caller owns the returned streaming response and must close it. Redirects are
        followed by hand, at most ``max_redirects``, never from https to http, and each
        hop passes the host policy again (in the transport). Credentials from the
        location are sent only while the origin stays the same.
        """
        url, origin = location.url, location.origin
        for hop in range(self.max_redirects + 1):
            auth = location.auth if origin == location.origin else None
            response = self._send(method, url, headers, auth, location)
            if response.status_code not in REDIRECTS or "location" not in response.headers:
                break
            response.close()
            if hop == self.max_redirects:
                raise errors.StoreError(
                    f"{location} redirected more than {self.max_redirects} times "
                    f"(max_redirects of [stores.{self.store}])",
                    **self._where(location),
                )
            target = self._redirect_target(url, response.headers["location"], location)
            log.debug("store %s: %s redirects to %s", self.store, redact(url), target)
            if response.status_code == 303 and method != "HEAD":
                method = "GET"
            url, origin = target.url, target.origin
        status = response.status_code
        if status < 300 or status in accept:
            return response
        response.close()
        raise status_error(status, location, url, store=self.store)

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        auth: tuple[str, str] | None,
        location: HttpLocation,
    ) -> requests.Response:
        try:
            return self.session.request(
                method,
                url,
                headers=dict(headers or {}),
                auth=auth,
                timeout=self.timeout,
                verify=self.verify,
                stream=True,
                allow_redirects=False,
            )
        except HostRefused as exc:
            raise errors.Forbidden(
                f"refusing to fetch {_hop(location, url)}: {exc}", **self._where(location)
            ) from None
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
        ) as exc:
            raise self.translate(exc, location, url) from None

    def _redirect_target(self, url: str, header: str, location: HttpLocation) -> HttpLocation:
        absolute = urllib.parse.urljoin(url, header.strip())
        try:
            target = HttpLocation.parse(absolute)
        except errors.BadLocation:
            raise errors.Forbidden(
                f"{location} redirects to {redact(absolute)!r}, which is not an http(s) URL",
                **self._where(location),
            ) from None
        if url.startswith("https:") and target.scheme == "http":
            raise errors.Forbidden(
                f"{location} redirects from https to plain http ({target}); refusing to downgrade",
                **self._where(location),
            )
        return target

    def translate(
        self, exc: BaseException, location: HttpLocation, url: str | None = None, *, after: str = ""
    ) -> errors.TankError:
        """A :mod:`tank.errors` error for a requests/urllib3 exception, without its text."""
        kind, message = self._describe(exc, _hop(location, url or location.url))
        return kind(message + after, **self._where(location))

    def _describe(self, exc: BaseException, where: str) -> tuple[type[errors.TankError], str]:
        unavailable = errors.StoreUnavailable
        if isinstance(exc, requests.exceptions.SSLError | ssl.SSLError):
            cert = _find(exc, ssl.SSLCertVerificationError)
            why = cert.verify_message if cert is not None else "TLS handshake failed"
            section = f"[stores.{self.store}]"
            return (
                unavailable,
                f"TLS for {where} failed: {why} (verify_tls, ca_bundle of {section})",
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return unavailable, f"timed out connecting for {where} after {self.timeout[0]}s"
        if isinstance(exc, requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
            return unavailable, f"the server for {where} sent nothing for {self.timeout[1]}s"
        if isinstance(exc, requests.exceptions.ProxyError):
            return unavailable, f"the proxy failed for {where}"
        if isinstance(exc, requests.ConnectionError | urllib3.exceptions.HTTPError | OSError):
            return unavailable, f"cannot fetch {where}: {_reason(exc)}"
        if isinstance(exc, requests.exceptions.InvalidURL | ValueError):
            return errors.BadLocation, f"{where} is not a URL that can be fetched"
        return errors.StoreError, f"fetching {where} failed ({type(exc).__name__})"

    def _where(self, location: HttpLocation) -> dict[str, str]:
        return {"store": self.store, "location": location.redacted()}


def status_error(status: int, location: HttpLocation, url: str, *, store: str) -> errors.TankError:
    """The error for an HTTP status that is neither success nor redirect."""
    where = _hop(location, url)
    kw = {"store": store, "location": location.redacted()}
    if status in (404, 410):
        return errors.NotFound(f"no data at {where} (HTTP {status})", **kw)
    if status in (401, 403, 407):
        return errors.Forbidden(f"the server refused access to {where} (HTTP {status})", **kw)
    if status in (408, 429) or status >= 500:
        return errors.StoreUnavailable(f"the server failed for {where} (HTTP {status})", **kw)
    return errors.StoreError(f"unexpected answer for {where} (HTTP {status})", **kw)


def content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "").strip()
    # not str.isdigit(): it is true for "²", which int() refuses
    return int(value) if value.isascii() and value.isdigit() else None


def content_range(response: requests.Response) -> tuple[int | None, int | None, int | None]:
    """(first, last, total) of a ``Content-Range`` header; None for what it does not say."""
    value = response.headers.get("Content-Range", "")
    match = _RANGE.match(value)
    if match:
        total = None if match[3] == "*" else int(match[3])
        return int(match[1]), int(match[2]), total
    match = _UNSATISFIED.match(value)
    if match:
        return None, None, int(match[1])
    return None, None, None


class ResponseChunks:
    """The body of a streaming response as chunks: ``skip`` bytes dropped, ``size`` kept.

    Reads raw bytes (no Content-Encoding decoding: an image is served as it is stored)
    and fails loudly, with StoreUnavailable, when the body ends short.
    :meth:`close` releases the connection even if iteration never started.
    """

    def __init__(
        self,
        response: requests.Response,
        client: HttpClient,
        location: HttpLocation,
        *,
        skip: int,
        size: int,
        chunk_size: int,
    ) -> None:
        self._response = response
        self._chunks = self._generate(client, location, skip, size, chunk_size)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()
        self._response.close()

    def _generate(
        self, client: HttpClient, location: HttpLocation, skip: int, size: int, chunk_size: int
    ) -> Generator[bytes, None, None]:
        sent = 0
        try:
            raw = self._response.raw
            while sent < size:
                amount = min(chunk_size, skip) if skip else min(chunk_size, size - sent)
                try:
                    chunk = raw.read(amount, decode_content=False)
                except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                    after = f" (after {sent} of {size} bytes)"
                    raise client.translate(exc, location, after=after) from None
                if not chunk:
                    raise errors.StoreUnavailable(
                        f"the server closed {location} after {sent} of {size} bytes",
                        store=client.store,
                        location=location.redacted(),
                    )
                if skip:
                    skip -= len(chunk)
                    continue
                sent += len(chunk)
                yield chunk
        finally:
            self._response.close()


def _hop(location: HttpLocation, url: str) -> str:
    if url == location.url:
        return str(location)
    return f"{location} (redirected to {redact(url)})"


def _find(exc: BaseException, kind: type[BaseException]) -> Any:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return None


def _reason(exc: BaseException) -> str:
    """A short, URL-free cause: "name resolution failed", "Connection refused", ..."""
    if _find(exc, urllib3.exceptions.NameResolutionError) is not None:
        return "the host name does not resolve"
    if _find(exc, urllib3.exceptions.ProtocolError) is not None:
        return "the connection broke"
    os_error = _find(exc, ConnectionError) or _find(exc, TimeoutError)
    if os_error is not None and os_error.strerror:
        return str(os_error.strerror)
    return "connection failed"
