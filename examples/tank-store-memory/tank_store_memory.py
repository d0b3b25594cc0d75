"""tank-store-memory: a Tank store that keeps image data in this process's memory.

For tests and demos. Images vanish when the process exits, are not shared between
processes (several tank-api workers each see their own), and every image sits whole in
RAM: ``max_bytes`` caps how much. It is also the smallest complete store, written only
against tank-core's public API, so it doubles as the template for your own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import attrs

import tank
from tank import errors
from tank.store import Backend, ReadResult, Writer

__all__ = ["MemoryBackend"]

SCHEME = "memory"


@attrs.frozen
class _Image:
    pieces: tuple[bytes, ...]
    size: int


class MemoryBackend(Backend):
    """Images as lists of bytes pieces in a dict, guarded by one lock."""

    type_name = "memory"
    schemes = (SCHEME,)
    location_example = "memory://<image-id>"
    #: ``add`` hands us 1 MiB pieces, whatever chunks the client sent: no per-byte overhead.
    write_chunk_size = 1 << 20

    @attrs.frozen(kw_only=True)
    class Config:
        """The ``[stores.<name>]`` section of a store with ``type = "memory"``."""

        #: Most bytes held at once, counting uploads in progress; None means no limit.
        max_bytes: int | None = attrs.field(
            default=None, validator=attrs.validators.optional(attrs.validators.gt(0))
        )

    def __init__(self, config: Config, *, name: str | None = None) -> None:
        super().__init__(config, name=name)
        self._lock = threading.Lock()
        self._images: dict[str, _Image] = {}
        self._held = 0  # bytes stored plus bytes reserved by writers in progress

    # --- the four primitives ---------------------------------------------------------

    def open_writer(self, image_id: str, size: int | None) -> Writer:
        with self._lock:
            if image_id in self._images:
                raise errors.Duplicate(f"image {image_id} already has data", store=self.name)
        return _MemoryWriter(self, image_id)

    def read(self, location: str, offset: int, length: int | None) -> ReadResult:
        image = self._lookup(location)
        start = min(offset, image.size)
        end = image.size if length is None else min(image.size, offset + length)
        return ReadResult(
            size=end - start, total_size=image.size, chunks=_slice(image.pieces, start, end)
        )

    def remove(self, location: str) -> None:
        key = self._key(location)
        with self._lock:
            image = self._images.pop(key, None)
            if image is None:
                raise errors.NotFound(f"no data at {location}", store=self.name)
            self._held -= image.size

    def size_of(self, location: str) -> int:
        return self._lookup(location).size

    # --- for tests ---------------------------------------------------------------------

    def locations(self) -> set[str]:
        """Every location this store holds data for."""
        with self._lock:
            return {f"{SCHEME}://{key}" for key in self._images}

    @property
    def held_bytes(self) -> int:
        """Bytes stored plus bytes of uploads in progress."""
        with self._lock:
            return self._held

    # --- used by the writer --------------------------------------------------------------

    def _reserve(self, n: int) -> None:
        with self._lock:
            limit = self.config.max_bytes
            if limit is not None and self._held + n > limit:
                raise errors.StorageFull(
                    f"memory store {self.name!r} is full (max_bytes = {limit})", store=self.name
                )
            self._held += n

    def _release(self, n: int) -> None:
        with self._lock:
            self._held -= n

    def _publish(self, image_id: str, image: _Image) -> str:
        with self._lock:
            if image_id in self._images:  # another upload of the same image won the race
                raise errors.Duplicate(f"image {image_id} already has data", store=self.name)
            self._images[image_id] = image
        return f"{SCHEME}://{image_id}"

    def _key(self, location: str) -> str:
        self.check_location(location)  # UnknownScheme for anything but memory://
        return location.split("://", 1)[1]

    def _lookup(self, location: str) -> _Image:
        key = self._key(location)
        with self._lock:
            image = self._images.get(key)
        if image is None:
            raise errors.NotFound(f"no data at {location}", store=self.name)
        return image


class _MemoryWriter(Writer):
    """One upload: pieces collect here and become visible only at commit."""

    def __init__(self, backend: MemoryBackend, image_id: str) -> None:
        self._backend = backend
        self._image_id = image_id
        self._pieces: list[bytes] = []
        self._reserved = 0

    def write(self, chunk: bytes) -> None:
        self._backend._reserve(len(chunk))  # StorageFull before we hold the bytes
        self._reserved += len(chunk)
        self._pieces.append(chunk)

    def commit(self) -> str:
        image = _Image(tuple(self._pieces), self._reserved)
        location = self._backend._publish(self._image_id, image)
        self._pieces, self._reserved = [], 0  # now owned by the store
        return location

    def abort(self) -> None:
        self._pieces = []
        self._backend._release(self._reserved)
        self._reserved = 0


def _slice(pieces: tuple[bytes, ...], start: int, end: int) -> Iterator[bytes]:
    """Yield bytes ``start``..``end`` of the concatenated pieces, copying no whole image."""
    position = 0
    for piece in pieces:
        piece_end = position + len(piece)
        if piece_end > start and position < end:
            yield piece[max(start - position, 0) : min(end, piece_end) - position]
        if piece_end >= end:
            return
        position = piece_end


@tank.hookimpl
def tank_register_stores(register: Callable[[type[Backend]], None]) -> None:
    """Called by Tank at start-up: contribute this module's store class."""
    register(MemoryBackend)
