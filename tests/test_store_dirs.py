"""Stores sharing a local directory are refused (:mod:`tank.store_dirs`): by tank-api at
start (exit status 2), by tank-manage (whose orphan scan would delete the other store's
data), and by the reload check (:mod:`tank.config_check`)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tank.config import load
from tank.config_check import check_sections
from tank.errors import SharedStoreDirectory
from tank.plugins import make_plugin_manager
from tank.testing.api_server import find_script


def _run(command: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = find_script(command)
    assert exe is not None, f"{command} is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=120)


def _write(tmp_path: Path, stores: dict[str, str], extra: str = "") -> Path:
    path = tmp_path / "tank.toml"
    body = f'default_store = "{next(iter(stores))}"\n' + "".join(
        f'[stores.{name}]\ntype = "file"\ndatadir = "{datadir}"\n'
        for name, datadir in stores.items()
    )
    path.write_text(body + extra)
    return path


def _check(tmp_path: Path, stores: dict[str, str], extra: str = "") -> None:
    config = load(_write(tmp_path, stores, extra), data_dir=tmp_path / "data")
    check_sections(config, make_plugin_manager())


def test_tank_api_refuses_two_stores_in_one_directory(tmp_path: Path) -> None:
    shared = tmp_path / "images"
    config = _write(tmp_path, {"a": str(shared), "b": f"{shared}/"})
    for workers in ("0", "2"):
        done = _run(
            "tank-api",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--config",
            str(config),
            "--workers",
            workers,
        )
        assert done.returncode == 2, done.stderr
        last = done.stderr.rstrip("\n").splitlines()[-1]
        assert "Traceback" not in done.stderr
        assert last == (
            f"Error: {config}: [stores.a] and [stores.b] share a directory: {shared} and "
            f"{shared} are one; each store's orphan scan would take the other's data for "
            "orphans of its own and delete it. Give every store a directory of its own"
        )


def test_the_orphan_scan_refuses_and_deletes_nothing(tmp_path: Path) -> None:
    outer = tmp_path / "images"
    inner = outer / "fast"
    inner.mkdir(parents=True)
    stray = inner / str(uuid.uuid4())  # no image's: without the refusal, --delete removes it
    stray.write_bytes(b"data")
    os.utime(stray, (0, 0))  # old enough for any grace period
    config = _write(tmp_path, {"a": str(outer), "b": str(inner)})
    done = _run(
        "tank-manage",
        "scrub",
        "--orphans",
        "--delete",
        "--grace",
        "0",
        "--config",
        str(config),
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert done.returncode == 1, done.stdout
    assert f"[stores.a] and [stores.b] share a directory: {inner} is inside {outer}" in (
        done.stderr
    )
    assert stray.read_bytes() == b"data"  # the scan never ran


def test_symlinks_and_nesting_are_seen_through(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(SharedStoreDirectory) as caught:
        _check(tmp_path, {"a": str(real), "b": str(link)})
    assert f"{real} and {link} (= {real}) are one" in str(caught.value)
    with pytest.raises(SharedStoreDirectory) as caught:  # the outer one named second
        _check(tmp_path, {"a": f"{link}/x/y", "b": str(real / "x")})
    assert f"{link}/x/y (= {real}/x/y) is inside {real}/x" in str(caught.value)
    # siblings and a shared prefix of the name are not nested
    _check(tmp_path, {"a": str(real / "x"), "b": str(real / "xy"), "c": str(real / "y")})


def test_tank_api_internals(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # the data dir itself, or a store holding the cache and staging directories: allowed
    # (the store owns only the <image id> files directly in its directory)
    _check(tmp_path, {"a": str(data)}, "[cache]\nenabled = true\n")
    with pytest.raises(SharedStoreDirectory) as caught:
        _check(tmp_path, {"a": str(data / "staging")})
    assert (
        f"[stores.a] directory {data}/staging is tank-api's import staging directory "
        f"([import] staging_dir) {data}/staging, whose files are named by image id"
    ) in str(caught.value)
    cache = tmp_path / "cache"
    entries = f'[cache]\nenabled = true\ndir = "{cache}"\n'
    with pytest.raises(SharedStoreDirectory) as caught:
        _check(tmp_path, {"a": str(cache / "entries")}, entries)
    assert f"{cache}/entries is inside tank-api's image cache directory" in str(caught.value)
    _check(tmp_path, {"a": str(cache / "entries")}, entries.replace("true", "false"))
