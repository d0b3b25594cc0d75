"""``tank-api``: serve the Images API on Tank's HTTP server (:mod:`tank.web.server`).

It streams request bodies to the application as they arrive (chunked ones included),
answers ``Expect: 100-continue`` only once the application reads the body, reads
request heads without holding a worker thread, and sends local image files with
sendfile.

``--workers N`` (``[api] workers``, default: the number of CPUs) pre-forks N server
processes on one listening socket (:mod:`tank.web.prefork`); 0 serves in this process.
Every worker opens its own registry and stores, keeps the heartbeats of its own uploads
and imports, and runs its own import pool (``[import] workers`` each); the sweeps that
clean up after a dead tank-api (expired upload leases, interrupted imports, unverified
handed-over locations) run in worker slot 0 only (they are safe to run anywhere, being
conditional registry updates, but once per host is enough).

tank-api refuses to start (exit status 2, one line saying why) when its data directory
cannot be written, the registry does not answer, the default store cannot be
written, or two stores would share a local directory (:mod:`tank.store_dirs`); a bad
configuration file is exit status 1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
import click

from tank import config as config_mod
from tank.api import ApiConfig, make_app
from tank.api import metrics as metrics_mod
from tank.cli import logs
from tank.cli.options import config_options, load_config, version_option
from tank.cli.registry import is_loopback
from tank.config import TankConfig
from tank.config_check import check_sections
from tank.console import ConsoleConfig
from tank.errors import SharedStoreDirectory, TankError
from tank.imports.service import ImportService
from tank.model import Context, ListQuery
from tank.plugins import make_plugin_manager
from tank.scrubber.in_api import InApiScrubber
from tank.service import ImageService
from tank.web import malloc
from tank.web.prefork import StartError, Supervisor, sd_notify
from tank.web.server import HttpServer, default_transfer_threads, listen_socket
from tank.web.serving import make_server

log = logging.getLogger("tank.api")


class StartupError(click.ClickException):
    """tank-api cannot serve (data dir, registry, default store): exit status 2."""

    exit_code = 2


@attrs.frozen
class Settings:
    """The command line; with the configuration file it makes what a worker runs."""

    host: str
    port: int
    config_path: Path | None
    data_dir: Path | None
    auth: bool | None
    registry_url: str | None
    log_level: str | None
    log_file: str | None
    log_format: str | None
    workers: int | None

    def load(self) -> tuple[TankConfig, ApiConfig]:
        """The configuration with the command line applied; ClickException if bad."""
        config = load_config(self.config_path, self.data_dir)
        if self.registry_url:
            config = attrs.evolve(config, registry={"url": self.registry_url})
        try:
            api_config = config_mod.build(ApiConfig, config.api, where=config.where("api"))
            console_config(config)  # checked here, before any worker starts
            check_sections(config, make_plugin_manager())  # the workers' sections too
        except SharedStoreDirectory as exc:
            raise StartupError(str(exc)) from None
        except TankError as exc:
            raise click.ClickException(str(exc)) from None
        changes: dict[str, Any] = {}
        for key in ("auth", "log_level", "log_file", "log_format", "workers"):
            value = getattr(self, key)
            if value is not None:
                changes[key] = value
        return config, attrs.evolve(api_config, **changes)


def console_config(config: TankConfig) -> ConsoleConfig:
    """``[console]``: the web console (:mod:`tank.console`)."""
    return config_mod.build(ConsoleConfig, config.console, where=config.where("console"))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=9292, show_default=True, type=click.IntRange(0, 65535))
@config_options
@click.option("--auth/--no-auth", default=None, help="Trust identity headers (X-Roles...).")
@click.option("--registry-url", help="Use a remote tank-registry instead of [registry].")
@click.option(
    "--workers",
    type=click.IntRange(0, 256),
    help="Server processes ([api] workers; default: CPUs); 0: serve in this process.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="[api] log_level (default INFO).",
)
@click.option("--log-file", help="Append the log here ([api] log_file); reopened on SIGHUP.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), help="[api] log_format (default text)."
)
@version_option
def main(
    host: str,
    port: int,
    config_path: Path | None,
    data_dir: Path | None,
    auth: bool | None,
    registry_url: str | None,
    workers: int | None,
    log_level: str | None,
    log_file: str | None,
    log_format: str | None,
) -> None:
    """Serve the Tank Images API (Glance v1 and v2)."""
    malloc.limit_arenas()  # before the stores start threads: see limit_arenas
    settings = Settings(
        host,
        port,
        config_path,
        data_dir,
        auth,
        registry_url,
        log_level.upper() if log_level else None,
        log_file,
        log_format,
        workers,
    )
    config, api_config = settings.load()
    _setup_logging(api_config)
    if api_config.workers:
        preload()
    check_data_dir(config.data_dir)
    if not api_config.auth and not is_loopback(host):
        log.warning(
            "tank-api listens on %s with auth off: every caller is an admin. Turn [api] auth "
            "on behind an authenticating proxy, or bind it to loopback",
            host,
        )
    try:
        sock = listen_socket(host, port)
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    what = f"data dir {config.data_dir}, auth {'on' if api_config.auth else 'off'}"
    try:
        if api_config.workers == 0:
            _serve_here(sock, settings, config, api_config, what)
        else:
            _supervise(sock, settings, config, api_config, what)
    finally:
        sock.close()


def preload() -> None:
    """Import the plugins and the classes they register (SQLAlchemy with the SQL
    registry: ~25 MiB) before forking, so that the workers share those pages instead of
    each importing its own copy. Nothing is opened or connected here."""
    try:
        plugins = make_plugin_manager()
        plugins.store_types()
        plugins.registry_types()
        plugins.import_step_types()
    except TankError as exc:
        raise StartupError(str(exc)) from None


def transfer_threads(api_config: ApiConfig) -> int:
    """Uploads and downloads together: at most the larger of their two caps."""
    default = default_transfer_threads(api_config.threads)
    return max(api_config.body_threads or default, api_config.download_threads or default)


def _server(sock: socket.socket, api_config: ApiConfig) -> HttpServer:
    """This process's HTTP server on the shared listening socket (its app set later)."""
    host, port = sock.getsockname()[:2]
    server = make_server(
        _no_app,
        host,
        port,
        threads=api_config.threads,
        name="tank-api",
        header_timeout=api_config.header_timeout,
        idle_timeout=api_config.idle_timeout,
        max_connections_per_client=api_config.max_connections_per_client,
        body_threads=api_config.body_threads,
        transfer_threads=transfer_threads(api_config),
        min_rate=api_config.min_rate,
        rate_window=api_config.rate_window,
        shutdown_timeout=api_config.shutdown_timeout,
    )
    server.adopt(sock)
    return server


