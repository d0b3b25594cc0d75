"""The whole tank.testing store contract, for the memory store."""

import pytest

from tank.testing import BackendContract
from tank_store_memory import MemoryBackend

MiB = 1 << 20


class TestMemoryContract(BackendContract):
    # The contract streams ~100 MiB through add/get and expects memory to stay flat, but
    # this store keeps each image in RAM by design. Stream 16 MiB and allow the image
    # itself plus 8 MiB, so that a get copying the whole image again still fails.
    stream_size = 16 * MiB
    memory_limit = 24 * MiB

    @pytest.fixture
    def backend(self):
        return MemoryBackend(MemoryBackend.Config(), name="memory")

    def list_stored(self, backend):
        return backend.locations()

    def missing_location(self, backend):
        return "memory://no-such-image"
