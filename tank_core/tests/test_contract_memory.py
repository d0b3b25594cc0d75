"""The store contract suite, run against the in-test memory store.

This checks the suite itself and the ``Backend.add``/``get`` templates every store shares.
"""

from __future__ import annotations

import pytest

from tank.testing import BackendContract


class TestMemoryContract(BackendContract):
    # The memory store holds what it stores, by design: stream less, allow that much.
    stream_size = 12 << 20  # held twice at commit (parts + joined)
    memory_limit = 40 << 20

    @pytest.fixture
    def backend(self, memory_backend):  # type: ignore[no-untyped-def]
        return memory_backend

    def list_stored(self, backend):  # type: ignore[no-untyped-def]
        return set(backend.objects)

    def missing_location(self, backend):  # type: ignore[no-untyped-def]
        return "memory://00000000-0000-0000-0000-000000000000"
