"""``TankServer``: cheroot, with what serving large images needs fixed.

cheroot was chosen by measurement (512 MiB uploads over loopback, 2 cores): it hands
the body to the application as it arrives, chunked bodies included, with flat memory.
waitress spools every body to a temporary file before the application sees it (1.6 s
for what cheroot streams in 0.6 s); gunicorn is a pre-fork server that cannot share
one in-process service between workers; wsgiref never answers ``100-continue``. What
cheroot gets wrong for Tank, and this module fixes:

* ``Expect: 100-continue`` is answered the moment the application first reads the
  body (PEP 3333's second way), not before it has looked at the request: an upload
  refused for its headers (duplicate id, unknown store, 4 GiB over the cap) is
  answered before the client sends a byte of it. cheroot answered before the
  application ran, and matched the header case-sensitively.
* An unread body is never drained into memory. cheroot read whatever the client
  announced (``Content-Length: 4 GiB``) in one ``read`` before sending an early error;
  here the connection is closed instead, with a short lingering drain into a fixed
  buffer so the client still receives the error rather than a reset.
* Bodies are read from the socket into the caller's buffer (cheroot reads through the
  pure-Python ``_pyio`` buffered reader, which allocates per ``recv``), and a chunked
  body is decoded with bounded size lines; a body that ends early raises
  :class:`BodyIncomplete` instead of looking like a shorter body.
* Responses are written with ``sendall`` (cheroot copies each chunk twice, and again
  on every partial send), and ``wsgi.file_wrapper`` bodies go out with ``sendfile``.
* Oversized request headers get ``431`` and every error cheroot answers itself is the
  API's JSON error shape.
* Identity headers spelled with underscores (``X_Tenant_Id``) are dropped: WSGI cannot
  tell them from ``X-Tenant-Id``, so a front proxy that strips the real header would
  otherwise let a client pose as another tenant (nginx and Apache drop them too).
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from typing import IO, Any

from cheroot import errors as cheroot_errors
from cheroot import server as cheroot_server
from cheroot import wsgi as cheroot_wsgi

from tank.api import malloc

log = logging.getLogger(__name__)

MiB = 1 << 20
#: A request that moved at least this much data hands free heap memory back after.
TRIM_AFTER = 16 * MiB
#: An unread request body up to this size is read and dropped to keep the connection.
DRAIN_LIMIT = 64 << 10
#: How long a closing connection keeps reading (and dropping) what the client sends.
LINGER_SECONDS = 2.0
#: Longest chunk-size or trailer line of a chunked body.
MAX_CHUNK_LINE = 4096
#: Most bytes of trailer fields after the last chunk.
MAX_TRAILERS = 16 << 10
#: Identity headers a front proxy sets; their underscore spellings are dropped.
IDENTITY_HEADERS = frozenset(
    {
        b"X-Identity-Status",
        b"X-Tenant-Id",
        b"X-Project-Id",
        b"X-User-Id",
        b"X-Roles",
        b"X-Service-Roles",
        b"X-Auth-Token",
        b"X-Service-Token",
        b"X-Domain-Id",
        b"X-Project-Domain-Id",
        b"X-User-Domain-Id",
    }
)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class BodyIncomplete(ConnectionError):
    """The client closed the connection before the end of the request body."""


class BadChunking(ValueError):
    """A chunked request body does not follow RFC 9112 §7.1."""


# --- reading request bodies --------------------------------------------------------


def _readinto(rfile: Any, view: memoryview) -> int:
    """Fill ``view`` from what cheroot's reader holds, else from the socket directly."""
    buf, pos = getattr(rfile, "_read_buf", None), getattr(rfile, "_read_pos", 0)
    if not isinstance(buf, bytes):  # not the _pyio reader cheroot uses: its own readinto
        return int(rfile.readinto(view) or 0)
    if len(buf) > pos:
        n = min(len(buf) - pos, len(view))
        view[:n] = buf[pos : pos + n]
        rfile._read_pos = pos + n
        return n
    return rfile.raw.readinto(view) or 0


def _fill(rfile: Any, view: memoryview) -> int:
    """Read until ``view`` is full or the peer stops sending; bytes read."""
    filled = 0
    while filled < len(view):
        n = _readinto(rfile, view[filled:])
        if not n:
            break
        filled += n
    return filled


