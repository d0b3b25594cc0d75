"""web-download: fetch a URL a user gave, through the same SSRF guard as the http store.

The user names the URL and Tank fetches it from inside the cloud, so the request goes
through :mod:`tank.net` (private, loopback and link-local addresses refused unless
``[import] allow_private_networks``; every redirect hop and every connected address
checked). Redirects are followed by hand, at most :data:`MAX_REDIRECTS`, never from
https to plain http. The body is read raw (no Content-Encoding decoding: the image is
what the server stores) and cut off at ``max_size``. Every failure is a
:mod:`tank.errors` error whose message shows the URL redacted.

``timeout`` bounds each wait for data; ``deadline`` bounds the whole download. Reads
return whatever one receive brings (``read1``), so a server that trickles a byte just
before each timeout is still stopped within one ``timeout`` of the deadline.
"""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.parse
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

from tank import errors
from tank.locations import redact
from tank.net.hosts import HostPolicy

if TYPE_CHECKING:
    import requests

CHUNK_SIZE = 1 << 20
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SECTION = "[import]"


class WebStream(Iterator[bytes]):
    """The body of one fetched URL as chunks; :meth:`close` releases the connection
    whether or not iteration started or finished (also usable as a context manager)."""

    def __init__(
        self,
        session: requests.Session,
        response: requests.Response,
        uri: str,
        max_size: int,
        *,
        ends_at: float | None = None,
    ) -> None:
        self.uri = uri
        #: What the server announced (Content-Length), if it did.
        self.size = _content_length(response)
        self._session = session
        self._response = response
        #: ``time.monotonic()`` by which the whole body must have arrived, or None.
        self._ends_at = ends_at
        self._chunks = self._read(max_size)

    def __next__(self) -> bytes:
        return next(self._chunks)

    def abort(self) -> None:
        """From another thread: end a read blocked waiting for data now (tank-api is
        stopping), by shutting the connection's socket down; the reader gets an error."""
        connection = getattr(self._response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._chunks.close()
        self._response.close()
        self._session.close()

    def __enter__(self) -> WebStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, max_size: int) -> Generator[bytes, None, None]:
        import urllib3.exceptions

        received = 0
        try:
            while True:
                try:
                    chunk = self._response.raw.read1(CHUNK_SIZE, decode_content=False)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise _failure(exc, redact(self.uri), after=received) from None
                if not chunk:
                    return
                if self._ends_at is not None and time.monotonic() > self._ends_at:
                    raise errors.FetchFailed(
                        f"{redact(self.uri)} took longer than allowed to download "
                        f"(stopped after {received + len(chunk)} bytes)"
                    )
                received += len(chunk)
                if received > max_size:
                    raise errors.ImageTooLarge(
                        f"{redact(self.uri)} is larger than the {max_size} bytes allowed"
                    )
                yield chunk
        finally:
            self._response.close()


def fetch(
    uri: str,
    *,
    allow_private_networks: bool,
    max_size: int,
    timeout: float,
    deadline: float | None = None,
) -> WebStream:
    """Start fetching ``uri``; the caller iterates the returned stream and closes it.

    :param allow_private_networks: reach loopback, private and link-local addresses too.
    :param max_size: bytes; a larger announced size fails at once, a larger body when
        it gets there (a server may send no or a wrong Content-Length).
    :param timeout: seconds to connect, and seconds each read may wait for data.
    :param deadline: seconds the whole fetch (redirects and body) may take; checked
        after each read, so it is overrun by at most one ``timeout``.
    :raises errors.Invalid: not an http(s) URL with a host, or one with credentials.
    :raises errors.Forbidden: the host (or a redirect's) is refused by the SSRF guard,
        or a redirect leads from https to http.
    :raises errors.FetchFailed: not reachable, timed out, a non-2xx answer, too many
        redirects, past the ``deadline``.
    :raises errors.ImageTooLarge: the announced size is over ``max_size``.
    """
    check_uri(uri)
    ends_at = None if deadline is None else time.monotonic() + deadline
    from tank.net.transport import make_session

    policy = HostPolicy(allow_private_networks=allow_private_networks, section=_SECTION)
    session = make_session(policy, user_agent="tank-web-download", pool_maxsize=1)
    try:
        response = _follow(session, uri, timeout)
    except BaseException:
        session.close()
        raise
    size = _content_length(response)
    if size is not None and size > max_size:
        response.close()
        session.close()
        raise errors.ImageTooLarge(
            f"{redact(uri)} is {size} bytes, more than the {max_size} bytes allowed"
        )
    return WebStream(session, response, uri, max_size, ends_at=ends_at)


