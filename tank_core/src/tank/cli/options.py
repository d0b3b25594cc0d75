"""Options shared by every Tank command that builds a Tank from its configuration."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

import tank
from tank import config as config_mod
from tank.config import TankConfig
from tank.errors import TankError

F = TypeVar("F", bound=Callable[..., Any])


def config_options(func: F) -> F:
    """Add ``--config`` (env TANK_CONFIG) and ``--data-dir`` (env TANK_DATA_DIR)."""
    func = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="TANK_DATA_DIR",
        help="Where embedded defaults keep their data (default: ./tank-data).",
    )(func)
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="TANK_CONFIG",
        help="Tank configuration file (TOML).",
    )(func)
    return func


def load_config(config_path: Path | None, data_dir: Path | None) -> TankConfig:
    """Load the configuration, turning errors into a one-line click error."""
    try:
        return config_mod.load(config_path, data_dir=data_dir)
    except TankError as exc:
        raise click.ClickException(str(exc)) from None


def core_version() -> str:
    """The installed tank-core's version (the package's own if not installed)."""
    try:
        return importlib.metadata.version("tank-core")
    except importlib.metadata.PackageNotFoundError:
        return tank.__version__


def version_option(func: F) -> F:
    """``--version``: ``<command> (tank-core) <version>``, the same on every command."""
    return click.version_option(  # type: ignore[no-any-return]
        core_version(), "--version", message="%(prog)s (tank-core) %(version)s"
    )(func)
