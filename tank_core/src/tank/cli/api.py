"""``tank-api``: serve the Images API on a threaded, streaming WSGI server.

The server is cheroot (CherryPy's) as :mod:`tank.api.server` adapts it: it streams
request bodies to the application as they arrive (chunked ones included) instead of
spooling them to a temporary file as waitress does, answers ``Expect: 100-continue``
as soon as the application reads the body (Glance under uWSGI or gunicorn made every
``curl -T`` upload wait a second for it), and sends local image files with sendfile.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
import click

from tank import config as config_mod
from tank.api import ApiConfig, make_app
from tank.api.malloc import limit_arenas as limit_malloc_arenas
from tank.cli.options import config_options, load_config
from tank.errors import TankError
from tank.service import ImageService


def build_server(host: str, port: int, app: object, threads: int, name: str = "tank-api") -> object:
    from tank.api.server import TankServer

    return TankServer(
        (host, port),
        app,
        numthreads=threads,
        max=threads,
        request_queue_size=64,
        timeout=60,
        shutdown_timeout=5,
        server_name=name,
        max_request_header_size=64 * 1024,
    )


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
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
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
    logging.basicConfig(
        level=log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    limit_malloc_arenas()
    config = load_config(config_path, data_dir)
    if registry_url:
        config = attrs.evolve(config, registry={"url": registry_url})
    try:
        api_config = config_mod.build(ApiConfig, config.api, where=config.where("api"))
        if auth is not None:
            api_config = attrs.evolve(api_config, auth=auth)
        service = ImageService.from_config(config)
    except TankError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        server = build_server(host, port, make_app(service, api_config), api_config.threads)
        served = f"data dir {config.data_dir}, auth {'on' if api_config.auth else 'off'}"
        serve(server, host, served)
    finally:
        service.close()


def serve(server: Any, host: str, what: str) -> None:
    """Serve until SIGTERM or SIGINT, then stop: in-flight requests get
    ``shutdown_timeout`` seconds to finish, and the exit status is 0.

    The server runs in a thread and is stopped from the main thread: cheroot's stop()
    inside a signal handler would wait for the loop the handler interrupted.
    """
    log = logging.getLogger("tank.api")
    try:
        server.prepare()
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{server.bind_addr[1]}: {exc}"
        ) from None
    signalled: list[int] = []  # a signal handler may only touch what takes no lock

    def stop(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    thread = threading.Thread(target=server.serve, name="serve", daemon=True)
    thread.start()
    log.info("tank-api serving http://%s:%d (%s)", host, server.bind_addr[1], what)
    try:
        while thread.is_alive() and not signalled:
            time.sleep(0.1)
    finally:
        server.stop()
        thread.join(10)
    if not signalled:
        raise click.ClickException("the server stopped unexpectedly; see the log above")
    log.info("tank-api stopped")