class _Body:
    """Base of the ``wsgi.input`` streams: the deferred ``100 Continue``."""

    def __init__(self, request: TankRequest) -> None:
        self._request = request
        self._reused = bytearray(0)

    def _buffer(self, size: int) -> memoryview:
        """A view of ``size`` bytes to receive into, reused from read to read (up to
        1 MiB): each read then costs one copy, into the bytes it returns."""
        if size > MiB:
            return memoryview(bytearray(size))
        if len(self._reused) < size:
            self._reused = bytearray(MiB if size > 64 << 10 else 64 << 10)
        return memoryview(self._reused)[:size]

    def _started(self) -> None:
        if self._request.continue_pending:
            self._request.send_continue()

    def readline(self, size: int = -1) -> bytes:
        """Bodies here are binary; a line is read as a bounded read (PEP 3333 asks
        for ``readline`` to exist, the API never calls it)."""
        return self.read(MiB if size is None or size < 0 else size)

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(MiB):
            yield chunk

    def read(self, size: int | None = -1) -> bytes:
        raise NotImplementedError


class KnownLengthBody(_Body):
    """A ``Content-Length`` body. ``remaining`` is what cheroot checks before reuse."""

    def __init__(self, request: TankRequest, rfile: Any, length: int) -> None:
        super().__init__(request)
        self._rfile = rfile
        self.remaining = length
        self.length = length

    @property
    def done(self) -> bool:
        return self.remaining == 0

    @property
    def received(self) -> int:
        return self.length - self.remaining

    def read(self, size: int | None = -1) -> bytes:
        if self.remaining == 0:
            return b""
        self._started()
        if size is None or size < 0:  # all of it, but only as fast as it arrives
            return b"".join(iter(self))
        want = min(size, self.remaining)
        if want == 0:
            return b""
        with self._buffer(want) as view:
            got = _fill(self._rfile, view)
            self.remaining -= got
            if got < want:
                raise BodyIncomplete(
                    f"the client sent {self.length - self.remaining} of {self.length} bytes "
                    "and closed the connection"
                )
            return bytes(view)


class ChunkedBody(_Body):
    """A ``Transfer-Encoding: chunked`` body, decoded with bounded lines."""

    def __init__(self, request: TankRequest, rfile: Any) -> None:
        super().__init__(request)
        self._rfile = rfile
        self._left = 0  # bytes of the current chunk still to read
        self._first = True
        self.done = False
        self.received = 0

    def read(self, size: int | None = -1) -> bytes:
        if self.done:
            return b""
        self._started()
        if size is None or size < 0:
            return b"".join(iter(self))
        with self._buffer(size) as view:
            filled = 0
            while filled < size:
                if self._left == 0 and not self._next_chunk():
                    break
                want = min(self._left, size - filled)
                got = _fill(self._rfile, view[filled : filled + want])
                filled += got
                self._left -= got
                self.received += got
                if got < want:
                    raise BodyIncomplete(
                        f"the client closed the connection after {self.received} bytes "
                        "of a chunked body"
                    )
            return bytes(view[:filled])

    def _line(self) -> bytes:
        line = self._rfile.readline(MAX_CHUNK_LINE)
        if not line:
            raise BodyIncomplete(
                f"the client closed the connection after {self.received} bytes of a chunked body"
            )
        if not line.endswith(b"\n"):
            raise BadChunking(f"chunked body: a line is longer than {MAX_CHUNK_LINE} bytes")
        return line

    def _next_chunk(self) -> bool:
        """Start the next chunk; False at the last (zero-size) chunk."""
        if not self._first and self._line().strip():
            raise BadChunking("chunked body: chunk data is not followed by CRLF")
        self._first = False
        text = self._line().split(b";", 1)[0].strip()
        if not text or len(text) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in text):
            raise BadChunking(f"chunked body: bad chunk size {text[:40]!r}")
        self._left = int(text, 16)
        if self._left:
            return True
        trailers = 0
        while line := self._line().strip():
            trailers += len(line)
            if trailers > MAX_TRAILERS:
                raise BadChunking(f"chunked body: trailers longer than {MAX_TRAILERS} bytes")
        self.done = True
        return False


# --- responses ---------------------------------------------------------------------


