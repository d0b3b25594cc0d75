"""``HttpServer``: a threaded HTTP/1.1 server whose workers never wait for a head.

One listener thread accepts connections and reads request heads with a selector; a
connection is handed to a worker thread only once its whole head has arrived, and goes
back to the listener between requests. A client that connects and sends nothing, or
drips its headers a byte a second, costs a file descriptor and a few hundred bytes,
never a worker: every head has a deadline (``header_timeout``), an idle kept-alive
connection another (``idle_timeout``), and the number of connections is bounded by file
descriptors (optionally per client address), not by threads.

What the listener does per event is kept small, since a thousand dripping connections
mean a thousand events a second, each taking the GIL from the workers that move
uploads: a byte without a line end cannot end a head and is only appended, and
deadlines sit in a heap (the next one to pass is looked at, not every connection).

A small request body (up to :data:`SMALL_BODY`: a create, an edit) is read here too,
with its head and under a deadline of its own, so slow small requests hold no worker and
never wait for a body thread (``Expect: 100-continue`` is then answered at once: holding
back a body that small saves nothing; a chunked body is a worker's, whatever its size).
Workers do the blocking part: a larger body, the application, the response
(``sendfile`` for file bodies). Pipelined requests that already arrived are served by
the same worker in turn.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import heapq
import itertools
import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from tank.web.server.channel import Channel
from tank.web.server.exchange import Exchange, WSGIApp
from tank.web.server.heads import HeadError, RequestHead, head_end, parse_head
from tank.web.server.responses import send_error
from tank.web.server.transfers import RETRY_AFTER, Transfers

#: The kind :class:`Transfers` counts request bodies as.
BODY = "upload"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

log = logging.getLogger(__name__)

_ACCEPT, _WAKE = "accept", "wake"

#: The first bytes of a TLS handshake record (content type 22, version 3.x).
TLS_HANDSHAKE = b"\x16\x03"


def listen_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A TCP socket listening on ``host``:``port`` (0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def default_transfer_threads(threads: int) -> int:
    """Three quarters of ``threads`` may read request bodies (or, in tank-api, send image
    data): at least one, and one thread is left for other requests whenever there are two
    or more."""
    return max(1, min(threads - 1, threads - threads // 4))


#: Request bodies up to this size are read by the listener with their head, so a slow
#: client of a small request (a create, an edit) holds no worker thread either, and such
#: requests never wait for a body thread while uploads hold them all.
SMALL_BODY = 64 << 10


def _parsed(head: bytes) -> RequestHead | HeadError:
    """The head parsed once, by the listener; the refusal a worker sends if it is bad."""
    try:
        return parse_head(head)
    except HeadError as exc:
        return exc


def _small_body(head: RequestHead | HeadError) -> int:
    """The length of the head's body if the listener should read it before a worker
    takes the request: a Content-Length of at most :data:`SMALL_BODY`; else 0 (no body,
    chunked, large, or a head the worker will refuse)."""
    if isinstance(head, HeadError) or head.length is None:
        return 0
    return head.length if 0 < head.length <= SMALL_BODY else 0


#: A connection for a worker: its socket, address, request head, the bytes after the
#: head, and the head as the listener parsed it.
_Work = tuple[socket.socket, Any, bytes, bytes, RequestHead | HeadError | None]


class _Waiting:
    """A connection in the listener's hands: between requests, or its head arriving."""

    __slots__ = ("address", "buf", "deadline", "head", "idle", "need", "sock")

    def __init__(
        self, sock: socket.socket, address: Any, buf: bytes, deadline: float, idle: bool = False
    ) -> None:
        self.sock = sock
        self.address = address
        self.buf = bytearray(buf)
        self.deadline = deadline
        #: Kept alive between requests: the first byte of the next head starts its
        #: deadline (a new connection's head deadline runs from the accept).
        self.idle = idle
        #: The whole head, parsed (None: not whole yet), handed to the worker with it.
        self.head: RequestHead | HeadError | None = None
        #: Bytes the head and its small body take (0: no small body to wait for).
        self.need = 0


class HttpServer:
    """Serve one WSGI application. ``bind()``, then ``serve_forever()`` in a thread of
    your choice; ``stop()`` from any other thread."""

    def __init__(
        self,
        app: WSGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        threads: int = 16,
        header_timeout: float = 10.0,
        idle_timeout: float = 60.0,
        io_timeout: float = 60.0,
        min_rate: int = 1024,
        rate_window: float = 30.0,
        max_head_size: int = 64 << 10,
        max_connections_per_client: int = 0,
        body_threads: int | None = None,
        transfer_threads: int | None = None,
        shutdown_timeout: float = 5.0,
        name: str = "tank",
        after_large_transfer: Callable[[], None] | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.app = app
        self.host = host
        self.port = port
        self.threads = threads
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.io_timeout = io_timeout
        #: A body or response moving less than min_rate x rate_window bytes in
        #: rate_window seconds of waiting on the client is ended (min_rate 0: never).
        self.floor = (int(min_rate * rate_window), rate_window) if min_rate > 0 else None
        self.max_head_size = max_head_size
        self.max_connections_per_client = max_connections_per_client
        #: Threads that may be reading request bodies at once: a client meeting the rate
        #: floor may keep its upload open for as long as the body lasts, so without a cap
        #: enough slow uploads would take every thread and nobody else would be answered.
        #: The rest stay for requests without a body (listings, downloads, deletes).
        self.body_threads = (
            default_transfer_threads(threads) if body_threads is None else body_threads
        )
        if not 1 <= self.body_threads <= threads:
            raise ValueError(f"body_threads must be between 1 and threads ({threads})")
        #: Bodies and the application's own long transfers (downloads) together take at
        #: most ``transfer_threads`` (default: the larger of body_threads and three quarters).
        if transfer_threads is None:
            transfer_threads = max(self.body_threads, default_transfer_threads(threads))
        if not 1 <= transfer_threads <= threads:
            raise ValueError(f"transfer_threads must be between 1 and threads ({threads})")
        # whatever was configured, one thread always stays for other requests
        self.transfers = Transfers(min(transfer_threads, threads - 1) if threads > 1 else 1)
        self.shutdown_timeout = shutdown_timeout
        self.name = name
        self.after_large_transfer = after_large_transfer
        self._listen: socket.socket | None = None
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._returned: collections.deque[Channel] = collections.deque()
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._waiting: dict[socket.socket, _Waiting] = {}
        #: (deadline, tie-breaker, connection), earliest first; an entry whose deadline
        #: is no longer its connection's (moved, or the connection left) is skipped.
        self._deadlines: list[tuple[float, int, _Waiting]] = []
        self._order = itertools.count()
        #: Connections a worker has, with their channel once the worker made it.
        self._busy: dict[socket.socket, Channel | None] = {}
        self._per_client: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._workers: list[threading.Thread] = []
        self._accept_paused_until = 0.0

    # --- life cycle ----------------------------------------------------------------

    def bind(self) -> None:
        """Open the listening socket (``port`` 0 picks a free one; see :attr:`port`)."""
        self.adopt(listen_socket(self.host, self.port))

    def adopt(self, sock: socket.socket) -> None:
        """Serve a listening socket opened elsewhere (pre-forked workers share one)."""
        sock.setblocking(False)
        self._listen = sock
        self.port = sock.getsockname()[1]

    def close_listener(self) -> None:
        """Close the listening socket (a server that never served)."""
        if self._listen is not None:
            self._listen.close()

    @property
    def bind_addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    def serve_forever(self) -> None:
        """Run the listener until :meth:`stop`; then finish in-flight requests (up to
        ``shutdown_timeout``) and close every connection."""
        if self._listen is None:
            self.bind()
        assert self._listen is not None
        for i in range(self.threads):
            thread = threading.Thread(target=self._worker, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            self._workers.append(thread)
        self._selector.register(self._listen, selectors.EVENT_READ, _ACCEPT)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        try:
            self._loop()
        finally:
            self._shutdown()
            self._stopped.set()

    @contextlib.contextmanager
    def running(self) -> Iterator[HttpServer]:
        """Serve in a background thread for the duration of a ``with`` block (tests,
        embedding); yields the server, whose :attr:`port` is then bound."""
        self.bind()
        thread = threading.Thread(target=self.serve_forever, name=f"{self.name}-listener")
        thread.daemon = True
        thread.start()
        try:
            yield self
        finally:
            self.stop()
            thread.join(self.shutdown_timeout + 5)

    def stop(self) -> None:
        """Stop accepting and serving; returns once the server has shut down."""
        self._stopping.set()
        self._wake()
        if self._workers:
            self._stopped.wait(self.shutdown_timeout + 5)

    # --- the listener --------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            now = time.monotonic()
            if self._accept_paused_until and now >= self._accept_paused_until:
                self._accept_paused_until = 0.0
                self._selector.register(self._listen, selectors.EVENT_READ, _ACCEPT)  # type: ignore[arg-type]
            timeout = 1.0
            if self._deadlines:
                timeout = min(timeout, self._deadlines[0][0] - now)
            if self._accept_paused_until:
                timeout = min(timeout, self._accept_paused_until - now)
            for key, _ in self._selector.select(timeout=max(timeout, 0.0)):
                if key.data is _ACCEPT:
                    self._accept()
                elif key.data is _WAKE:
                    self._take_returned()
                else:
                    self._readable(key.data)
            if self._deadlines and self._deadlines[0][0] <= time.monotonic():
                self._expire(time.monotonic())

    def _accept(self) -> None:
        assert self._listen is not None
        while True:
            try:
                sock, address = self._listen.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("%s: cannot accept more connections now: %s", self.name, exc)
                    self._selector.unregister(self._listen)
                    self._accept_paused_until = time.monotonic() + 0.5
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                raise
            client = address[0]
            cap = self.max_connections_per_client
            with self._lock:
                over = cap and self._per_client[client] >= cap
                if not over:
                    self._per_client[client] += 1
            if over:
                send_error(sock, "HTTP/1.1", 429, f"too many connections from {client}")
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._watch(_Waiting(sock, address, b"", time.monotonic() + self.header_timeout))

    def _watch(self, waiting: _Waiting) -> None:
        self._waiting[waiting.sock] = waiting
        self._set_deadline(waiting, waiting.deadline)
        self._selector.register(waiting.sock, selectors.EVENT_READ, waiting)
        if waiting.buf:
            self._consider(waiting)

    def _set_deadline(self, waiting: _Waiting, deadline: float) -> None:
        waiting.deadline = deadline
        heap = self._deadlines
        heapq.heappush(heap, (deadline, next(self._order), waiting))
        if len(heap) > 2 * len(self._waiting) + 1024:  # mostly stale entries: rebuild
            heap[:] = [(w.deadline, next(self._order), w) for w in self._waiting.values()]
            heapq.heapify(heap)

    def _readable(self, waiting: _Waiting) -> None:
        try:
            data = waiting.sock.recv(64 << 10)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(waiting)
            return
        if not waiting.buf and data[:2] == TLS_HANDSHAKE:
            # An https:// client on a plain-HTTP port: close now rather than let it
            # wait out the head deadline (its TLS library then reports the failure).
            self._drop(waiting)
            return
        if waiting.idle:  # the first byte of the next head starts its deadline
            waiting.idle = False
            self._set_deadline(waiting, time.monotonic() + self.header_timeout)
        buf = waiting.buf
        searched = len(buf) - 3 if len(buf) > 3 else 0  # an end may straddle two reads
        buf += data
        if waiting.need:  # a whole head, its small body arriving
            if len(buf) >= waiting.need:
                self._consider(waiting)
            return
        # A head ends with a line feed: bytes without one cannot have ended it (the
        # fast path for a head dripped a byte at a time).
        if b"\n" in data or len(buf) > self.max_head_size:
            self._consider(waiting, searched)

    def _consider(self, waiting: _Waiting, searched: int = 0) -> None:
        """Hand the connection to a worker if a whole head is here; refuse it if the
        head has grown past the limit. ``searched``: bytes already known to hold no end."""
        buf = waiting.buf
        if buf[:1] in (b"\r", b"\n"):  # blank lines before a request line (RFC 9112 §2.2)
            del buf[: len(buf) - len(buf.lstrip(b"\r\n"))]
            searched = 0
        end = head_end(buf, searched)
        if end < 0 and len(buf) <= self.max_head_size:
            return
        if end < 0 or end > self.max_head_size:
            line_end = buf.find(b"\n")
            if line_end < 0 or line_end > self.max_head_size:  # the target, not headers
                self._answer(waiting, 414, "the request line is too long")
            else:
                limit = self.max_head_size
                self._answer(waiting, 431, f"the request headers are larger than {limit} bytes")
            return
        if waiting.head is None:
            head = waiting.head = _parsed(bytes(buf[:end]))
            body = _small_body(head)
            if body and len(buf) < end + body:  # read here too: no worker waits for it
                # a small body: no reason to hold it back (the worker won't ask)
                if isinstance(head, RequestHead) and head.expects_continue:
                    try:
                        waiting.sock.send(CONTINUE)
                    except OSError:
                        self._drop(waiting)
                        return
                waiting.need = end + body
                self._set_deadline(waiting, time.monotonic() + self.header_timeout)
                return
        self._selector.unregister(waiting.sock)
        del self._waiting[waiting.sock]
        with self._lock:
            self._busy[waiting.sock] = None
        self._work.put(
            (waiting.sock, waiting.address, bytes(buf[:end]), bytes(buf[end:]), waiting.head)
        )

    def _expire(self, now: float) -> None:
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, _, waiting = heapq.heappop(heap)
            if waiting.deadline != deadline or self._waiting.get(waiting.sock) is not waiting:
                continue  # a deadline moved since, or the connection left the listener
            if waiting.need:
                self._answer(
                    waiting,
                    408,
                    f"the request body did not arrive within {self.header_timeout} s of its head",
                )
            elif waiting.buf:
                self._answer(
                    waiting, 408, f"the request head did not arrive within {self.header_timeout} s"
                )
            else:
                self._drop(waiting)

    def _answer(self, waiting: _Waiting, status: int, message: str) -> None:
        send_error(waiting.sock, "HTTP/1.1", status, message)
        self._drop(waiting)

    def _drop(self, waiting: _Waiting) -> None:
        self._selector.unregister(waiting.sock)
        del self._waiting[waiting.sock]
        self._close(waiting.sock, waiting.address)

    def _take_returned(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        now = time.monotonic()
        while self._returned:
            channel = self._returned.popleft()
            with self._lock:
                self._busy.pop(channel.sock, None)
            try:
                channel.sock.setblocking(False)
            except OSError:
                self._close(channel.sock, channel.address)
                continue
            pending = bytes(channel.pending)
            timeout = self.header_timeout if pending else self.idle_timeout
            self._watch(
                _Waiting(channel.sock, channel.address, pending, now + timeout, not pending)
            )

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake (buffer full) or shut down

    def _close(self, sock: socket.socket, address: Any) -> None:
        try:
            sock.close()
        except OSError:
            pass
        if self.max_connections_per_client:
            with self._lock:
                self._per_client[address[0]] -= 1
                if self._per_client[address[0]] <= 0:
                    del self._per_client[address[0]]

    # --- workers -------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            sock, address, head, rest, parsed = item
            try:
                self._serve(sock, address, head, rest, parsed)
            except Exception:
                log.exception("%s: connection from %s failed", self.name, address[0])
                with self._lock:
                    self._busy.pop(sock, None)
                self._close(sock, address)

    def _serve(
        self,
        sock: socket.socket,
        address: Any,
        head_bytes: bytes,
        rest: bytes,
        parsed: RequestHead | HeadError | None = None,
    ) -> None:
        """Serve the requests of one connection: the first as the listener parsed it
        (``parsed``), any pipelined after it parsed here."""
        sock.setblocking(True)
        sock.settimeout(self.io_timeout)
        channel = Channel(sock, address, rest, self.io_timeout)
        with self._lock:
            self._busy[sock] = channel
        while True:
            try:
                if isinstance(parsed, HeadError):
                    raise parsed
                head = parsed or parse_head(head_bytes)
            except HeadError as exc:
                send_error(sock, "HTTP/1.1", exc.status, exc.message)
                self._finish(channel, keep=False)
                return
            parsed = None  # the next pipelined head is parsed by this worker
            # a length, or -1: chunked; a body already here whole takes no thread time
            length = head.length
            whole = length is not None and 0 < length <= len(channel.pending)
            with_body = bool(length) and not whole
            if with_body and not self.transfers.take(BODY, self.body_threads):
                send_error(
                    sock,
                    "HTTP/1.1",
                    503,
                    f"this server is already busy with {self.transfers.busy()} (it reads at"
                    f" most {self.body_threads} request bodies at once, and runs at most"
                    f" {self.transfers.limit} uploads and downloads together); retry later",
                    retry_after=RETRY_AFTER,
                )
                self._finish(channel, keep=False)
                return
            exchange = Exchange(
                self.app,
                channel,
                head,
                (self.host, self.port),
                self.name,
                self.after_large_transfer,
                self.floor,
                self.transfers,
            )
            if whole:  # read by the listener, which said 100 Continue if it was asked to
                exchange.continue_pending = False
            try:
                keep = exchange.run() and not self._stopping.is_set()
            finally:
                if with_body:
                    self.transfers.give_back(BODY)
            channel.served += 1
            if not keep:
                self._finish(channel, keep=False)
                return
            pending = channel.pending
            while pending[:1] in (b"\r", b"\n"):
                del pending[:1]
            end = head_end(pending)
            if end < 0 or end > self.max_head_size:
                self._finish(channel, keep=True)
                return
            head_bytes = bytes(pending[:end])
            del pending[:end]

    def _finish(self, channel: Channel, *, keep: bool) -> None:
        if keep:
            self._returned.append(channel)
            self._wake()
            return
        with self._lock:
            self._busy.pop(channel.sock, None)
        self._close(channel.sock, channel.address)

    # --- shutdown ------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self._listen is not None:
            self._listen.close()
        for waiting in list(self._waiting.values()):
            self._drop(waiting)
        for _ in self._workers:
            self._work.put(None)
        deadline = time.monotonic() + self.shutdown_timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            busy = list(self._busy.items())
        if busy:
            log.warning(
                "%s: %d requests still running after %s s; ending them (503)",
                self.name,
                len(busy),
                self.shutdown_timeout,
            )
        for sock, channel in busy:  # a body still being read ends; its answer goes out
            if channel is not None:
                channel.end_reading()
            else:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self._workers:
            thread.join(2.0)
        while self._returned:
            channel = self._returned.popleft()
            channel.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
