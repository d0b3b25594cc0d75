"""``tank-manage``: operator tasks that need the configuration but no running server."""

from __future__ import annotations

from pathlib import Path

import click

from tank.cli.options import config_options, load_config
from tank.errors import TankError
from tank.plugins import make_plugin_manager
from tank.service import open_registry


@click.group()
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
