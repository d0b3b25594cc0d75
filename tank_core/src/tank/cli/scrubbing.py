"""What ``tank-manage scrub`` and ``tank-manage restore`` do (:mod:`tank.scrubber`)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click

from tank.config import TankConfig
from tank.errors import QuotaExceeded, TankError
from tank.scrubber import daemon, scrub_pass
from tank.scrubber import restore as restoring
from tank.service import ImageService

log = logging.getLogger("tank.scrubber")


@contextmanager
def _service(config: TankConfig) -> Iterator[ImageService]:
    try:
        service = ImageService.from_config(config)
    except TankError as exc:
        raise click.ClickException(str(exc)) from None
    with service:
        yield service


def _logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def run_once(config: TankConfig) -> bool:
    """One pass, its report on stdout (warnings and errors on stderr); whether
    nothing failed."""
    _logging(logging.WARNING)
    with _service(config) as service:
        report = scrub_pass.run_pass(service, config.scrubber)
    _echo(report)
    return not report.failed


def _echo(report: scrub_pass.PassReport) -> None:
    lines = report.lines()
    for line in lines:
        click.echo(line)
    failures = sum(len(step.failures) for step in report.steps)
    scrubbed = sum(len(step.done) for step in report.steps)
    click.echo(f"scrub pass done: {scrubbed} done, {failures} failed")


def run_daemon(config: TankConfig) -> None:
    """A pass every ``[scrubber] interval`` seconds until SIGTERM or SIGINT (the pass
    in progress finishes first)."""
    _logging(logging.INFO)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the pass in progress", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    interval = config.scrubber.interval
    with _service(config) as service:
        log.info("scrubber running: a pass every %g s", interval)

        def one_pass() -> None:
            _echo(scrub_pass.run_pass(service, config.scrubber))

        daemon.every(interval, one_pass, stop)
    log.info("scrubber stopped")


def restore(config: TankConfig, image_id: str, *, force: bool = False) -> None:
    with _service(config) as service:
        try:
            image = restoring.restore(service, image_id, force=force)
        except QuotaExceeded as exc:
            raise click.ClickException(
                f"image {image_id} not restored: {exc} (--force restores it anyway)"
            ) from None
        except TankError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"image {image.id} restored: {image.status}")
