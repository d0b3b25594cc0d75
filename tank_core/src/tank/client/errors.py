"""Errors of the HTTP client: the core error tree, plus what the HTTP exchange said.

Every error a tank-api answers with is raised as a subclass of the matching
:mod:`tank.errors` class (404 → :class:`NotFound` is a :class:`tank.errors.NotFound`),
so code written against the in-process :class:`~tank.service.ImageService` catches the
same exceptions when it talks to a remote Tank. ``except tank.client.HTTPError`` catches
every error answer; :class:`ConnectionFailed` means no answer came at all.
"""

from __future__ import annotations

from typing import Any

from tank import errors


class HTTPError(errors.TankError):
    """tank-api answered with an error status. ``status`` and ``title`` are the server's."""

    def __init__(
        self, message: str, *, status: int, title: str = "", method: str = "", url: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.method = method
        self.url = url


class BadRequest(HTTPError, errors.Invalid):
    """400: a bad value, unknown store or filter, size or checksum mismatch."""


class LengthRequired(HTTPError, errors.Invalid):
    """411: the server needs a Content-Length for this request."""


class RangeNotSatisfiable(HTTPError, errors.Invalid):
    """416: the requested byte range lies outside the image."""


class Unauthorized(HTTPError, errors.Forbidden):
    """401: the server wants an authenticated caller (missing or unconfirmed identity)."""


class Forbidden(HTTPError, errors.Forbidden):
    """403: not allowed (protected image, another tenant's image, read-only store)."""


class NotFound(HTTPError, errors.NotFound):
    """404: no such image or member, or one the caller may not see."""


class Conflict(HTTPError, errors.Conflict):
    """409: the id exists, or the image is not in a state that allows this."""


class TooLarge(HTTPError, errors.ImageTooLarge):
    """413: over the configured size cap, or the store is full."""


class ServiceUnavailable(HTTPError, errors.StoreUnavailable):
    """503: tank-api could not reach its store or registry."""


class ServerError(HTTPError, errors.StoreError):
    """Any other 5xx (a bug or a failure the server could not classify)."""


class UnsupportedMediaType(HTTPError, errors.Invalid):
    """415: the server does not take this body type (e.g. an unknown JSON patch type)."""


class NoData(HTTPError, errors.NotFound):
    """204 to a v2 download: the image exists but has no data (queued, or staged only)."""


class UnexpectedResponse(HTTPError):
    """A status or body the Glance API does not define for this call."""


class Unsupported(errors.Invalid):
    """The call does not exist in the API version the client speaks (nothing was sent)."""

    def __init__(self, what: str, *, api: str, hint: str = "") -> None:
        needs = "v2" if api == "v1" else "v1"
        extra = f" ({hint})" if hint else ""
        super().__init__(f"{what}: not in Images API {api}, only in {needs}{extra}")
        self.api = api


class ImportFailed(errors.TankError):
    """A v2 import (glance-direct, web-download, copy-image) ended without success:
    ``stores`` are those the server lists in ``os_glance_failed_import``."""

    def __init__(self, message: str, *, image_id: str, stores: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.image_id = image_id
        self.stores = stores


class ConnectionFailed(errors.StoreUnavailable):
    """No answer: connection refused, DNS failure, timeout, or a connection cut mid-body."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class TlsFailed(ConnectionFailed):
    """The TLS handshake failed: often an https:// URL for a plain-HTTP server."""


BY_STATUS: dict[int, type[HTTPError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    411: LengthRequired,
    413: TooLarge,
    415: UnsupportedMediaType,
    416: RangeNotSatisfiable,
    503: ServiceUnavailable,
}


def error_for(
    status: int, body: Any, *, method: str, url: str, reason: str = "", subject: str = ""
) -> HTTPError:
    """The exception for an error answer; ``body`` is the parsed JSON (or None).

    tank-api answers ``{"error": {"code", "title", "message"}}``; Glance's v2 JSON errors
    put ``title`` and ``message`` at the top. Without either (HEAD has no body; a proxy's
    HTML page) the message is the status line and what was asked for (``subject``, e.g.
    ``image <id>``), so it is never empty.
    """
    title, message = reason, ""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) and isinstance(body, dict) and "message" in body:
        err = body
    if isinstance(err, dict):
        title = str(err.get("title") or title)
        message = str(err.get("message") or "")
    if not message and status == 404 and subject:
        message = f"{subject} not found"  # the server's own wording where it has a body
    if not message:
        message = f"{subject or method + ' ' + url}: {status} {title}".strip()
    cls = BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else UnexpectedResponse
    return cls(message, status=status, title=title, method=method, url=url)
