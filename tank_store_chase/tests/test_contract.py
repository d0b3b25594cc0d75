"""The shared store contract, on real Swift and on Ceph RGW's Swift API.

Large objects start at 1 MiB here, so the contract's multi-MiB images are stored as
segments plus a manifest and its range reads cross segment boundaries.
"""

from __future__ import annotations

import uuid

import pytest

from tank.testing import BackendContract
from tank_store_chase import ChaseBackend
from tank_store_chase.location import SwiftLocation


class TestChaseContract(BackendContract):
    @pytest.fixture
    def backend(self, make_backend, view):  # type: ignore[no-untyped-def]
        self.view = view
        return make_backend()

    def list_stored(self, backend: ChaseBackend) -> set[str]:
        return self.view.stored(backend)

    def missing_location(self, backend: ChaseBackend) -> str:
        cfg = backend.config
        return SwiftLocation.for_object(cfg.auth_address, cfg.container, str(uuid.uuid4())).to_uri()
