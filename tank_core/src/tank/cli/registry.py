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
from pathlib import Path
from types import FrameType

import click

from tank.cli.api import build_server, limit_malloc_arenas
from tank.cli.options import config_options, load_config
from tank.errors import TankError
from tank.plugins import make_plugin_manager
from tank.registry_http.server import make_registry_app
from tank.service import open_registry


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=9191, show_default=True, type=click.IntRange(0, 65535))
@config_options
@click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 512))
def main(
    host: str, port: int, config_path: Path | None, data_dir: Path | None, threads: int
) -> None:
    """Serve the Tank Registry REST API."""
    logging.basicConfig(
        level="INFO", stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    limit_malloc_arenas()
    config = load_config(config_path, data_dir)
    if "url" in config.registry or config.registry.get("kind") == "http":
        raise click.ClickException(
            f"{config.where('registry')}: tank-registry serves a local registry; "
            "a remote one ([registry] url) would point at itself"
        )
    try:
        registry = open_registry(config, make_plugin_manager())
    except TankError as exc:
        raise click.ClickException(str(exc)) from None
    log = logging.getLogger("tank.registry_http")
    if not _is_loopback(host):
        log.warning(
            "tank-registry trusts the identity headers of every request: make sure only "
            "tank-api can reach %s:%d",
            host,
            port,
        )
    server = build_server(host, port, make_registry_app(registry), threads)

    def stop(signum: int, frame: FrameType | None) -> None:
        # Runs on the serving thread: cheroot's stop() would wait for that very loop.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("tank-registry serving http://%s:%d (%s registry)", host, port, registry.kind)
    try:
        server.safe_start()  # type: ignore[attr-defined]
    finally:
        registry.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
