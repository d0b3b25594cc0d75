"""The shared store contract, on a real Ceph pool (memstore: data lives in the OSD's RAM).

``list_stored`` lists the pool (``rbd ls``) but keeps only the names this test asked the
store to create: the pool is shared with other runs, and a partial image left behind by
a failed upload still shows up because its name is recorded before the image exists.
The default sizes are kept: the largest image is 96 MiB and each test's images are
removed when it ends, so the 8 GiB memstore is never close to full.
"""

from __future__ import annotations

import uuid

import pytest

from tank.testing import BackendContract


class TestRBDContract(BackendContract):
    @pytest.fixture
    def backend(self, make_backend):  # type: ignore[no-untyped-def]
        return make_backend()

    @pytest.fixture(autouse=True)
    def _pool(self, ceph):  # type: ignore[no-untyped-def]
        self._ceph = ceph

    def list_stored(self, backend):  # type: ignore[no-untyped-def]
        return self._ceph.images() & backend.created

    def missing_location(self, backend):  # type: ignore[no-untyped-def]
        return f"rbd://{self._ceph.fsid}/{self._ceph.pool}/{uuid.uuid4()}/snap"
