"""Tank's pytest plugin, as a third party's suite uses it: opted into from a conftest,
outside this repository, and never loaded for a project that did not ask for it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CONFTEST = 'pytest_plugins = ["tank.testing.plugin"]\n'

TESTS = """
import socket

import pytest

from tank.store import Backend


def test_free_port_is_free(free_port):
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", free_port)) != 0  # nothing answers
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port))  # and it can be served on


def test_read_all_reads_a_range_and_checks_the_size(read_all):
    from tank.store import ReadResult

    class Store(Backend):
        type_name, schemes, Config = "t", ("t",), object

        def __init__(self, announced):
            super().__init__(None)
            self.announced = announced

        def read(self, location, offset, length):
            data = b"0123456789"[offset:][:length]
            return ReadResult(size=self.announced, total_size=10, chunks=iter([data]))

        def size_of(self, location):
            return 10

    assert read_all(Store(announced=3), "t://x", 2, 3) == b"234"
    with pytest.raises(AssertionError, match="announced 4"):
        read_all(Store(announced=4), "t://x", 2, 3)
"""

#: Needs the fs store and SQL registry installed, as ``api`` serves them.
API_TEST = """

def test_api_serves(api):
    import requests

    assert requests.get(api.url + "/v1/images", timeout=10).json() == {"images": []}
"""


def run_pytest(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TANK_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_suite_that_opts_in_gets_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    tests, count = TESTS, 2
    if all(importlib.util.find_spec(p) for p in ("tank_store_fs", "tank_registry_sql")):
        tests, count = TESTS + API_TEST, 3
    (tmp_path / "test_theirs.py").write_text(textwrap.dedent(tests))
    run = run_pytest(tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert f"{count} passed" in run.stdout, run.stdout[-4000:]


def test_a_suite_that_does_not_opt_in_does_not_get_them(tmp_path: Path) -> None:
    (tmp_path / "test_theirs.py").write_text("def test_x(free_port):\n    pass\n")
    run = run_pytest(tmp_path)
    assert run.returncode == 1 and "fixture 'free_port' not found" in run.stdout
    plugins = importlib.metadata.entry_points(group="pytest11")
    assert not [ep for ep in plugins if ep.value.startswith("tank")]
