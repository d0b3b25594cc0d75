"""The registry contract through HttpRegistry against live ``tank-registry`` processes
(SQLite and PostgreSQL), and against any registry named by ``TANK_TEST_REGISTRY_URL``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tank.registry import Registry
from tank.registry_http.client import HttpRegistry
from tank.testing import RegistryContract

if os.environ.get("TANK_TEST_REGISTRY_URL"):
    # A third party's registry: the same class `pytest --pyargs` runs (see its module).
    from tank.registry_http.conformance import TestRegistryConformance  # noqa: F401


class TestHttpRegistryOnSqliteContract(RegistryContract):
    @pytest.fixture
    def registry(self, registry_server, connect: Callable[..., HttpRegistry]) -> Registry:  # type: ignore[no-untyped-def]
        return connect(registry_server.url)


class TestHttpRegistryOnPostgresContract(RegistryContract):
    @pytest.fixture
    def registry(self, pg_registry_server, connect: Callable[..., HttpRegistry]) -> Registry:  # type: ignore[no-untyped-def]
        return connect(pg_registry_server.url)


def test_conformance_runs_as_documented_outside_the_repo(registry_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The README's command for third parties, from a directory without Tank's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
    env["TANK_TEST_REGISTRY_URL"] = registry_server.url
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "tank.registry_http.conformance",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "duplicate_id or replace_members or test_filters",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-3000:]