class FileWrapper:
    """``wsgi.file_wrapper``: a file the server sends with ``sendfile`` from its current
    position, for as many bytes as the response's Content-Length says. Iterated (when
    sendfile cannot be used), it stops at the file's ``length`` attribute if it has one."""

    def __init__(self, filelike: IO[bytes], block_size: int = MiB) -> None:
        self.filelike = filelike
        self.block_size = block_size
        #: Bytes of the file sent (read by the application's access log).
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        left = getattr(self.filelike, "length", None)
        while left is None or left > 0:
            chunk = read(self.block_size if left is None else min(self.block_size, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class TankGateway(cheroot_wsgi.Gateway_10):
    """WSGI 1.0 gateway with ``wsgi.file_wrapper`` served by ``sendfile``."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]  # stub says None
        env = super().get_environ()
        env["wsgi.file_wrapper"] = FileWrapper
        return env

    def respond(self) -> None:
        response = self.req.server.wsgi_app(self.env, self.start_response)
        moved = 0
        try:
            if self.req.method == b"HEAD":
                return  # headers only, whatever the application returned (RFC 9110 §9.3.2)
            if isinstance(response, FileWrapper) and self._sendfile(response):
                moved = response.sent
                return
            for chunk in response:
                if chunk:
                    if not isinstance(chunk, bytes):
                        raise ValueError("WSGI applications must yield bytes")
                    moved += self._write_within_length(chunk)
        finally:
            self.req.ensure_headers_sent()
            close = getattr(response, "close", None)
            if close is not None:
                close()
            received = getattr(self.req.rfile, "received", 0)
            if moved >= TRIM_AFTER or received >= TRIM_AFTER:
                malloc.trim()

    def _write_within_length(self, chunk: bytes) -> int:
        """Write ``chunk``, but never past the Content-Length sent: a longer body would
        be read by the client as the start of the next response. Bytes written."""
        left = self.remaining_bytes_out
        if left is not None and len(chunk) > left:
            log.error("the response body is longer than its Content-Length; cut, connection closed")
            self.req.close_connection = True
            chunk = chunk[:left]
            if not chunk:
                return 0
        self.write(chunk)
        if left is not None:
            self.remaining_bytes_out = left - len(chunk)
        return len(chunk)

    def _sendfile(self, wrapper: FileWrapper) -> bool:
        """Send the file with ``sendfile``; False if this response cannot use it."""
        req = self.req
        count = self.remaining_bytes_out
        if count is None or req.server.ssl_adapter is not None or req.method == b"HEAD":
            return False
        try:
            fd = wrapper.filelike.fileno()
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        except (AttributeError, OSError, ValueError):
            return False
        req.ensure_headers_sent()
        if count:
            sent = req.conn.socket.sendfile(wrapper.filelike, offset, count)
            wrapper.sent += sent
            self.remaining_bytes_out = count - sent
            if sent < count:
                log.error("sent %d of %d bytes: the file got shorter; closing", sent, count)
                req.close_connection = True
        return True


# --- requests ----------------------------------------------------------------------


class TankHeaderReader(cheroot_server.HeaderReader):
    def _allow_header(self, key_name: bytes) -> bool:
        if b"_" in key_name and key_name.replace(b"_", b"-").title() in IDENTITY_HEADERS:
            return False
        return bool(super()._allow_header(key_name))  # type: ignore[misc]  # not in the stub


class TankRequest(cheroot_server.HTTPRequest):
    """One request/response on a connection; see the module docstring for changes."""

    header_reader: Any = TankHeaderReader()
    continue_pending = False

    def parse_request(self) -> None:
        self.rfile = cheroot_server.SizeCheckWrapper(
            self.conn.rfile, self.server.max_request_header_size
        )
        try:
            if not self.read_request_line():
                return
        except cheroot_errors.MaxSizeExceeded:
            self.simple_response("414 URI Too Long", "the request line is too long")
            return
        try:
            if not self.read_request_headers():
                return
        except cheroot_errors.MaxSizeExceeded:
            limit = self.server.max_request_header_size
            self.simple_response(
                "431 Request Header Fields Too Large",
                f"the request headers are larger than {limit} bytes",
            )
            return
        self.ready = True

    def read_request_headers(self) -> bool:
        # Take Expect out of cheroot's sight so it does not answer 100 Continue itself.
        self.header_reader = _ExpectHidingReader(self.header_reader)
        if not super().read_request_headers():
            return False
        length = self.inheaders.get(b"Content-Length")
        if length is not None and not (length.isdigit() and len(length) <= 19):
            # cheroot reads it with int(): "+10", "1_0" and "-1" would pass and misframe
            self.simple_response("400 Bad Request", "Content-Length must be a number of bytes")
            return False
        if b"Transfer-Encoding" in self.inheaders and not self.chunked_read:
            # cheroot ignores Transfer-Encoding from HTTP/1.0 clients: the body's end is
            # unknowable, and its bytes would be read as the next request (RFC 9112 §6.1)
            self.simple_response(
                "400 Bad Request", "Transfer-Encoding is not allowed in an HTTP/1.0 request"
            )
            return False
        if self.chunked_read and b"Content-Length" in self.inheaders:
            self.close_connection = True  # RFC 9112 §6.1: framing is ambiguous; no reuse
        expect = self.inheaders.pop(_HIDDEN_EXPECT, None)
        if expect is not None:
            self.inheaders[b"Expect"] = expect
            self.continue_pending = (
                expect.strip().lower() == b"100-continue" and self.response_protocol == "HTTP/1.1"
            )
        return True

    def send_continue(self) -> None:
        self.continue_pending = False
        if not self.sent_headers:
            self.conn.socket.sendall(_CONTINUE)

    def respond(self) -> None:
        if self.chunked_read:
            self.rfile = ChunkedBody(self, self.conn.rfile)
        else:
            length = int(self.inheaders.get(b"Content-Length", 0))
            self.rfile = KnownLengthBody(self, self.conn.rfile, length)
        self.server.gateway(self).respond()
        if self.ready:
            self.ensure_headers_sent()
        if self.chunked_write:
            self.conn.socket.sendall(b"0\r\n\r\n")

    def send_headers(self) -> None:
        body = self.rfile
        unread = not getattr(body, "done", True)
        if unread and (
            self.continue_pending
            or isinstance(body, ChunkedBody)
            or getattr(body, "remaining", 0) > DRAIN_LIMIT
        ):
            # Reading the rest could mean gigabytes (or waiting for a body the client
            # holds back until 100 Continue): close, and linger so the answer arrives.
            self.close_connection = True
            self.conn.linger_on_close = True
        elif unread:
            try:  # a small rest: read and drop it here, so the connection can be reused
                body.read(getattr(body, "remaining", 0))
            except (OSError, ValueError):
                self.close_connection = True
        self.continue_pending = False
        super().send_headers()

    def write(self, chunk: bytes) -> None:
        sendall = self.conn.socket.sendall
        if self.chunked_write:
            sendall(b"%x\r\n" % len(chunk))
            sendall(chunk)
            sendall(b"\r\n")
        else:
            sendall(chunk)

    def simple_response(self, status: str | bytes, msg: str | bytes = "") -> None:
        """cheroot's own answers (bad request line, oversized headers, timeouts), as the
        API's JSON errors. The connection is closed after each."""
        status = status.decode("latin-1") if isinstance(status, bytes) else str(status)
        code = int(status[:3])
        message = msg.decode("latin-1") if isinstance(msg, bytes) else str(msg)
        title = _REASONS.get(code, status[4:].strip() or "Error")
        body = json.dumps(
            {"error": {"code": code, "title": title, "message": message or title}}
        ).encode()
        self.close_connection = True
        head = (
            f"{self.server.protocol} {code} {title}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode("latin-1")
        try:
            self.conn.socket.sendall(head + body)
        except OSError as exc:
            if exc.args and exc.args[0] not in cheroot_errors.socket_errors_to_ignore:
                raise


_HIDDEN_EXPECT = b"\x00expect"


class _ExpectHidingReader:
    def __init__(self, inner: cheroot_server.HeaderReader) -> None:
        self.inner = inner

    def __call__(self, rfile: Any, hdict: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
        strict = self.inner(rfile, _FramingHeaders(hdict or {}))
        if hdict is None:
            hdict = {}
        hdict.update(strict)  # cheroot keeps using the dict it passed in
        if b"Expect" in hdict:
            hdict[_HIDDEN_EXPECT] = hdict.pop(b"Expect")
        return hdict


class _FramingHeaders(dict[bytes, bytes]):
    """Request headers that refuse a second, different Content-Length (the reader
    would keep the last one; RFC 9112 §6.3 says the message cannot be framed)."""

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if key == b"Content-Length" and self.get(key, value) != value:
            raise ValueError("conflicting Content-Length headers")
        super().__setitem__(key, value)


class TankConnection(cheroot_server.HTTPConnection):
    RequestHandlerClass = TankRequest
    linger_on_close = False

    def close(self) -> None:
        if self.linger_on_close:
            self.linger_on_close = False
            _linger(self.socket)
        super().close()


def _linger(sock: socket.socket) -> None:
    """Half-close, then read and drop what the client still sends for a moment, so the
    answer it is owed is not destroyed by a reset (what nginx calls lingering close)."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        buf = bytearray(64 << 10)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv_into(buf):
                return
    except OSError:
        return


class TankServer(cheroot_wsgi.Server):
    """A threaded cheroot WSGI server with :class:`TankRequest` and :class:`TankGateway`."""

    ConnectionClass = TankConnection

    def __init__(self, bind_addr: tuple[str, int], wsgi_app: Any, **kwargs: Any) -> None:
        max_header_size = kwargs.pop("max_request_header_size", 64 << 10)
        super().__init__(bind_addr, wsgi_app, **kwargs)
        self.gateway = TankGateway
        self.max_request_header_size = max_header_size
