"""A webhook receiver for the notification tests: records every POST, can answer 500
for a while (to be retried) or hang (to prove a request never waits for it)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WAIT = 20.0


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, secret: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret = secret
        #: Every POST: (headers, body, status answered).
        self.posts: list[tuple[dict[str, str], bytes, int]] = []
        #: Answer this many of the next POSTs with 500.
        self.fail_next = 0
        #: The answer to the others.
        self.status = 200
        #: Cleared: POSTs wait until it is set again (a receiver that hangs).
        self.open = threading.Event()
        self.open.set()
        #: POSTs whose body has arrived (counted before a hanging receiver waits).
        self.arrived = 0
        self.changed = threading.Condition()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def stop(self) -> None:
        self.open.set()
        self.shutdown()
        self.server_close()

    def delivered(self) -> list[dict[str, Any]]:
        """The events answered 2xx, in the order they arrived."""
        with self.changed:
            return [json.loads(body) for _, body, status in self.posts if status == 200]

    def wait_for(self, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        with self.changed:
            while True:
                events = [json.loads(b) for _, b, status in self.posts if status == 200]
                if done(events):
                    return events
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"not delivered in {WAIT} s; got {[e['event_type'] for e in events]}"
                    )
                self.changed.wait(left)

    def wait_arrived(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        with self.changed:
            while self.arrived < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{self.arrived} of {count} POSTs arrived in {WAIT} s"
                self.changed.wait(left)

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """Checks the signature as a receiver would: HMAC-SHA256 of the raw body."""
        assert self.secret is not None
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(headers.get("X-Tank-Signature", ""), expected)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.changed:
            self.server.arrived += 1
            self.server.changed.notify_all()
        self.server.open.wait()
        with self.server.changed:
            status = self.server.status
            if self.server.fail_next > 0:
                self.server.fail_next -= 1
                status = 500
            self.server.posts.append((dict(self.headers.items()), body, status))
            self.server.changed.notify_all()
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass
