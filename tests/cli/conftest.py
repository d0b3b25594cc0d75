"""A real ``tank-api`` process on a free loopback port, as a user would start it.

The ``api`` and ``start_api`` fixtures come from ``tests/conftest.py``: one server serves
the whole module (tests keep apart by unique names and properties); tests that must see an
empty Tank (``clear``) start their own with ``start_api``. ``client`` is one client per
Images API version: tests taking it run against v2 and v1. Tests taking ``api_version``
run the ``tank`` command (``run``) with TANK_API_VERSION set to it, as a user would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from tank.cli.main import cli
from tank.client import Client
from tank.testing import free_port
from tank.testing.api_server import ApiServer, find_script

__all__ = ["FORMATS", "ApiServer", "run"]

#: What v2, as Glance, needs before it takes an image's data.
FORMATS = ("disk_format=raw", "container_format=bare")


@pytest.fixture(params=["v2", "v1"])
def api_version(request: pytest.FixtureRequest) -> str:
    """Each Images API version in turn."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _speak(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests taking ``api_version`` run the CLI with TANK_API_VERSION set to it."""
    if "api_version" in request.fixturenames:
        monkeypatch.setenv("TANK_API_VERSION", request.getfixturevalue("api_version"))


def run(url: str, *args: str, input: bytes | None = None, code: int = 0) -> Result:
    """``tank --url url args...`` in click's runner; it must exit with ``code``."""
    result = CliRunner().invoke(cli, ["--url", url, *args], input=input)
    assert result.exit_code == code, (result.output, result.stderr, result.exception)
    return result


@pytest.fixture
def client(api: ApiServer, api_version: str) -> Iterator[Client]:
    with Client(api.url, api=api_version) as c:
        yield c


@pytest.fixture
def tag() -> str:
    """A unique value for a property, so a test lists only the images it made."""
    return uuid.uuid4().hex


@pytest.fixture
def tank_script() -> str:
    tank = find_script("tank")
    assert tank is not None, "the tank console script is not installed (pip install -e tank_core)"
    return tank


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"
