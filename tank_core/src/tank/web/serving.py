"""Running a server from a command: until SIGTERM or SIGINT, then a clean stop."""

from __future__ import annotations

import logging
import resource
import signal
import threading
import time
from types import FrameType

import click

from tank.web import malloc
from tank.web.server import HttpServer, WSGIApp


def make_server(
    app: WSGIApp, host: str, port: int, *, threads: int, name: str, **options: float | None
) -> HttpServer:
    """The HTTP server for one of Tank's commands: glibc tuned for big transfers
    (fewer arenas, if the command did not cap them earlier; free memory handed back after
    each), 64 KiB heads, and as many open connections as the hard file limit allows
    (connections cost no thread)."""
    malloc.limit_arenas()
    raise_file_limit()
    return HttpServer(
        app,
        host,
        port,
        threads=threads,
        name=name,
        max_head_size=64 << 10,
        after_large_transfer=malloc.trim,
        **options,  # type: ignore[arg-type]
    )


def raise_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted
        except (ValueError, OSError):
            pass
    return soft


def run(server: HttpServer, what: str, *, log: logging.Logger) -> None:
    """Serve until SIGTERM or SIGINT; in-flight requests get the server's
    ``shutdown_timeout`` to finish, and the exit status is 0.

    The server runs in a thread and is stopped from the main thread: a signal handler
    may only note the signal (it interrupts whatever the main thread was doing).
    """
    try:
        server.bind()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {server.host}:{server.port}: {exc}") from None
    signalled: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)

    signal.signal(signal.SIGTERM, note)
    signal.signal(signal.SIGINT, note)
    thread = threading.Thread(target=server.serve_forever, name="listener", daemon=True)
    thread.start()
    log.info("%s serving http://%s:%d (%s)", server.name, server.host, server.port, what)
    try:
        while thread.is_alive() and not signalled:
            time.sleep(0.1)
    finally:
        server.stop()
        thread.join(10)
    if not signalled:
        raise click.ClickException("the server stopped unexpectedly; see the log above")
    log.info("%s stopped", server.name)
