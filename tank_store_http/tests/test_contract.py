"""The read parts of the tank.testing store contract, against a real HTTP server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tank.store import Backend
from tank.testing import BackendContract
from tank_store_http import HttpBackend


class TestHttpContract(BackendContract):
    """Write tests skip (the store is read-only); read and read-only tests run."""

    route = "files"

    @pytest.fixture
    def backend(self, server) -> Iterator[Backend]:
        self.server = server
        # The test server is on loopback, which the store refuses by default.
        backend = HttpBackend(HttpBackend.Config(allow_private_networks=True), name="http")
        yield backend
        backend.close()

    def seed(self, backend: Backend, data: bytes) -> str:
        name = f"{uuid.uuid4()}.img"
        (self.server.root / name).write_bytes(data)
        return self.server.url(f"{self.route}/{name}")

    def list_stored(self, backend: Backend) -> set[str]:
        return set(os.listdir(self.server.root))

    def missing_location(self, backend: Backend) -> str:
        return self.server.url(f"{self.route}/missing-{uuid.uuid4()}.img")


class TestHttpContractRangeIgnored(TestHttpContract):
    """The same contract when the server ignores Range: the store skips and trims itself."""

    route = "norange"


class TestHttpContractHeadRefused(TestHttpContract):
    """The same contract when HEAD is refused: sizes come from a one-byte ranged GET."""

    route = "nohead"