def _no_app(environ: object, start_response: object) -> list[bytes]:  # replaced at start
    raise RuntimeError("no application")


def _setup_logging(api_config: ApiConfig) -> None:
    try:
        logs.setup(api_config.log_level, api_config.log_file, api_config.log_format)
    except OSError as exc:
        raise StartupError(
            f"cannot open the log file {api_config.log_file}: {exc.strerror}"
        ) from None


def check_data_dir(data_dir: Path) -> None:
    """The data directory exists (made if missing) and a file can be written in it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / f".tank-api-probe-{uuid.uuid4().hex[:12]}"
        probe.write_bytes(b"tank")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"data dir {data_dir} is not usable: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(data_dir) else "")
        ) from None


def open_tank(
    config: TankConfig, api_config: ApiConfig
) -> tuple[ImageService, ImportService | None]:
    """The service and import service, checked usable: the registry answers and the
    default store can be written. StartupError saying why not."""
    try:
        service = ImageService.from_config(config)
    except TankError as exc:
        raise StartupError(str(exc)) from None
    try:
        try:
            service.registry.list(ListQuery(limit=1), context=Context.admin())
        except TankError as exc:
            raise StartupError(f"the registry does not answer: {exc}") from None
        default = service.stores.get()
        if default.write_disabled is not None and default.disabled_by_full:
            # A full disk is no misconfiguration: serve (downloads work, uploads are 413)
            # and take uploads again once space is freed, without a restart (#15).
            log.warning("default store %r is full now: %s", default.name, default.write_disabled)
        elif default.write_disabled is not None:
            raise StartupError(
                f"default store {default.name!r} cannot be written: {default.write_disabled}"
            )
        try:
            imports = ImportService.from_config(config, service)
        except TankError as exc:
            raise StartupError(str(exc)) from None
    except BaseException:
        service.close()
        raise
    return service, imports


@contextlib.contextmanager
def _running_tank(
    sock: socket.socket,
    config: TankConfig,
    api_config: ApiConfig,
    *,
    duties: bool,
    metrics: metrics_mod.Metrics | None,
) -> Iterator[tuple[HttpServer, ImageService]]:
    """Open the service, start its threads and make this process's server on ``sock``
    with the application; close all after the block. ``duties``: run the cleanup sweeps
    here."""
    service, imports = open_tank(config, api_config)
    scrubber = None
    try:
        server = _server(sock, api_config)
        if metrics is not None:
            metrics.instrument_stores(service.stores)
        if imports is not None:
            imports.start(recover=duties)
        service.leases.start(sweep=duties)
        if config.scrubber.in_api and duties:  # one process a host; a registry lease overall
            scrubber = InApiScrubber(service, config.scrubber)
            scrubber.start()
        if service.prefetcher is not None:
            service.prefetcher.start()
        server.app = make_app(
            service,
            api_config,
            imports,
            console_config(config),
            recover=duties,
            metrics=metrics,
        )
        yield server, service
    finally:
        if scrubber is not None:
            scrubber.close()
        service.leases.close()
        if imports is not None:
            imports.close()
        service.close()


def _serve_here(
    sock: socket.socket,
    settings: Settings,
    config: TankConfig,
    api_config: ApiConfig,
    what: str,
) -> None:
    """``--workers 0``: serve in this process until SIGTERM/SIGINT. SIGHUP reopens the
    log file and checks the configuration, but does not reload it: that would mean
    opening a second registry, stores, import pool and sweepers beside the ones serving,
    and closing those under requests in flight (the supervisor does it by replacing
    whole worker processes). It says so in the log (:func:`_hup_in_one_process`)."""
    signalled = catch_signals()
    metrics = metrics_mod.Metrics() if api_config.metrics else None
    with _running_tank(sock, config, api_config, duties=True, metrics=metrics) as (
        server,
        service,
    ):
        hup = lambda: _hup_in_one_process(settings, api_config)  # noqa: E731
        what = f"{what}, {_registry_and_store(service)}, 1 process"
        _serve_until_signalled(server, what, signalled, on_hup=hup)
        sd_notify("STOPPING=1")


def _registry_and_store(service: ImageService) -> str:
    """Where the registry keeps its data (an SQLite file in the data dir is easy to
    overlook when only a store's ``datadir`` is configured) and the default store."""
    registry = service.registry
    where = f"{registry.kind} {registry.where}" if registry.where else registry.kind
    return f"registry {where}, default store {service.stores.default}"


def _hup_in_one_process(settings: Settings, running: ApiConfig) -> None:
    """SIGHUP with ``--workers 0``: reopen the log (logrotate's SIGHUP) with the new
    configuration's log settings if it is valid, else with the running ones; warn that
    nothing else is reloaded (and why a new configuration is bad, if it is)."""
    try:
        _, new_api = settings.load()  # checked as the supervisor checks it
    except click.ClickException as exc:
        new_api = None
        why = exc.format_message()
    try:
        use = new_api or running
        logs.setup(use.log_level, use.log_file, use.log_format)
    except OSError as exc:
        log.error("SIGHUP: could not reopen the log: %s", exc)
    else:
        log.info("SIGHUP: log reopened")
    if new_api is None:
        log.error(
            "SIGHUP: the configuration is not valid, still running on the one read at start: %s",
            why,
        )
    log.warning(
        "SIGHUP: configuration not reloaded: with --workers 0 tank-api reads it at start "
        "only (log settings aside); restart it, or run it with --workers >= 1 to reload "
        "on SIGHUP"
    )


def catch_signals() -> list[int]:
    """From now on SIGTERM, SIGINT (unless ignored: a worker's) and SIGHUP are noted in
    the list returned, not acted on: a process starting up finishes opening (or fails)
    and then stops cleanly, exit status 0."""
    signalled: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signum != signal.SIGINT or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signum, note)
    return signalled


