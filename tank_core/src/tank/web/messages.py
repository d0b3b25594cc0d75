"""Requests and responses over WSGI, as the handlers of both APIs see them."""

from __future__ import annotations

import io
import json
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from tank import errors
from tank.web.headers import from_wire
from tank.web.server.bodies import BodyIncomplete
from tank.web.server.channel import ServerStopping
from tank.web.server.pace import TooSlow
from tank.web.server.responses import error_document, reason

#: Bytes read from the client per chunk of an upload.
UPLOAD_CHUNK = 1 << 20
#: Largest JSON request body accepted.
MAX_JSON = 1 << 20


class ClientGone(errors.Invalid):
    """The client closed the connection before sending the whole body."""


class Request:
    """One WSGI request; reads nothing from the body until asked."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"]  # case-sensitive (RFC 9110 §9.1)
        self.path: str = from_wire(environ.get("PATH_INFO", "") or "/")
        self.headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                self.headers[key[5:].replace("_", "-").lower()] = from_wire(value)
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                self.headers[key.replace("_", "-").lower()] = environ[key]
        #: Every query parameter in order (repeated ones too); ``query`` keeps the last.
        self.query_items: list[tuple[str, str]] = urllib.parse.parse_qsl(
            environ.get("QUERY_STRING", ""), keep_blank_values=True
        )
        self.query: dict[str, str] = dict(self.query_items)

    @property
    def base_url(self) -> str:
        """``scheme://host`` as the client addressed this server."""
        env = self.environ
        host = self.headers.get("host") or f"{env.get('SERVER_NAME')}:{env.get('SERVER_PORT')}"
        return f"{env.get('wsgi.url_scheme', 'http')}://{host}"

    @property
    def content_length(self) -> int | None:
        text = self.headers.get("content-length")
        if text is None or text == "":
            return None
        if not (text.isascii() and text.isdigit()):
            raise errors.Invalid(f"Content-Length must be a non-negative integer, got {text!r}")
        return int(text)

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def has_body(self) -> bool:
        return self.chunked or (self.content_length or 0) > 0

    def body(self) -> Body:
        """The body as a stream (``read``, ``readinto``, iteration in 1 MiB chunks);
        raises ClientGone if the client stops early."""
        stream = self.environ["wsgi.input"]
        return Body(stream, None if self.chunked else self.content_length)

    def json(self) -> Any:
        """The body as JSON (None without a body), at most :data:`MAX_JSON` bytes."""
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
        try:
            return json.loads(b"".join(pieces))
        except RecursionError:  # json's C scanner on "[[[[..." nested a million deep
            raise errors.Invalid("request body is not valid JSON: nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.Invalid(f"request body is not valid JSON: {exc}") from None


class Body:
    """A request body: exactly ``expected`` bytes (None: until the stream ends).

    ``readinto`` fills the caller's buffer straight from the socket when the server's
    ``wsgi.input`` can (Tank's can), so an upload is received without a copy per chunk.
    """

    def __init__(self, stream: Any, expected: int | None) -> None:
        self._stream = stream
        self._readinto = getattr(stream, "readinto", None)
        self.expected = expected
        self.received = 0

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Fill ``buffer`` (less only at the end of the body); bytes read."""
        view = memoryview(buffer).cast("B")
        if self.expected is not None:
            view = view[: self.expected - self.received]
        if not len(view):
            return 0
        if self._readinto is None:
            data = self._take(self._stream.read, len(view))
            view[: len(data)] = data
            return len(data)
        return self._count(self._call(self._readinto, view))

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left if negative); b"" at the end."""
        if size is None or size < 0:
            return b"".join(self)
        if self.expected is not None:
            size = min(size, self.expected - self.received)
        return self._take(self._stream.read, size) if size else b""

    def _take(self, read: Any, size: int) -> bytes:
        data = self._call(read, size)
        self._count(len(data))
        return data  # type: ignore[no-any-return]

    def _call(self, method: Any, arg: Any) -> Any:
        try:
            return method(arg)
        except ServerStopping as exc:
            raise errors.ShuttingDown(f"{exc}; try again") from exc
        except TooSlow as exc:
            raise errors.ClientTooSlow(
                f"the upload stopped after {self.received} bytes: {exc}"
            ) from exc
        except BodyIncomplete as exc:  # its message counts what arrived, this read too
            raise ClientGone(str(exc)) from exc
        except (OSError, ValueError) as exc:
            raise ClientGone(f"the upload stopped after {self.received} bytes: {exc}") from exc

    def _count(self, got: int) -> int:
        self.received += got
        if not got and self.expected is not None and self.received < self.expected:
            raise ClientGone(
                f"the client sent {self.received} of {self.expected} bytes and went away"
            )
        return got

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(UPLOAD_CHUNK):
            yield chunk


class FileBody(io.FileIO):
    """A response body that is ``length`` bytes of a local file from its current
    position: the server sends it with ``sendfile`` through ``wsgi.file_wrapper``, or
    it is read 1 MiB at a time where the server has none."""

    def __init__(self, fd: int, length: int) -> None:
        super().__init__(fd, "rb", closefd=True)
        self.length = length
        #: Called once, when the server closes the body (the access-log line).
        self.on_close: Callable[[], None] | None = None
        #: Bytes sent (counted when iterated; the application sets it from the server's
        #: ``wsgi.file_wrapper`` when sent with ``sendfile``), final at close.
        self.sent = 0
        #: Called once after ``on_close`` with :attr:`sent` (a download's ``image.send``).
        self.on_sent: Callable[[int], None] | None = None

    def __iter__(self) -> Iterator[bytes]:  # blocks, not lines
        left = self.length
        while left > 0:
            chunk = self.read(min(UPLOAD_CHUNK, left))
            if not chunk:
                raise OSError(f"the file ended {left} bytes early")
            left -= len(chunk)
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            super().close()
        finally:
            on_close, self.on_close = self.on_close, None
            try:
                if on_close is not None:
                    on_close()
            finally:
                on_sent, self.on_sent = self.on_sent, None
                if on_sent is not None:
                    on_sent(self.sent)


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
        """The API's error shape: ``{"error": {"code", "title", "message"}}``."""
        return cls.json(error_document(status, message), status)

    @property
    def status_line(self) -> str:
        return f"{self.status} {reason(self.status)}"

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()
