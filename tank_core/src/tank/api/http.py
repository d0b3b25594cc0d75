"""The small slice of HTTP the API needs on top of WSGI: requests, responses, bodies.

Header values reach WSGI as Latin-1 text (PEP 3333); Glance clients send UTF-8, so
values are re-decoded here and encoded back on the way out.
"""

from __future__ import annotations

import io
import json
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from tank import errors

#: Bytes read from the client per chunk of an upload.
UPLOAD_CHUNK = 1 << 20
#: Largest JSON request body accepted (member lists).
MAX_JSON = 1 << 20

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    206: "Partial Content",
    300: "Multiple Choices",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Request Entity Too Large",
    416: "Range Not Satisfiable",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ClientGone(errors.Invalid):
    """The client closed the connection before sending the whole body."""


def from_wire(value: str) -> str:
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def unquote_segment(field: str, segment: str) -> str:
    """A path segment percent-decoded once; ValidationError naming ``field`` if not UTF-8."""
    try:
        return urllib.parse.unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise errors.ValidationError(field, "not UTF-8 once percent-decoded") from None


def route_path(environ: dict[str, Any]) -> tuple[str, bool]:
    """The request path, and whether its segments are still percent-encoded.

    Servers decode ``PATH_INFO`` before the app sees it (cheroot all but ``%2F``), so a
    member named ``a%41`` or ``x/y`` would be misread. The raw ``REQUEST_URI`` (cheroot,
    uWSGI) or ``RAW_URI`` (gunicorn) is routed instead when present, and each captured
    segment is decoded exactly once.
    """
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    script = environ.get("SCRIPT_NAME", "")
    if raw:
        path = from_wire(urllib.parse.urlsplit(raw).path)
        prefix = urllib.parse.quote(script)
        if path.startswith(prefix):
            return path[len(prefix) :] or "/", True
    return from_wire(environ.get("PATH_INFO", "") or "/"), False


def to_wire(value: str) -> str:
    """A header value as WSGI wants it: UTF-8 bytes as Latin-1 text, one line."""
    value = value.replace("\r", " ").replace("\n", " ")
    return value.encode("utf-8").decode("latin-1")


class Request:
    """One WSGI request; reads nothing from the body until asked."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"].upper()
        self.path: str = from_wire(environ.get("PATH_INFO", "") or "/")
        self.headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                self.headers[key[5:].replace("_", "-").lower()] = from_wire(value)
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                self.headers[key.replace("_", "-").lower()] = environ[key]
        self.query: dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(
            environ.get("QUERY_STRING", ""), keep_blank_values=True
        ):
            self.query[key] = value

    @property
    def content_length(self) -> int | None:
        text = self.headers.get("content-length")
        if text is None or text == "":
            return None
        if not text.isdigit():
            raise errors.Invalid(f"Content-Length must be a non-negative integer, got {text!r}")
        return int(text)

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def has_body(self) -> bool:
        return self.chunked or (self.content_length or 0) > 0

    def body(self) -> Iterator[bytes]:
        """The body in chunks; raises ClientGone if the client stops early.

        Plain ``read`` calls: how fast they are is the server's business (tank-api's
        reads from the socket into a reused buffer, see :mod:`tank.api.server`)."""
        stream = self.environ["wsgi.input"]
        expected = None if self.chunked else self.content_length
        return self._chunks(stream, expected)

    @staticmethod
    def _chunks(stream: Any, expected: int | None) -> Iterator[bytes]:
        received = 0
        while expected is None or received < expected:
            want = UPLOAD_CHUNK if expected is None else min(UPLOAD_CHUNK, expected - received)
            try:
                chunk = stream.read(want)
            except (OSError, ValueError) as exc:
                raise ClientGone(f"the upload stopped after {received} bytes: {exc}") from exc
            if not chunk:
                if expected is not None:
                    raise ClientGone(
                        f"the client sent {received} of {expected} bytes and went away"
                    )
                return
            received += len(chunk)
            yield chunk

    def json(self) -> Any:
        length = self.content_length
        if not self.has_body():
            return None
        if length is not None and length > MAX_JSON:
            raise errors.Invalid(f"JSON body larger than {MAX_JSON} bytes")
        pieces, size = [], 0
        for chunk in self.body():  # a chunked body announces no length: count as it comes
            size += len(chunk)
            if size > MAX_JSON:
                raise errors.Invalid(f"JSON body larger than {MAX_JSON} bytes")
            pieces.append(chunk)
        data = b"".join(pieces)
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise errors.Invalid(f"request body is not valid JSON: {exc}") from None


class FileBody(io.FileIO):
    """A response body that is ``length`` bytes of a local file from its current
    position: the server sends it with ``sendfile`` through ``wsgi.file_wrapper``, or
    it is read 1 MiB at a time where the server has none."""

    def __init__(self, fd: int, length: int) -> None:
        super().__init__(fd, "rb", closefd=True)
        self.length = length
        #: Called once, when the server closes the body (the access-log line).
        self.on_close: Callable[[], None] | None = None

    def __iter__(self) -> Iterator[bytes]:  # blocks, not lines
        left = self.length
        while left > 0:
            chunk = self.read(min(UPLOAD_CHUNK, left))
            if not chunk:
                raise OSError(f"the file ended {left} bytes early")
            left -= len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            super().close()
        finally:
            on_close, self.on_close = self.on_close, None
            if on_close is not None:
                on_close()


@attrs.define
class Response:
    status: int = 200
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    body: Iterable[bytes] = ()
    #: Bytes of body sent so far, for the access log.
    sent: int = 0

    @classmethod
    def json(
        cls, data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        payload = json.dumps(data, separators=(",", ":")).encode()
        return cls(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                *(headers or []),
            ],
            [payload],
        )

    @classmethod
    def empty(cls, status: int = 204, headers: list[tuple[str, str]] | None = None) -> Response:
        length = [] if status in (204, 304) else [("Content-Length", "0")]
        return cls(status, [*length, *(headers or [])], [])

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        title = STATUS_TEXT.get(status, "Error")
        return cls.json({"error": {"code": status, "title": title, "message": message}}, status)

    @property
    def status_line(self) -> str:
        return f"{self.status} {STATUS_TEXT.get(self.status, 'Unknown')}"
