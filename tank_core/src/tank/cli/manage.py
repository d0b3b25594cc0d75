"""``tank-manage``: operator tasks that need the configuration but no running server."""

from __future__ import annotations

from pathlib import Path

import click

from tank.cli.options import config_options, load_config, version_option
from tank.errors import TankError
from tank.plugins import make_plugin_manager
from tank.service import open_registry


@click.group()
@version_option
def main() -> None:
    """Manage a Tank installation."""


@main.group()
def db() -> None:
    """The registry database."""


@db.command()
@config_options
def upgrade(config_path: Path | None, data_dir: Path | None) -> None:
    """Create or migrate the registry schema to the latest version."""
    config = load_config(config_path, data_dir)
    try:
        registry = open_registry(config, make_plugin_manager())
        try:
            done = registry.upgrade()
        finally:
            registry.close()
    except TankError as exc:
        raise click.ClickException(str(exc)) from None
    where = f" {registry.where}" if registry.where else ""
    click.echo(f"registry ({registry.kind}{where}): {done}")


@main.command()
@config_options
@click.option(
    "--daemon",
    is_flag=True,
    help="Run a pass every [scrubber] interval seconds until SIGTERM or SIGINT.",
)
@click.option(
    "--orphans",
    is_flag=True,
    help="Also report data in the stores that no image (deleted ones included) references.",
)
@click.option("--delete", is_flag=True, help="With --orphans: remove the orphans found.")
@click.option(
    "--grace",
    type=float,
    default=None,
    metavar="SECONDS",
    help="With --orphans: only data older than this is an orphan "
    "(default: [scrubber] orphan_grace, 86400).",
)
def scrub(
    config_path: Path | None,
    data_dir: Path | None,
    daemon: bool,
    orphans: bool,
    delete: bool,
    grace: float | None,
) -> None:
    """Remove the data of pending_delete images whose scrub_time has passed, and end
    expired upload leases (one pass; exit status 1 if anything failed). With --orphans,
    then look for orphaned data in every store."""
    from tank.cli import orphan_scan, scrubbing

    orphan_scan.check_options(orphans, delete, grace)
    if orphans and daemon:
        raise click.UsageError("--orphans runs once: not with --daemon")
    config = load_config(config_path, data_dir)
    if daemon:
        scrubbing.run_daemon(config)
        return
    ok = scrubbing.run_once(config)
    if orphans:
        grace = config.scrubber.orphan_grace if grace is None else grace
        ok = orphan_scan.run(config, grace=grace, delete=delete) and ok
    if not ok:
        raise SystemExit(1)


@main.command()
@config_options
@click.argument("image_id")
@click.option(
    "--force",
    is_flag=True,
    help="Restore it even if that takes its owner over a [quotas] limit "
    "(without it, such a restore is refused with exit status 1).",
)
def restore(config_path: Path | None, data_dir: Path | None, image_id: str, force: bool) -> None:
    """Restore a pending_delete image to active (its data is still there). An active
    image counts for its owner's quotas again: a restore that would exceed one is
    refused unless --force."""
    from tank.cli import scrubbing

    scrubbing.restore(load_config(config_path, data_dir), image_id, force=force)


from tank.cli.cache import cache  # noqa: E402  (after main: keeps additions local)

main.add_command(cache)
