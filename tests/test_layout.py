"""The monorepo's shape, as the design fixes it: checked, so it stays true."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DISTS = sorted(p.parent for p in ROOT.glob("tank_*/pyproject.toml"))
PLUGINS = [d for d in DISTS if d.name != "tank_core"]
EXAMPLES = sorted(p.parent for p in ROOT.glob("examples/*/pyproject.toml"))
PLUGIN_PACKAGES = {d.name for d in PLUGINS}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("dist", DISTS, ids=lambda d: d.name)
def test_distribution_shape(dist: Path) -> None:
    meta = tomllib.loads((dist / "pyproject.toml").read_text())["project"]
    assert meta["name"] == dist.name.replace("_", "-")
    assert meta["version"]
    package = "tank" if dist.name == "tank_core" else dist.name
    assert (dist / "src" / package / "py.typed").exists()
    assert (dist / "README.md").read_text().strip()


@pytest.mark.parametrize("dist", PLUGINS, ids=lambda d: d.name)
def test_plugins_register_through_the_tank_entry_point_group(dist: Path) -> None:
    meta = tomllib.loads((dist / "pyproject.toml").read_text())["project"]
    entry_points = meta["entry-points"]["tank"]
    assert entry_points, "a plugin registers through [project.entry-points.tank]"
    for target in entry_points.values():
        assert target.startswith(dist.name), target
    assert not any("tank-" in dep and "tank-core" not in dep for dep in meta["dependencies"])


@pytest.mark.parametrize("dist", PLUGINS, ids=lambda d: d.name)
def test_no_plugin_imports_another_plugin(dist: Path) -> None:
    for path in (dist / "src").rglob("*.py"):
        others = imported_modules(path) & (PLUGIN_PACKAGES - {dist.name})
        assert not others, f"{path.relative_to(ROOT)} imports {others}"


def test_core_imports_no_plugin() -> None:
    for path in (ROOT / "tank_core" / "src").rglob("*.py"):
        assert not imported_modules(path) & PLUGIN_PACKAGES, path


@pytest.mark.parametrize("dist", DISTS + EXAMPLES, ids=lambda d: d.name)
def test_every_distribution_ships_the_license_and_py_typed(dist: Path) -> None:
    """Wheels and sdists carry the files of their own folder: each needs a copy of the root
    LICENSE, the one its pyproject names, and its package's PEP 561 marker."""
    meta = tomllib.loads((dist / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "Apache-2.0"
    assert (dist / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    assert not (dist / "LICENSE").is_symlink(), "hatchling packs a symlink as a dangling link"
    typed = list(dist.glob("src/*/py.typed")) + list(dist.glob("*/py.typed"))
    assert typed, f"{dist.name} has no py.typed"
