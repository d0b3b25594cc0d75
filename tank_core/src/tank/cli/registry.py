"""``tank-registry``: serve the Registry REST API over the configured registry (SQL).

It trusts the context headers tank-api sends (who the caller is, whether an admin), so
it binds loopback by default: whoever can reach it can read and change every image.
Put it where only tank-api can reach it.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

import click

from tank.cli.options import config_options, load_config, version_option
from tank.errors import TankError
from tank.plugins import make_plugin_manager
from tank.registry_http.server import make_registry_app
from tank.service import open_registry
from tank.web.serving import make_server, run

log = logging.getLogger("tank.registry_http")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=9191, show_default=True, type=click.IntRange(0, 65535))
@config_options
@click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 512))
@version_option
def main(
    host: str, port: int, config_path: Path | None, data_dir: Path | None, threads: int
) -> None:
    """Serve the Tank Registry REST API over the registry of the configuration
    (embedded SQLite in the data dir by default)."""
    logging.basicConfig(
        level="INFO", stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
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
    """Serve until SIGTERM or SIGINT, then stop cleanly (exit status 0)."""
    if not is_loopback(host):
        log.warning(
            "tank-registry trusts the identity headers of every request: make sure only "
            "tank-api can reach %s:%d",
            host,
            port,
        )
    server = make_server(app, host, port, threads=threads, name="tank-registry")  # type: ignore[arg-type]
    run(server, f"{kind} registry", log=log)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
