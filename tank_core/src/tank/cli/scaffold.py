"""``tank plugin new store NAME``: a new store package, ready to install and test.

Needs no server. The package works as generated (a store keeping each image as a file in
a directory, passing Tank's store contract), so an author starts from green tests and
replaces the file handling with calls to their storage system.
"""

from __future__ import annotations

from pathlib import Path

import click

from tank.cli.inventory import store_rows
from tank.errors import PluginLoadError
from tank.plugins import make_plugin_manager
from tank.scaffold import ScaffoldError, TargetExists, new_store


@click.group("plugin")
def plugin_group() -> None:
    """Write plugins for Tank."""


@plugin_group.group("new")
def new() -> None:
    """Start a new plugin package from a template."""


@new.command("store")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the package folder (tank-store-NAME).",
)
def store(name: str, parent: Path) -> None:
    """Write tank-store-NAME/: pyproject with the entry point, Config, Backend, tests.

    NAME is the store type users will write in ``type = "NAME"``: lower-case letters and
    digits, words joined by '_' or '-'.
    """
    try:
        target = new_store(name, parent, taken=_installed())
    except TargetExists as exc:
        raise click.ClickException(str(exc)) from None
    except ScaffoldError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None
    click.echo(f"Wrote {target}/")
    click.echo(f'Next: pip install -e "{target}[test]" && python -m pytest {target}')


def _installed() -> dict[str, str]:
    """Store types and URI schemes installed here, with the plugin owning each."""
    try:
        rows = store_rows(make_plugin_manager())
    except PluginLoadError:  # a broken plugin elsewhere must not stop the scaffold
        return {}
    taken = {}
    for row in rows:
        owner = row["distribution"] or f"plugin {row['plugin']}"
        taken[row["type"]] = f"store type of {owner}"
        for scheme in row["schemes"]:
            taken.setdefault(scheme, f"URI scheme of store type {row['type']!r}, {owner}")
    return taken
