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
    from tank.testing.registry_conformance import TestRegistryConformance  # noqa: F401


class TestHttpRegistryOnSqliteContract(RegistryContract):
    @pytest.fixture
    def registry(self, registry_server, connect: Callable[..., HttpRegistry]) -> Registry:  # type: ignore[no-untyped-def]
        return connect(registry_server.url)


class TestHttpRegistryOnPostgresContract(RegistryContract):
    @pytest.fixture
    def registry(self, pg_registry_server, connect: Callable[..., HttpRegistry]) -> Registry:  # type: ignore[no-untyped-def]
        return connect(pg_registry_server.url)


def run_conformance(
    cwd: Path, url: str | None, *args: str, report: str = "-ra"
) -> subprocess.CompletedProcess[str]:
    """The README's command for third parties, from a directory without Tank's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
    if url is not None:
        env["TANK_TEST_REGISTRY_URL"] = url
    command = ["-m", "pytest", report, "--pyargs", "tank.testing.registry_conformance"]
    return subprocess.run(
        [sys.executable, *command, "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_conformance_runs_as_documented_outside_the_repo(registry_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = run_conformance(
        tmp_path, registry_server.url, "-k", "duplicate_id or replace_members or test_filters"
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-3000:]


def test_conformance_without_a_url_says_why_it_skipped(tmp_path: Path) -> None:
    """Nothing ran, and a CI job that forgot the variable sees a failing exit status."""
    run = run_conformance(tmp_path, None)
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, run.stdout[-3000:] + run.stderr
    assert "1 skipped" in run.stdout and " passed" not in run.stdout, run.stdout[-3000:]
    skipped = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, run.stdout[-3000:]
    assert "TANK_TEST_REGISTRY_URL is not set" in skipped[0]


def test_conformance_without_a_url_says_why_even_without_ra(tmp_path: Path) -> None:
    """A user who leaves out -ra still reads why nothing ran (pytest shows warnings)."""
    run = run_conformance(tmp_path, None, report="-rN")
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, run.stdout[-3000:] + run.stderr
    assert "TANK_TEST_REGISTRY_URL is not set" in run.stdout, run.stdout[-3000:]