def check_uri(uri: str, *, allow_private_networks: bool | None = None) -> None:
    """Raise :class:`errors.Invalid` unless ``uri`` is one web-download may fetch (before
    any network access, so an import request can be refused at once, as Glance's URI
    filtering does). With ``allow_private_networks`` given, a host that is an IP
    literal is checked too (a name is checked on fetching, once resolved)."""
    try:
        parts = urllib.parse.urlsplit(uri)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        raise errors.Invalid(f"{redact(uri)!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.Invalid(
            f"web-download takes an http:// or https:// URL with a host, not {redact(uri)!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise errors.Invalid(
            f"web-download does not send credentials: remove them from {redact(uri)!r}"
        )
    if allow_private_networks is not None:
        from tank.net.hosts import HostRefused

        policy = HostPolicy(allow_private_networks=allow_private_networks, section=_SECTION)
        try:
            policy.check(parts.hostname)
        except HostRefused as exc:
            raise errors.Invalid(f"refusing to fetch {redact(uri)}: {exc}") from None


def _follow(session: requests.Session, uri: str, timeout: float) -> requests.Response:
    import requests

    from tank.net.hosts import HostRefused

    url = uri
    for hop in range(MAX_REDIRECTS + 1):
        try:
            response = session.get(
                url, timeout=(timeout, timeout), stream=True, allow_redirects=False
            )
        except HostRefused as exc:
            raise errors.Forbidden(f"refusing to fetch {_where(uri, url)}: {exc}") from None
        except (requests.RequestException, OSError, ValueError) as exc:
            raise _failure(exc, _where(uri, url)) from None
        status = response.status_code
        if status in _REDIRECTS and "location" in response.headers:
            response.close()
            if hop == MAX_REDIRECTS:
                raise errors.FetchFailed(
                    f"{redact(uri)} redirected more than {MAX_REDIRECTS} times"
                )
            target = urllib.parse.urljoin(url, response.headers["location"].strip())
            if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
                raise errors.Forbidden(
                    f"{redact(uri)} redirects to {redact(target)!r}, not an http(s) URL"
                )
            if url.startswith("https:") and target.startswith("http:"):
                raise errors.Forbidden(
                    f"{redact(uri)} redirects from https to plain http; refusing to downgrade"
                )
            url = target
            continue
        if 200 <= status < 300:
            return response
        response.close()
        raise errors.FetchFailed(f"the server answered HTTP {status} for {_where(uri, url)}")
    raise AssertionError("unreachable")  # pragma: no cover


def _failure(exc: BaseException, where: str, *, after: int | None = None) -> errors.TankError:
    """An error for a requests/urllib3/socket failure that does not repeat its text (which
    may hold the URL unredacted)."""
    import requests
    import urllib3.exceptions

    tail = "" if after is None else f" after {after} bytes"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return errors.FetchFailed(f"timed out connecting to fetch {where}")
    if isinstance(
        exc,
        requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError | TimeoutError,
    ):
        return errors.FetchFailed(f"the server for {where} sent nothing in time{tail}")
    if isinstance(exc, requests.exceptions.SSLError):
        return errors.FetchFailed(f"TLS with the server for {where} failed")
    if isinstance(exc, requests.exceptions.InvalidURL | ValueError):
        return errors.Invalid(f"{where} is not a URL that can be fetched")
    if after is not None:
        return errors.FetchFailed(f"the connection for {where} broke{tail}")
    return errors.FetchFailed(f"cannot reach the server for {where}")


def _where(uri: str, url: str) -> str:
    return redact(uri) if url == uri else f"{redact(uri)} (redirected to {redact(url)})"


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isascii() and value.isdigit() else None
