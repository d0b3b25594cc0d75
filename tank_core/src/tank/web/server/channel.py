"""One client connection's socket, with the bytes received past the current message."""

from __future__ import annotations

import os
import select
import socket
import time
from typing import Any

from tank.web.server.pace import Pace


class ServerStopping(ConnectionError):
    """The server ended the request body because it is shutting down."""


class Channel:
    """Reads come from ``pending`` (bytes that arrived with the head) before the socket.

    Large reads go straight from the socket into the caller's buffer (``recv_into``):
    a body costs one copy in user space, into wherever the caller wants it.
    """

    def __init__(
        self, sock: socket.socket, address: tuple[str, int], pending: bytes, timeout: float = 60.0
    ) -> None:
        self.sock = sock
        #: The socket's timeout between transfers.
        self.timeout = timeout
        self.address = address
        self.pending = bytearray(pending)
        #: Requests served on this connection, for keep-alive bookkeeping.
        self.served = 0
        #: The server is stopping and has shut the reading side of this connection.
        self.ended_by_server = False
        #: The speed floor of the current transfer (None: only the socket's timeout).
        self.pace: Pace | None = None

    # --- paced socket calls ----------------------------------------------------------

    def _recv_into(self, view: memoryview) -> int:
        pace = self.pace
        if pace is None:
            return self.sock.recv_into(view)
        while True:
            self.sock.settimeout(pace.timeout())
            started = time.monotonic()
            try:
                got = self.sock.recv_into(view)
            except TimeoutError:
                pace.moved(0, time.monotonic() - started)
                continue
            pace.moved(got, time.monotonic() - started)
            return got

    def send_all(self, data: Any) -> None:
        """``sendall``, paced."""
        pace = self.pace
        if pace is None:
            self.sock.sendall(data)
            return
        view = memoryview(data).cast("B")
        while len(view):
            self.sock.settimeout(pace.timeout())
            started = time.monotonic()
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                sent = 0
            pace.moved(sent, time.monotonic() - started)
            view = view[sent:]

    def send_file(self, fd: int, offset: int, count: int) -> int:
        """``count`` bytes of ``fd`` from ``offset`` with ``sendfile``, paced; bytes sent
        (fewer when the file ends early)."""
        sock, pace = self.sock, self.pace
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        sock.settimeout(0.0)
        sent = 0
        try:
            while sent < count:
                try:
                    n = os.sendfile(sock.fileno(), fd, offset + sent, count - sent)
                except BlockingIOError:
                    wait = pace.timeout() if pace is not None else self.timeout
                    started = time.monotonic()
                    ready = poller.poll(wait * 1000)
                    if pace is not None:
                        pace.moved(0, time.monotonic() - started)
                    elif not ready:
                        raise TimeoutError("sending the file timed out") from None
                    continue
                if n == 0:
                    break
                sent += n
                if pace is not None:
                    pace.moved(n, 0.0)
        finally:
            sock.settimeout(self.timeout)
        return sent

    def end_reading(self) -> None:
        """Shutting down: make a blocked body read end (the answer can still be sent)."""
        self.ended_by_server = True
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def check_stopping(self, received: int) -> None:
        """Raise ServerStopping if a short read was the server's doing, not the client's."""
        if self.ended_by_server:
            raise ServerStopping(
                f"the server is shutting down and ended the request body after {received} bytes"
            )

    def readinto(self, view: memoryview) -> int:
        """Up to ``len(view)`` bytes; 0 at the end of the stream."""
        if self.pending:
            n = min(len(self.pending), len(view))
            view[:n] = self.pending[:n]
            del self.pending[:n]
            return n
        return self._recv_into(view)

    def fill(self, view: memoryview) -> int:
        """Read until ``view`` is full or the peer stops sending; bytes read."""
        filled = 0
        size = len(view)
        while filled < size:
            n = self.readinto(view[filled:])
            if not n:
                break
            filled += n
        return filled

    def readline(self, limit: int) -> bytes:
        """One line with its ``\\n``; shorter than asked (no ``\\n``) when the peer
        closed, or ``limit`` bytes without ``\\n`` when the line is too long."""
        start = 0
        while True:
            end = self.pending.find(b"\n", start, limit)
            if end >= 0:
                line = bytes(self.pending[: end + 1])
                del self.pending[: end + 1]
                return line
            if len(self.pending) >= limit:
                return bytes(self.pending[:limit])
            start = len(self.pending)
            scratch = bytearray(64 << 10)
            with memoryview(scratch) as view:
                got = self._recv_into(view)
                if not got:
                    line = bytes(self.pending)
                    self.pending.clear()
                    return line
                self.pending += view[:got]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
