"""Fixtures: a webhook receiver, and a tank-api whose events go to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tank.testing.api_server import ApiServer

from .receiver import Receiver

SECRET = "webhook-test-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(SECRET)
    yield server
    server.stop()


def webhook_config(tmp_path: Path, receiver: Receiver, *, more: str = "") -> Path:
    """A config file whose events go to ``receiver`` (retrying fast), and ``more``."""
    path = tmp_path / "tank.toml"
    path.write_text(
        '[notifications]\nsinks = ["webhook"]\n[notifications.webhook]\n'
        f'url = "{receiver.url}"\nsecret = "{SECRET}"\nbackoff = 0.05\n{more}'
    )
    return path


@pytest.fixture
def notifying_api(tmp_path: Path, receiver: Receiver) -> Iterator[Callable[..., ApiServer]]:
    """``notifying_api(*args)``: a tank-api sending its events to ``receiver``."""
    servers: list[ApiServer] = []

    def start(*args: str, more: str = "") -> ApiServer:
        config = webhook_config(tmp_path, receiver, more=more)
        server = ApiServer(
            tmp_path / "data", tmp_path / "tank-api.log", ["--config", str(config), *args]
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
