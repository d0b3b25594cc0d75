"""Reading one image: a range of its snapshot, streamed with aio reads ahead.

Each read holds its image, I/O context and cluster lease until the range is exhausted or
the read is closed, so a download never blocks another operation's cleanup.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tank_store_rbd.cluster import Handles, error_for, translate
from tank_store_rbd.location import RBDLocation

if TYPE_CHECKING:
    from tank_store_rbd.backend import RBDBackend

log = logging.getLogger(__name__)


class SnapshotReader(Iterator[bytes]):
    """Chunks of ``[start, end)`` of an open image, with ``read_ahead`` bytes of aio reads
    in flight (``read_ahead // io_size`` reads, at least one).

    Owns the image, its I/O context and the cluster lease, and closes them when the
    range is exhausted, on :meth:`close`, or when garbage-collected. Each read is at most
    ``io_size`` bytes; reads after the first are aligned to ``io_size``.
    """

    def __init__(
        self,
        backend: RBDBackend,
        loc: RBDLocation,
        image: Any,
        start: int,
        end: int,
        resources: Handles,
    ) -> None:
        self._backend = backend
        self._loc = loc
        self._image = image
        self._next = start
        self._end = end
        self._resources: Handles | None = resources
        self._io_size = backend.config.io_size
        self._depth = max(1, backend.config.read_ahead // self._io_size)
        self._pending: collections.deque[tuple[Any, list[bytes]]] = collections.deque()

    def __next__(self) -> bytes:
        if self._resources is None:
            raise StopIteration
        while len(self._pending) < self._depth and self._next < self._end:
            self._submit()
        if not self._pending:
            self.close()
            raise StopIteration
        completion, box = self._pending.popleft()
        completion.wait_for_complete_and_cb()
        code = completion.get_return_value()
        if code < 0 or not box:
            self.close()
            raise error_for(
                code,
                f"cannot read {self._loc}: error {-code}",
                store=self._backend.name,
                location=str(self._loc),
            )
        return box[0]

    def _submit(self) -> None:
        offset = self._next
        length = min(self._end, (offset // self._io_size + 1) * self._io_size) - offset
        box: list[bytes] = []
        try:
            completion = self._image.aio_read(offset, length, lambda _c, data: box.append(data))
        except self._backend.rbd.Error as exc:
            self.close()
            raise translate(
                exc, f"cannot read {self._loc}", store=self._backend.name, location=str(self._loc)
            ) from None
        self._pending.append((completion, box))
        self._next = offset + length

    def close(self) -> None:
        """Wait for reads in flight (librbd writes into their buffers), then let go."""
        resources, self._resources = self._resources, None
        if resources is None:
            return
        try:
            while self._pending:
                self._pending.popleft()[0].wait_for_complete_and_cb()
        finally:
            resources.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            log.exception("store %s: closing a read of %s failed", self._backend.name, self._loc)
