"""``tank-api``: serve the Images API on Tank's HTTP server (:mod:`tank.web.server`).

It streams request bodies to the application as they arrive (chunked ones included),
answers ``Expect: 100-continue`` only once the application reads the body, reads
request heads without holding a worker thread, and sends local image files with
sendfile.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import attrs
import click

from tank import config as config_mod
from tank.api import ApiConfig, make_app
from tank.cli.options import config_options, load_config
from tank.console import ConsoleConfig
from tank.errors import TankError
from tank.imports.service import ImportService
from tank.scrubber.in_api import InApiScrubber
from tank.service import ImageService
from tank.web import malloc
from tank.web.serving import make_server, run

log = logging.getLogger("tank.api")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=9292, show_default=True, type=click.IntRange(0, 65535))
@config_options
@click.option("--auth/--no-auth", default=None, help="Trust identity headers (X-Roles...).")
@click.option("--registry-url", help="Use a remote tank-registry instead of [registry].")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def main(
    host: str,
    port: int,
    config_path: Path | None,
    data_dir: Path | None,
    auth: bool | None,
    registry_url: str | None,
    log_level: str,
) -> None:
    """Serve the Tank Images API (Glance v1 compatible)."""
    malloc.limit_arenas()  # before the stores start threads: see limit_arenas
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # 8 lines of noise
    config = load_config(config_path, data_dir)
    if registry_url:
        config = attrs.evolve(config, registry={"url": registry_url})
    try:
        api_config = config_mod.build(ApiConfig, config.api, where=config.where("api"))
        if auth is not None:
            api_config = attrs.evolve(api_config, auth=auth)
        console = config_mod.build(ConsoleConfig, config.console, where=config.where("console"))
        service = ImageService.from_config(config)
    except TankError as exc:
        raise click.ClickException(str(exc)) from None
    imports = None
    scrubber = None
    try:
        try:
            imports = ImportService.from_config(config, service)
        except TankError as exc:
            raise click.ClickException(str(exc)) from None
        imports.start()
        service.leases.start()
        if config.scrubber.in_api:
            scrubber = InApiScrubber(service, config.scrubber)
            scrubber.start()
        if service.prefetcher is not None:
            service.prefetcher.start()
        app = make_app(service, api_config, imports, console)
        server = make_server(
            app,
            host,
            port,
            threads=api_config.threads,
            name="tank-api",
            header_timeout=api_config.header_timeout,
            idle_timeout=api_config.idle_timeout,
            max_connections_per_client=api_config.max_connections_per_client,
            min_rate=api_config.min_rate,
            rate_window=api_config.rate_window,
        )
        run(
            server,
            f"data dir {config.data_dir}, registry {_registry_where(service)}, default store "
            f"{service.stores.default}, auth {'on' if api_config.auth else 'off'}",
            log=log,
        )
    finally:
        if scrubber is not None:
            scrubber.close()
        service.leases.close()
        if imports is not None:
            imports.close()
        service.close()


def _registry_where(service: ImageService) -> str:
    """Where the registry keeps its data (an SQLite file in the data dir is easy to
    overlook when only a store's ``datadir`` is configured)."""
    registry = service.registry
    return f"{registry.kind} {registry.where}" if registry.where else registry.kind
