"""``tank-registry``: serve the Registry REST API over the configured registry (SQL).

It trusts the context headers tank-api sends (who the caller is, whether an admin), so
it binds loopback by default: whoever can reach it can read and change every image.
Put it where only tank-api can reach it.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import click

from tank.cli.api import build_server, limit_malloc_arenas
from tank.cli.options import config_options, load_config
from tank.errors import TankError
from tank.plugins import make_plugin_manager
from tank.registry_http.server import make_registry_app
from tank.service import open_registry

log = logging.getLogger("tank.registry_http")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=9191, show_default=True, type=click.IntRange(0, 65535))
@config_options
@click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 512))
def main(
    host: str, port: int, config_path: Path | None, data_dir: Path | None, threads: int
) -> None:
    """Serve the Tank Registry REST API over the registry of the configuration
    (embedded SQLite in the data dir by default)."""
    logging.basicConfig(
        level="INFO", stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    limit_malloc_arenas()
    config = load_config(config_path, data_dir)
    if "url" in config.registry or config.registry.get("kind") == "http":
        raise click.ClickException(
            f"{config.where('registry')}: names a remote registry (url, kind http); "
            "tank-registry serves a registry of its own (kind sql, the default)"
        )
    try:
        registry = open_registry(config, make_plugin_manager())
    except TankError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        serve(host, port, make_registry_app(registry), threads, registry.kind)
    finally:
        registry.close()


def serve(host: str, port: int, app: object, threads: int, kind: str) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly (exit status 0).

    The server runs in a thread and is stopped from the main thread: cheroot's stop()
    called inside a signal handler, while the main thread is in its accept loop, can
    hang the process.
    """
    if not _is_loopback(host):
        log.warning(
            "tank-registry trusts the identity headers of every request: make sure only "
            "tank-api can reach %s:%d",
            host,
            port,
        )
    server = build_server(host, port, app, threads, name="tank-registry")
    try:
        server.prepare()  # type: ignore[attr-defined]
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    signalled: list[int] = []  # a signal handler may only touch what takes no lock

    def stop(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    thread = threading.Thread(target=server.serve, name="serve", daemon=True)  # type: ignore[attr-defined]
    thread.start()
    bound = server.bind_addr[1]  # type: ignore[attr-defined]
    log.info("tank-registry serving http://%s:%d (%s registry)", host, bound, kind)
    try:
        while thread.is_alive() and not signalled:
            time.sleep(0.1)
    finally:
        server.stop()  # type: ignore[attr-defined]
        thread.join(10)
    if not signalled:
        raise click.ClickException("the server stopped unexpectedly; see the log above")
    log.info("tank-registry stopped")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
