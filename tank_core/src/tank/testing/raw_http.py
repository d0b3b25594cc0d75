"""One HTTP/1.1 connection driven by hand, for tests of what a server does on the wire
where a client library would hide it (a head sent in pieces, a body cut short, an answer
the server sends before the body, a connection it closes)."""

from __future__ import annotations

import socket


class RawHttp:
    """A TCP connection to ``127.0.0.1:port``; answers are read as they come."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self, timeout: float = 5.0) -> tuple[int, dict[str, str]]:
        """The next status line and headers (a 100 Continue counts as an answer)."""
        self.sock.settimeout(timeout)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before an answer; got {self.buf!r}")
            self.buf += chunk
        text, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, *lines = text.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        return int(status.split()[1]), headers

    def answer(self, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and the body its Content-Length announces (what arrived of it)."""
        status, headers = self.head(timeout)
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection (dropping whatever else it sends)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()
