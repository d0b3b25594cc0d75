"""``tank plugin new store NAME``: the package it writes installs, is found through its
entry point, and passes its own tests (Tank's store contract) as generated."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tank.cli.main import cli

TANK = [sys.executable, "-c", "from tank.cli.main import cli; cli()"]


def scaffold(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["plugin", "new", "store", *args])
    return result.exit_code, result.output


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TANK_", "PYTHON"))}
    return {**env, **extra}


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def store_types(python: list[str], cwd: Path, env: dict[str, str]) -> dict[str, dict]:  # type: ignore[type-arg]
    listed = run([*python, "--json", "stores"], cwd, env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return {row["type"]: row for row in json.loads(listed.stdout)}


@pytest.mark.parametrize(
    "name,says",
    [
        ("Bad Name", "is not a store name"),
        ("9lives", "is not a store name"),
        ("under__score", "is not a store name"),
        ("x" * 41, "at most 40"),
        ("tank-store-mine", "without the prefix: 'mine'"),
        ("file", "'file' is already a store type or URI scheme here (store type of tank-store-fs)"),
    ],
)
def test_a_bad_name_is_a_usage_error_and_writes_nothing(
    tmp_path: Path, name: str, says: str
) -> None:
    if name == "file":
        pytest.importorskip("tank_store_fs", reason="an installed store's name is refused")
    code, output = scaffold(name, "--dir", str(tmp_path))
    assert code == 2, output
    assert says in output and "Invalid value for NAME" in output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_written_over(tmp_path: Path) -> None:
    existing = tmp_path / "tank-store-mine"
    existing.mkdir()
    (existing / "pyproject.toml").write_text("mine")
    code, output = scaffold("mine", "--dir", str(tmp_path))
    assert code == 1 and "already exists: nothing was written" in output
    assert [p.name for p in existing.iterdir()] == ["pyproject.toml"]
    assert (existing / "pyproject.toml").read_text() == "mine"


def test_names_are_spelled_for_each_use(tmp_path: Path) -> None:
    code, output = scaffold("object-store", "--dir", str(tmp_path))
    assert code == 0, output
    package = tmp_path / "tank-store-object-store"
    assert f"Wrote {package}/" in output
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["name"] == "tank-store-object-store"
    assert project["entry-points"]["tank"] == {"object_store": "tank_store_object_store"}
    assert "tank-core>=" in project["dependencies"][0]
    source = (package / "src/tank_store_object_store/__init__.py").read_text()
    assert "class ObjectStoreBackend(Backend):" in source
    assert 'type_name = "object_store"' in source and 'SCHEME = "object-store"' in source
    assert (package / "src/tank_store_object_store/py.typed").exists()
    assert "$" not in source + (package / "tests/test_contract.py").read_text()


def test_generated_tests_pass_and_the_entry_point_is_found(tmp_path: Path) -> None:
    """Without building anything: the sources on PYTHONPATH, and the distribution's
    metadata written from its pyproject as an installer would."""
    code, output = scaffold("mydisk", "--dir", str(tmp_path))
    assert code == 0, output
    package = tmp_path / "tank-store-mydisk"
    tests = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        package,
        clean_env(PYTHONPATH=str(package / "src")),
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and " failed" not in tests.stdout
    assert (
        "TestMydiskContract::test_concurrent_adds PASSED"
        in run(
            [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-k", "concurrent"],
            package,
            clean_env(PYTHONPATH=str(package / "src")),
        ).stdout
    )

    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    info = tmp_path / "site" / "tank_store_mydisk-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: 0.1.0\n"
    )
    entry_points = "".join(f"{k} = {v}\n" for k, v in project["entry-points"]["tank"].items())
    (info / "entry_points.txt").write_text("[tank]\n" + entry_points)
    env = clean_env(PYTHONPATH=os.pathsep.join([str(package / "src"), str(info.parent)]))
    row = store_types(TANK, tmp_path, env)["mydisk"]
    assert row["distribution"] == "tank-store-mydisk" and row["plugin"] == "mydisk"
    assert row["schemes"] == ["mydisk"] and row["class"] == "tank_store_mydisk.MydiskBackend"


def test_pip_installs_it_and_tank_finds_it(tmp_path: Path) -> None:
    """The real thing: pip builds and installs it into a throwaway venv that sees this
    environment's packages (tank-core, pytest) but not the new one until installed."""
    pytest.importorskip("hatchling", reason="pip builds the package with hatchling, offline")
    code, output = scaffold("mydisk", "--dir", str(tmp_path))
    assert code == 0, output
    package = tmp_path / "tank-store-mydisk"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    inner_site = run(
        [python, "-c", "import site; print(site.getsitepackages()[0])"], tmp_path, clean_env()
    )
    outer = "; ".join(f"site.addsitedir({p!r})" for p in site.getsitepackages())
    Path(inner_site.stdout.strip(), "outer-env.pth").write_text(f"import site; {outer}\n")
    tank = [python, "-c", "from tank.cli.main import cli; cli()"]
    assert "mydisk" not in store_types(tank, tmp_path, clean_env())

    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps"]
    installed = run(
        [*pip, "--no-build-isolation", "--no-index", "--no-cache-dir", "-q", str(package)],
        tmp_path,
        clean_env(),
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    row = store_types(tank, tmp_path, clean_env())["mydisk"]
    assert (row["distribution"], row["version"]) == ("tank-store-mydisk", "0.1.0")
    tests = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], package, clean_env())
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
