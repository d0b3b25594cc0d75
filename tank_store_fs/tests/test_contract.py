"""The tank.testing store contract, in both write modes (O_TMPFILE and named temp files),
thick and thin-provisioned."""

from __future__ import annotations

import pytest

from tank.store import Backend
from tank.testing import BackendContract
from tank_store_fs import FilesystemBackend

from .conftest import make_backend, stored


class TestFilesystemContract(BackendContract):
    @pytest.fixture
    def backend(self, datadir, mode) -> Backend:  # type: ignore[no-untyped-def]
        return make_backend(datadir, mode)

    def list_stored(self, backend: Backend) -> set[str]:
        assert isinstance(backend, FilesystemBackend)
        return stored(backend.datadir)

    def missing_location(self, backend: Backend) -> str:
        return f"file://{backend.datadir}/00000000-0000-4000-8000-000000000000"  # type: ignore[attr-defined]


class TestThinFilesystemContract(TestFilesystemContract):
    """The same contract with ``thin_provisioning = true`` (zero blocks left as holes)."""

    @pytest.fixture
    def backend(self, datadir, mode) -> Backend:  # type: ignore[no-untyped-def]
        return make_backend(datadir, mode, thin_provisioning=True)
