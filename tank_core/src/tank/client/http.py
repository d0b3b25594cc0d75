"""The HTTP exchange both API versions share: one session, requests, errors, streams.

:class:`Http` knows nothing of images: it sends a request to the tank-api at its URL,
turns a failure to connect into :class:`~tank.client.errors.ConnectionFailed` and an
error answer into the matching :mod:`tank.client.errors` class, and streams bodies.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from tank.client import errors
from tank.client.transfer import SourceError
from tank.errors import ValidationError


class Http:
    """Requests to one tank-api; ``url`` is the base URL (no version suffix, no password).

    ``user:password@`` in the given URL becomes basic auth and is kept out of ``url``,
    which every error message shows.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float | tuple[float, float],
        headers: Mapping[str, str] | None,
        session: requests.Session | None,
        chunk_size: int,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError("url", f"expected http(s)://host[:port], got {url!r}")
        path = parts.path.rstrip("/")
        for suffix in ("/v1", "/v2"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
        netloc = parts.netloc.rpartition("@")[2]
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.session = session or requests.Session()
        self.session.headers.update(headers or {})
        if parts.username is not None:
            self.session.auth = (
                urllib.parse.unquote(parts.username),
                urllib.parse.unquote(parts.password or ""),
            )

    def close(self) -> None:
        self.session.close()

    def request(
        self, method: str, path: str, *, subject: str = "", **kwargs: Any
    ) -> requests.Response:
        """Send a request; return a response with a status below 300, raise otherwise.

        ``path`` starts with ``/``; ``subject`` names what was asked for in messages of
        error answers that carry no body (HEAD)."""
        url = self.url + path
        try:
            # Glance never redirects; following one would hand X-Auth-Token (which
            # requests keeps across hosts) to whoever the Location names.
            resp = self.session.request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except SourceError as exc:
            raise exc.cause from None
        except requests.exceptions.SSLError as exc:
            raise errors.TlsFailed(
                f"TLS with tank-api at {self.url} failed ({_reason(exc)}); if the server "
                "speaks plain HTTP there, use an http:// URL",
                url=self.url,
            ) from exc
        except requests.Timeout as exc:
            raise errors.ConnectionFailed(
                f"tank-api at {self.url} did not answer in time ({_reason(exc)})", url=self.url
            ) from exc
        except requests.ConnectionError as exc:
            raise errors.ConnectionFailed(
                f"cannot reach tank-api at {self.url}: {_reason(exc)}", url=self.url
            ) from exc
        except requests.RequestException as exc:
            raise errors.ConnectionFailed(
                f"request to tank-api at {self.url} failed: {_reason(exc)}", url=self.url
            ) from exc
        if resp.status_code >= 300:  # a redirect too: see above
            try:
                body = None if method == "HEAD" else resp.json()
            except ValueError:
                body = None
            finally:
                resp.close()
            raise errors.error_for(
                resp.status_code,
                body,
                method=method,
                url=url,
                reason=resp.reason or "",
                subject=subject,
            )
        return resp

    def stream(self, resp: requests.Response) -> Iterator[bytes]:
        """The response body in chunks; a connection cut mid-body is ConnectionFailed."""
        try:
            yield from resp.iter_content(self.chunk_size)
        except requests.RequestException as exc:
            raise errors.ConnectionFailed(
                f"download from tank-api at {self.url} broke off: {_reason(exc)}", url=self.url
            ) from exc

    @staticmethod
    def json(resp: requests.Response, key: str | None, kind: type) -> Any:
        """``resp.json()[key]`` (the whole body when ``key`` is None), of type ``kind``."""
        try:
            value = resp.json()
            if key is not None:
                value = value[key]
        except (ValueError, KeyError, TypeError):
            value = None
        if not isinstance(value, kind):
            what = f"a JSON object with {key!r}" if key else f"a JSON {kind.__name__}"
            raise errors.UnexpectedResponse(
                f"expected {what} from {resp.request.method} {resp.url}",
                status=resp.status_code,
                method=str(resp.request.method),
                url=resp.url,
            )
        return value


def segment(field: str, value: str) -> str:
    """One path segment (a member or tag), percent-encoded."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, f"expected a non-empty string, got {value!r}")
    return urllib.parse.quote(value, safe="")


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, in a few words."""
    text = str(exc)
    for marker, words in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("timed out", "timed out"),
        ("Connection reset", "connection reset by the server"),
        ("IncompleteRead", "the server closed the connection early"),
        ("Connection aborted", "the server closed the connection"),
        ("EOF occurred in violation of protocol", "the server closed the connection"),
        ("WRONG_VERSION_NUMBER", "the server does not speak TLS"),
        ("wrong version number", "the server does not speak TLS"),
        ("CERTIFICATE_VERIFY_FAILED", "its certificate is not trusted"),
    ):
        if marker in text:
            return words
    return text
