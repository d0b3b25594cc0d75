"""One client connection's socket, with the bytes received past the current message."""

from __future__ import annotations

import socket


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
