"""What ``tank-manage scrub --orphans [--delete]`` does (:mod:`tank.scrubber.orphans`)."""

from __future__ import annotations

import click

from tank.config import TankConfig
from tank.errors import TankError
from tank.scrubber.orphans import Tally, scan
from tank.service import ImageService


def check_options(orphans: bool, delete: bool, grace: float | None) -> None:
    """``--delete`` and ``--grace`` only with ``--orphans``."""
    if delete and not orphans:
        raise click.UsageError("--delete removes orphans: it needs --orphans")
    if grace is not None and not orphans:
        raise click.UsageError("--grace is the age of orphans: it needs --orphans")
    if grace is not None and grace < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--grace")


def report(service: ImageService, *, grace: float, delete: bool) -> bool:
    """Scan every store, one line per orphan (and per store not listed), then a
    summary; whether nothing failed (a listing, a removal)."""
    tally = Tally()
    failed = False
    for finding in scan(service.registry, service.stores, grace=grace, delete=delete, tally=tally):
        click.echo(finding.describe())
        failed = failed or finding.failed
    click.echo(f"orphans (grace {grace:g} s): {tally.summary()}")
    return not failed


def run(config: TankConfig, *, grace: float, delete: bool) -> bool:
    """:func:`report` on a service built from ``config``."""
    try:
        with ImageService.from_config(config) as service:
            return report(service, grace=grace, delete=delete)
    except TankError as exc:
        raise click.ClickException(str(exc)) from None
