"""Sending a response: status line and headers, body framing, ``sendfile``.

The head goes out with the first body bytes (or at the end), framed by the
application's Content-Length when it gave one (and never past it: longer bodies are
cut and the connection closed, so the extra bytes cannot pass for the next response),
chunked otherwise on HTTP/1.1, and by closing the connection on HTTP/1.0. HEAD and
1xx/204/304 answers never carry a body, whatever the application returned.
"""

from __future__ import annotations

import email.utils
import functools
import http
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import IO, Any

from tank.web.server.channel import Channel

log = logging.getLogger(__name__)

MiB = 1 << 20
#: Body pieces up to this size are joined with their framing (and the head) into one send.
COALESCE = 64 << 10
_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header's value, formatted once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


def reason(status: int) -> str:
    """The reason phrase of ``status`` (``404`` → ``Not Found``), from the stdlib's table."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def error_document(status: int, message: str) -> dict[str, Any]:
    """The API's error shape: ``{"error": {"code", "title", "message"}}``."""
    return {"error": {"code": status, "title": reason(status), "message": message}}


def send_error(
    sock: socket.socket, version: str, status: int, message: str, retry_after: int | None = None
) -> None:
    """Answer with a JSON error in the API's shape, best effort, for what the server
    answers itself (malformed heads, timeouts, a failed application) before or instead of
    any application response. The connection is to be closed after. ``retry_after``:
    seconds, sent as ``Retry-After``."""
    try:
        answer = _error_message(version, status, message, http_date(), retry_after)
        # a request id of its own, as every answer of the applications has
        request_id = f"\r\nX-Openstack-Request-Id: req-{uuid.uuid4()}\r\nDate:".encode()
        sock.send(answer.replace(b"\r\nDate:", request_id, 1))
    except OSError:
        pass


@functools.lru_cache(maxsize=64)
def _error_message(
    version: str, status: int, message: str, date: str, retry_after: int | None
) -> bytes:
    """The bytes of an error answer; the same answer to many connections at once (a
    deadline passing for a thousand slow heads) is built once (a second)."""
    body = json.dumps(error_document(status, message), separators=(",", ":")).encode()
    head = (
        f"{version} {status} {reason(status)}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Date: {date}\r\n"
        + ("" if retry_after is None else f"Retry-After: {retry_after}\r\n")
        + "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


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


class ResponseWriter:
    """The response half of one exchange."""

    def __init__(self, channel: Channel, version: str, method: str, server_name: str) -> None:
        self.channel = channel
        self.version = version
        self.head_only = method == "HEAD"
        self.server_name = server_name
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.chunked = False
        #: Bytes the Content-Length still allows, or None when the body is not counted.
        self.remaining: int | None = None
        self.close = False
        #: The application's body was longer than its Content-Length.
        self.cut = False
        #: Body bytes written.
        self.sent = 0

    def start(self, status_line: str, headers: list[tuple[str, str]]) -> None:
        try:
            self.status = int(status_line[:3])
        except ValueError:
            raise ValueError(f"bad WSGI status {status_line[:40]!r}") from None
        for name, value in headers:
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                raise ValueError("header names and values may not contain CR or LF")
        self.status_line = status_line
        self.headers = headers

    def send_head(self) -> None:
        """Send status line and headers, if not sent yet."""
        if not self.headers_sent:
            self.channel.send_all(self._head())

    def _head(self) -> bytes:
        """Decide the framing; the status line and headers to send (once)."""
        if not self.status:
            raise RuntimeError("the application sent a body before start_response")
        self.headers_sent = True
        names = {name.lower() for name, _ in self.headers}
        bodiless = self.head_only or self.status < 200 or self.status in (204, 304)
        extra: list[tuple[str, str]] = []
        if "content-length" in names:
            length = next(v for n, v in self.headers if n.lower() == "content-length")
            self.remaining = int(length) if length.strip().isdigit() else None
        elif not bodiless:
            if self.version == "HTTP/1.1":
                self.chunked = True
                extra.append(("Transfer-Encoding", "chunked"))
            else:
                self.close = True
        if bodiless:
            self.remaining = 0
        if "connection" not in names:
            if self.close:
                extra.append(("Connection", "close"))
            elif self.version == "HTTP/1.0":  # kept open only because the client asked
                extra.append(("Connection", "keep-alive"))
        if "date" not in names:
            extra.append(("Date", http_date()))
        if "server" not in names:
            extra.append(("Server", self.server_name))
        lines = [f"{self.version} {self.status_line}"]
        lines += [f"{name}: {value}" for name, value in (*self.headers, *extra)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def write(self, chunk: bytes) -> None:
        """Send body bytes, never past the Content-Length (then: cut, and close).
        The first small piece goes out in one packet with the head."""
        head = b"" if self.headers_sent else self._head()
        if self.head_only or not chunk:
            if head:
                self.channel.send_all(head)
            return
        left = self.remaining
        if left is not None and len(chunk) > left:
            if not self.cut:
                log.error("the response body is longer than its Content-Length; cut, closing")
            self.cut = self.close = True
            chunk = chunk[:left]
        if self.chunked:
            pieces = [head, b"%x\r\n" % len(chunk), chunk, b"\r\n"] if chunk else [head]
        else:
            pieces = [head, chunk]
        if len(chunk) <= COALESCE:
            self.channel.send_all(b"".join(pieces))
        else:
            for piece in pieces:
                if piece:
                    self.channel.send_all(piece)
        self.sent += len(chunk)
        if left is not None:
            self.remaining = left - len(chunk)

    def sendfile(self, wrapper: FileWrapper) -> bool:
        """Send a file body with ``sendfile``; False if this response cannot."""
        self.send_head()
        count = self.remaining
        if self.head_only:
            return True
        if count is None or self.chunked:
            return False
        try:
            fd = wrapper.filelike.fileno()
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        except (AttributeError, OSError, ValueError):
            return False
        if count:
            sent = self.channel.send_file(fd, offset, count)
            wrapper.sent += sent
            self.sent += sent
            self.remaining = count - sent
            if sent < count:
                log.error("sent %d of %d bytes: the file got shorter; closing", sent, count)
                self.close = True
        return True

    def finish(self) -> None:
        """End the message: the head if nothing was sent, the last chunk if chunked."""
        self.send_head()
        if self.chunked:
            self.channel.send_all(b"0\r\n\r\n")
        if self.remaining:  # the application sent less than it announced
            log.error("the response body is %d bytes short of its Content-Length", self.remaining)
            self.close = True
