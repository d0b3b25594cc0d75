"""A real tank-api process (fs store + SQL registry) for the HTTP API tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tank.testing.api_server import ApiServer


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("tank-api")
    server = ApiServer(root / "data", root / "tank-api.log")
    yield server
    server.stop()
    assert "unexpected error" not in server.log(), "tank-api answered 500:\n" + server.log()


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    servers: list[ApiServer] = []

    def start(*args: str) -> ApiServer:
        n = len(servers)
        server = ApiServer(tmp_path / f"data{n}", tmp_path / f"tank-api{n}.log", args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
