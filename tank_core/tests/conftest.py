from __future__ import annotations

import threading
from collections.abc import Iterator

import attrs
import pytest

from tank import errors, hookimpl
from tank.store import Backend, ReadResult, Writer


@attrs.frozen(kw_only=True)
class MemoryConfig:
    read_chunk_size: int = 64 * 1024


class MemoryWriter(Writer):
    def __init__(self, backend: MemoryBackend, key: str) -> None:
        self.backend, self.key, self.parts = backend, key, []
        self.committed = self.aborted = False

    def write(self, chunk: bytes) -> None:
        self.parts.append(chunk)

    def commit(self) -> str:
        with self.backend.lock:
            if self.key in self.backend.objects:
                raise errors.Duplicate(f"memory://{self.key} exists")
            self.backend.objects[self.key] = b"".join(self.parts)
        self.committed = True
        return f"memory://{self.key}"

    def abort(self) -> None:
        self.aborted = True
        self.parts = []


class MemoryBackend(Backend):
    """A store for core unit tests (data held in memory)."""

    type_name = "memory"
    schemes = ("memory",)
    Config = MemoryConfig
    location_example = "memory://<image-id>"

    def __init__(self, config: MemoryConfig, *, name: str | None = None) -> None:
        super().__init__(config, name=name)
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.writers: list[MemoryWriter] = []

    def open_writer(self, image_id: str, size: int | None) -> Writer:
        if image_id in self.objects:
            raise errors.Duplicate(f"memory://{image_id} exists")
        writer = MemoryWriter(self, image_id)
        self.writers.append(writer)
        return writer

    def _key(self, location: str) -> str:
        key = location.removeprefix("memory://")
        if key not in self.objects:
            raise errors.NotFound(f"no data at {location}")
        return key

    def read(self, location: str, offset: int, length: int | None) -> ReadResult:
        data = self.objects[self._key(location)]
        end = len(data) if length is None else min(len(data), offset + length)
        start = min(offset, len(data))
        step = self.config.read_chunk_size

        def chunks() -> Iterator[bytes]:
            for pos in range(start, end, step):
                yield data[pos : min(pos + step, end)]

        return ReadResult(size=end - start, total_size=len(data), chunks=chunks())

    def remove(self, location: str) -> None:
        with self.lock:
            del self.objects[self._key(location)]

    def size_of(self, location: str) -> int:
        return len(self.objects[self._key(location)])


class MemoryPlugin:
    @hookimpl
    def tank_register_stores(self, register):  # type: ignore[no-untyped-def]
        register(MemoryBackend)


@pytest.fixture
def memory_backend() -> MemoryBackend:
    return MemoryBackend(MemoryConfig(), name="mem")
