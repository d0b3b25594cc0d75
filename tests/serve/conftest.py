"""Helpers for the tests of tank-api as a server: its worker processes and its log."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import requests

from tank.testing.api_server import ApiServer
from tank.testing.api_server import child_pids as children

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """``probe()`` until it returns something true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def workers_ready(api: ApiServer, count: int, timeout: float = 90.0) -> set[int]:
    """Wait until tank-api has ``count`` workers that all answer; their pids."""

    def ready() -> set[int] | None:
        pids = children(api.proc.pid)
        if len(pids) != count:
            return None
        seen = serving_pids(api, 8 * count)
        return pids if seen == pids else None

    return wait_for(f"{count} workers", ready, timeout)


def serving_pids(api: ApiServer, requests_made: int) -> set[int]:
    """The pids of the workers that answered ``requests_made`` healthchecks, each on a
    new connection: found by each answer's request id in the access log (text lines
    carry the pid)."""
    ids = []
    for _ in range(requests_made):
        r = requests.get(f"{api.url}/healthcheck", timeout=30)
        if r.status_code == 200:
            ids.append(r.headers["X-Openstack-Request-Id"])
    return {pid_of(api, request_id) for request_id in ids}


def pid_of(api: ApiServer, request_id: str) -> int:
    """The pid of the process whose access-log line has ``request_id``."""

    def find() -> int | None:
        for line in api.log_path.read_text(errors="replace").splitlines():
            if f" tank.api.access {request_id} " in line:
                return int(line.split()[2])
        return None

    return wait_for(f"the access-log line of {request_id}", find, 10)


def access_line(api: ApiServer, request_id: str, log: Path | None = None) -> str:
    """The access-log line of ``request_id`` (waited for: it is written when the
    response is done, maybe after the client has it all)."""

    def find() -> str | None:
        text = (log or api.log_path).read_text(errors="replace")
        return next((x for x in text.splitlines() if request_id in x), None)

    return wait_for(f"the access-log line of {request_id}", find, 10)
