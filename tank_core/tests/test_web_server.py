"""tank.web.server on the wire, in process: heads read off the worker threads, deadlines,
keep-alive and pipelining, framing out, the per-client cap, shutdown."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tank.web.server import HttpServer

Environ = dict[str, Any]


def hello(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"] if not body else [body[:5].ljust(5, b".")]


@contextlib.contextmanager
def serving(app: Any = hello, **options: Any) -> Iterator[HttpServer]:
    options.setdefault("threads", 2)
    options.setdefault("shutdown_timeout", 1)
    with HttpServer(app, **options).running() as server:
        yield server


def connect(server: HttpServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def statuses(raw: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", raw)]


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
LAST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_silent_and_dripping_connections_hold_no_worker() -> None:
    """More idle and half-sent heads than worker threads: a whole request still gets
    its answer at once (each worker would block reading a head in a thread-per-
    connection server)."""
    with serving(threads=2) as server:
        idle = [connect(server) for _ in range(8)]
        dripping = [connect(server) for _ in range(8)]
        for sock in dripping:
            sock.sendall(b"GET / HTTP/1.1\r\nHo")
        with connect(server) as sock:
            sock.sendall(LAST)
            assert statuses(read_all(sock)) == [200]
        for sock in idle + dripping:
            sock.close()


def test_a_head_that_does_not_arrive_in_time_gets_408() -> None:
    with serving(header_timeout=0.3) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        raw = read_all(sock)
    assert statuses(raw) == [408] and b'"code":408' in raw


def test_a_silent_connection_is_closed_quietly_at_its_deadline() -> None:
    with serving(header_timeout=0.3) as server, connect(server) as sock:
        assert read_all(sock) == b""


def test_a_head_dripped_a_byte_at_a_time_is_served() -> None:
    """The listener only looks for a head's end when a line feed arrives: every split
    of the blank line across reads must still be seen."""
    head = b"\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with serving() as server, connect(server) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(head)):
            sock.sendall(head[i : i + 1])
            time.sleep(0.002)
        assert statuses(read_all(sock)) == [200]


def test_blank_lines_do_not_put_off_the_head_deadline() -> None:
    """A client sending an empty line now and then (allowed before a request line)
    used to start the head's deadline again with each, and so held its connection
    for as long as it liked."""
    with serving(header_timeout=0.5) as server, connect(server) as sock:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            while time.monotonic() - started < 5:
                sock.sendall(b"\r\n")
                sock.settimeout(0.1)
                with contextlib.suppress(TimeoutError):
                    if sock.recv(65536) == b"":
                        break
        assert time.monotonic() - started < 3


def test_the_head_deadline_of_a_new_connection_runs_from_its_accept() -> None:
    """Silence first, then a head: the whole wait counts (it counted from the head's
    first byte, so a connection could last twice the deadline)."""
    with serving(header_timeout=2.0) as server, connect(server) as sock:
        time.sleep(1.5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        sent = time.monotonic()
        raw = read_all(sock)
        assert statuses(raw) == [408]
        assert time.monotonic() - sent < 1.5


def test_a_kept_alive_connection_has_the_head_deadline_once_a_head_starts() -> None:
    with serving(header_timeout=0.3, idle_timeout=30) as server, connect(server) as sock:
        sock.sendall(GET)
        answer = b""
        while not answer.endswith(b"hello"):
            answer += sock.recv(65536)
        sock.sendall(b"GET / HTTP/1.1\r\nHo")  # idle no more: 0.3 s, not 30
        assert statuses(read_all(sock)) == [408]


def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    with serving() as server, connect(server) as sock:
        body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        sock.sendall(GET + body + GET + LAST)
        raw = read_all(sock)
    assert statuses(raw) == [200, 200, 200, 200]
    assert raw.count(b"hello") == 3 and b"abc.." in raw


def test_keep_alive_across_requests_sent_apart() -> None:
    with serving() as server, connect(server) as sock:
        for _ in range(3):
            sock.sendall(GET)
            answer = b""
            while not answer.endswith(b"hello"):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ")
        sock.sendall(LAST)
        assert statuses(read_all(sock)) == [200]


@pytest.mark.parametrize(
    "head,status",
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET http://elsewhere/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    ],
)
def test_ambiguous_heads_are_refused(head: bytes, status: int) -> None:
    with serving() as server, connect(server) as sock:
        sock.sendall(head)
        raw = read_all(sock)  # and the connection is closed
    assert statuses(raw) == [status]


def test_a_response_without_length_is_chunked_on_http11_and_closes_on_http10() -> None:
    def stream(environ: Environ, start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"abc"
        yield b"defg"

    with serving(stream) as server:
        with connect(server) as sock:
            sock.sendall(LAST)
            raw = read_all(sock)
        assert b"Transfer-Encoding: chunked" in raw
        assert raw.endswith(b"\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
        with connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            raw = read_all(sock)
        assert raw.startswith(b"HTTP/1.0 200 ") and raw.endswith(b"\r\n\r\nabcdefg")


def test_head_answers_never_carry_a_body() -> None:
    with serving() as server, connect(server) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + LAST)
        raw = read_all(sock)
    assert statuses(raw) == [200, 200] and raw.count(b"hello") == 1


def test_connections_per_client_can_be_capped() -> None:
    with serving(max_connections_per_client=2) as server:
        first, second = connect(server), connect(server)
        with connect(server) as third:
            assert statuses(read_all(third)) == [429]
        first.close()
        second.sendall(LAST)
        assert statuses(read_all(second)) == [200]
        second.close()


def test_stop_lets_a_request_in_flight_finish() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        entered.set()
        release.wait(5)
        start_response("200 OK", [("Content-Length", "4")])
        return [b"done"]

    server = HttpServer(slow, threads=2, shutdown_timeout=5)
    with server.running(), connect(server) as sock:  # running() stops it again: a no-op
        sock.sendall(LAST)
        assert entered.wait(5)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        release.set()
        raw = read_all(sock)
        stopper.join(10)
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"done")


def test_a_trickled_body_is_ended_and_its_worker_freed() -> None:
    """A client sending its body a byte at a time held a worker for as long as it liked;
    below the floor (min_rate over rate_window seconds of waiting) the transfer ends."""
    with serving(threads=1, min_rate=1000, rate_window=0.5) as server:
        with connect(server) as slow:
            slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab")
            assert read_all(slow) == b""  # ended: the app never answered
        with connect(server) as sock:  # the one worker is free again
            sock.sendall(LAST)
            assert statuses(read_all(sock)) == [200]


def test_a_client_that_does_not_read_its_answer_is_ended() -> None:
    def big(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", str(64 << 20))])
        return [bytes(1 << 20)] * 64

    with serving(big, threads=1, min_rate=1 << 20, rate_window=0.5) as server:
        stalled = connect(server)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(LAST)  # and never reads
        with connect(server) as sock:
            sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert statuses(read_all(sock)) == [200]  # served once the stalled one ended
        stalled.close()