def _serve_until_signalled(
    server: HttpServer,
    what: str,
    signalled: list[int],
    *,
    on_hup: Callable[[], None] | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve in a thread until SIGTERM or SIGINT (SIGHUP too when ``on_hup`` is None:
    a worker told to make way for a new generation), then stop gracefully. A signal
    that came while the process was starting stops it before it serves."""
    if ready is not None:
        ready()
    else:
        sd_notify("READY=1")
    if signalled and (on_hup is None or set(signalled) != {signal.SIGHUP}):
        log.info("%s %d stopped before serving", server.name, os.getpid())
        return
    thread = threading.Thread(target=server.serve_forever, name="listener", daemon=True)
    thread.start()
    log.info("%s serving http://%s:%d (%s)", server.name, server.host, server.port, what)
    try:
        while thread.is_alive():
            if signal.SIGHUP in signalled and on_hup is not None:
                signalled.remove(signal.SIGHUP)
                on_hup()
            if signalled:
                break
            time.sleep(0.1)
    finally:
        server.stop()
        thread.join(server.shutdown_timeout + 10)
    if not signalled:
        raise click.ClickException("the server stopped unexpectedly; see the log above")
    log.info("%s %d stopped", server.name, os.getpid())


def _supervise(
    sock: socket.socket,
    settings: Settings,
    config: TankConfig,
    api_config: ApiConfig,
    what: str,
) -> None:
    current = {"config": config, "api": api_config}
    metrics_dir = None
    if api_config.metrics:
        metrics_dir = metrics_mod.prepare_multiprocess_dir(config.data_dir, sock.getsockname()[1])

    def worker_main(slot: int, generation: int, ready: Callable[[str | None], None]) -> int:
        signalled = catch_signals()
        cfg, api_cfg = current["config"], current["api"]
        assert isinstance(cfg, TankConfig) and isinstance(api_cfg, ApiConfig)
        log.debug(
            "worker %d (slot %d, generation %d): opening the registry and stores of %s",
            os.getpid(),
            slot,
            generation,
            cfg.source,
        )
        metrics = metrics_mod.Metrics() if api_cfg.metrics and metrics_dir else None
        try:
            with _running_tank(sock, cfg, api_cfg, duties=slot == 0, metrics=metrics) as (
                server,
                service,
            ):
                _serve_until_signalled(
                    server,
                    f"{what}, {_registry_and_store(service)}, worker slot {slot}",
                    signalled,
                    ready=lambda: ready(None),
                )
        except click.ClickException as exc:
            ready(exc.format_message())
            return exc.exit_code
        return 0

    def reload() -> int | None:
        new_config, new_api = settings.load()
        logs.setup(new_api.log_level, new_api.log_file, new_api.log_format)
        current["config"], current["api"] = new_config, new_api
        log.info("configuration reloaded from %s; log reopened", new_config.source)
        return new_api.workers or 1

    def worker_exited(pid: int) -> None:
        if metrics_dir is not None:
            metrics_mod.mark_process_dead(pid)

    supervisor = Supervisor(
        api_config.workers,
        worker_main,
        listener=sock,
        grace=api_config.shutdown_timeout,
        reload=reload,
        on_worker_exit=worker_exited,
    )
    log.info(
        "tank-api %d supervising %d workers on http://%s:%d (%s)",
        os.getpid(),
        api_config.workers,
        *sock.getsockname()[:2],
        what,
    )
    try:
        status = supervisor.run()
    except StartError as exc:
        raise StartupError(str(exc)) from None
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    log.info("tank-api stopped")
    if status:
        raise SystemExit(status)
