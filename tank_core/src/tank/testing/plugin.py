"""Tank's pytest plugin: the fixtures store authors and Tank's own suites share.

Opt in from a ``conftest.py`` (pytest reads ``pytest_plugins`` in the rootdir's conftest
only)::

    pytest_plugins = ["tank.testing.plugin"]

It is not registered as a ``pytest11`` entry point on purpose: installing tank-core must
not add fixtures, or a tank-api start-up, to every other project's test run.

Fixtures:

``read_all``
    :func:`tank.testing.read_all`: ``read_all(backend, location[, offset, length])`` or
    ``read_all(service, image_id, ...)``, the whole stream as bytes, its announced size
    checked.
``free_port``
    A loopback TCP port nothing listens on (an unreachable endpoint, or one to serve on).
``api``
    A running ``tank-api`` (the installed fs store and SQL registry, in a temporary data
    dir), one per test module; tests keep apart by unique names. When the module is done
    its log must show no 500.
``start_api``
    ``start_api(*args)`` starts a ``tank-api`` of the test's own with extra command-line
    arguments (``start_api("--auth")``, ``start_api("--config", str(path))``), stopped
    after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tank.testing.api_server import ApiServer
from tank.testing.ports import free_port as _free_port
from tank.testing.reading import read_all as _read_all


@pytest.fixture
def read_all() -> Callable[..., bytes]:
    """``read_all(backend, location[, offset, length])`` or ``read_all(service, image_id)``:
    the whole stream as bytes, its length checked against the announced size."""
    return _read_all


@pytest.fixture
def free_port() -> int:
    """A loopback TCP port nothing listens on."""
    return _free_port()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A running tank-api (fs store, SQL registry) shared by the test module; its log
    must show no 500 when the module is done."""
    root = tmp_path_factory.mktemp("tank-api")
    server = ApiServer(root / "data", root / "tank-api.log")
    yield server
    server.stop()
    assert "unexpected error" not in server.log(), "tank-api answered 500:\n" + server.log()


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """``start_api(*args)``: a tank-api of the test's own (``"--auth"``, ``"--config",
    path``...), stopped after the test."""
    servers: list[ApiServer] = []

    def start(*args: str) -> ApiServer:
        n = len(servers)
        server = ApiServer(tmp_path / f"data{n}", tmp_path / f"tank-api{n}.log", args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
