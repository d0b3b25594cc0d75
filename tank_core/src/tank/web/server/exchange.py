"""One request and its response on a connection: the WSGI gateway (PEP 3333)."""

from __future__ import annotations

import logging
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from tank.web.server.bodies import Body, ChunkedBody, KnownLengthBody, NoBody
from tank.web.server.channel import Channel
from tank.web.server.heads import RequestHead
from tank.web.server.pace import Pace
from tank.web.server.responses import FileWrapper, ResponseWriter, send_error
from tank.web.server.transfers import ENVIRON_KEY as TRANSFERS_KEY
from tank.web.server.transfers import Transfers

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: An unread request body up to this size is read and dropped to keep the connection.
DRAIN_LIMIT = 64 << 10
#: How long a closing connection keeps reading (and dropping) what the client sends.
LINGER_SECONDS = 2.0
#: A request that moved at least this much data runs the after-transfer hook.
LARGE_TRANSFER = 16 << 20


class Exchange:
    """Serve one parsed request head on ``channel``; :meth:`run` says whether the
    connection can carry another request."""

    def __init__(
        self,
        app: WSGIApp,
        channel: Channel,
        head: RequestHead,
        server_addr: tuple[str, int],
        server_name: str,
        after_large_transfer: Callable[[], None] | None = None,
        floor: tuple[int, float] | None = None,
        transfers: Transfers | None = None,
    ) -> None:
        self.app = app
        #: The server's count of long transfers, for the application (WSGI environ).
        self.transfers = transfers
        #: (bytes, seconds): the least a transfer must move per window of waiting.
        self.floor = floor
        self.channel = channel
        self.head = head
        self.server_addr = server_addr
        self.after_large_transfer = after_large_transfer
        self.continue_pending = head.expects_continue
        #: Close with a lingering drain: the client may still be sending a body.
        self.linger = False
        self.out = ResponseWriter(channel, head.version, head.method, server_name)
        self.out.close = head.close  # the client's wish (or HTTP/1.0): said in the answer
        self.body = self._body()

    @property
    def _path(self) -> str:
        """The target without its query string, for logs (a query may carry secrets)."""
        return self.head.target.partition("?")[0]

    def _body(self) -> Body:
        if self.head.chunked:
            return ChunkedBody(self.channel, self._send_continue)
        if self.head.length:
            return KnownLengthBody(self.channel, self.head.length, self._send_continue)
        return NoBody(self.channel, None)

    def _send_continue(self) -> None:
        if self.continue_pending and not self.out.headers_sent:
            self.channel.sock.sendall(_CONTINUE)
        self.continue_pending = False

    # --- WSGI ----------------------------------------------------------------------

    def environ(self) -> dict[str, Any]:
        head = self.head
        target = head.target
        path, _, query = target.partition("?")
        host, port = self.server_addr[:2]
        env: dict[str, Any] = {
            "REQUEST_METHOD": head.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "REQUEST_URI": target,
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": head.version,
            "REMOTE_ADDR": self.channel.address[0],
            "REMOTE_PORT": str(self.channel.address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": self.body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
        }
        if self.transfers is not None:
            env[TRANSFERS_KEY] = self.transfers
        for name, value in head.fields:
            if name == "content-type":
                env["CONTENT_TYPE"] = value
                continue
            if name == "content-length":
                env["CONTENT_LENGTH"] = value
                continue
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in env:
                sep = "; " if name == "cookie" else ", "
                env[key] = f"{env[key]}{sep}{value}"
            else:
                env[key] = value
        return env

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and self.out.headers_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.out.start(status, headers)
        return self.out.write

    # --- the exchange --------------------------------------------------------------

    def run(self) -> bool:
        """Serve the request. True if the connection may carry another one."""
        if self.floor is not None:
            min_bytes, window = self.floor
            self.channel.pace = Pace(min_bytes, window, f"{self.head.method} {self._path[:80]}")
        try:
            return self._run()
        finally:
            self.channel.pace = None

    def _run(self) -> bool:
        out = self.out
        result = None
        try:
            result = self.app(self.environ(), self.start_response)
            sent = False
            if isinstance(result, FileWrapper):
                self._settle_body_before_head()
                sent = out.sendfile(result)
            if not sent:
                for chunk in result:
                    if chunk:
                        if not isinstance(chunk, bytes | bytearray | memoryview):
                            raise TypeError("WSGI applications must yield bytes")
                        if not out.headers_sent:
                            self._settle_body_before_head()
                        out.write(chunk)
            self._settle_body_before_head()
            out.finish()
        except (ConnectionError, TimeoutError) as exc:
            log.info("connection from %s ended: %s", self.channel.address[0], exc)
            return False
        except Exception:
            log.exception("error while answering %s %s", self.head.method, self._path[:200])
            if not out.headers_sent:
                send_error(self.channel.sock, self.head.version, 500, "internal error")
            return False
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing the response of %s failed", self._path[:200])
            if self.after_large_transfer is not None and max(out.sent, self.body.received) >= (
                LARGE_TRANSFER
            ):
                self.after_large_transfer()
        if out.close or self.head.close or self.linger:
            if self.linger:
                linger(self.channel.sock)
            return False
        return True

    def _settle_body_before_head(self) -> None:
        """Before the head goes out: what to do with a body the application left unread.

        Reading the rest could mean gigabytes (or waiting for a body the client holds
        back until 100 Continue): then the connection closes, lingering so the answer
        arrives. A small rest is read and dropped, keeping the connection."""
        if self.out.headers_sent:
            return
        body = self.body
        if not body.done:
            unread = body.unread
            if self.continue_pending or unread is None or unread > DRAIN_LIMIT:
                self.out.close = True
                self.linger = True
            else:
                try:
                    while body.read(DRAIN_LIMIT):
                        pass
                except (OSError, ValueError):
                    self.out.close = True
        self.continue_pending = False


def linger(sock: socket.socket) -> None:
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
