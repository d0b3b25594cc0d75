"""One client connection's socket, with the bytes received past the current message."""

from __future__ import annotations

import socket


class ServerStopping(ConnectionError):
    """The server ended the request body because it is shutting down."""


class Channel:
    """Reads come from ``pending`` (bytes that arrived with the head) before the socket.

    Large reads go straight from the socket into the caller's buffer (``recv_into``):
    a body costs one copy in user space, into wherever the caller wants it.
    """

    def __init__(self, sock: socket.socket, address: tuple[str, int], pending: bytes) -> None:
        self.sock = sock
        self.address = address
        self.pending = bytearray(pending)
        #: Requests served on this connection, for keep-alive bookkeeping.
        self.served = 0
        #: The server is stopping and has shut the reading side of this connection.
        self.ended_by_server = False

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
        return self.sock.recv_into(view)

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
            data = self.sock.recv(64 << 10)
            if not data:
                line = bytes(self.pending)
                self.pending.clear()
                return line
            self.pending += data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
