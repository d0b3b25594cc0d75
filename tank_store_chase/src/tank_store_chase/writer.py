"""Writing one image: a single streamed PUT, or segments plus a manifest.

* Known size <= ``large_object_size``: one PUT, streamed as chunks arrive. The last chunk
  is held back until :meth:`ChaseWriter.commit`, so Swift cannot complete the object
  (and make it visible) before Tank has verified size and checksum.
* Larger, or unknown length: segments of ``large_object_chunk_size`` bytes, each one
  streamed PUT, into ``<container>_segments`` under ``<object>/<upload id>/``; then a
  manifest at commit: SLO when the cluster has it (``/info``), else DLO. The next
  segment starts while the previous one's PUT is still finishing (two in flight).
* Unknown length that ends within the first MiB: one plain PUT, no manifest.

An object written in one PUT reports its MD5: Swift's ETag of it (``reports_md5``), so
Tank need not hash every byte a second time. Segmented objects do not (a manifest's
ETag is not the MD5 of the content).

Each write gets an upload id, stored as ``X-Object-Meta-Tank-Upload`` on the final
object: abort deletes every segment it started and the final object only if it carries
that id, so a concurrent upload of the same image is never touched.
"""

from __future__ import annotations

import collections
import uuid
from typing import TYPE_CHECKING

from tank.store import Writer
from tank_store_chase.client import UPLOAD_META, Segment, SwiftClient
from tank_store_chase.upload import Buffer, StreamedPut

if TYPE_CHECKING:
    from tank_store_chase.location import SwiftLocation

#: Unknown-length data up to this size (capped by the configured sizes) is one PUT.
SMALL = 1 << 20
#: Segment PUTs of one upload allowed to be finishing while the next one streams.
FINISHING = 1


class ChaseWriter(Writer):
    """Streams one image into Swift; see the module docstring for the layout."""

    def __init__(
        self,
        swift: SwiftClient,
        location: SwiftLocation,
        size: int | None,
        segment_size: int | None,
    ) -> None:
        self._swift = swift
        self._location = location
        self._size = size
        #: None: one PUT (known size). Else segments of this size (after the small probe
        #: for unknown length).
        self._segment_size = segment_size
        self.reports_md5 = segment_size is None and swift.config.server_md5
        self._upload_id = uuid.uuid4().hex
        self._segments_container = swift.segments_container(location.container)
        self._small = min(SMALL, swift.config.large_object_size, segment_size or SMALL)
        self._probe: list[Buffer] | None = [] if size is None else None
        self._probe_bytes = 0
        self._held: Buffer | None = None  # single PUT: the chunk kept back until commit
        self._single: StreamedPut | None = None
        self._current: StreamedPut | None = None  # segment being written
        self._filled = 0
        self._segments: list[Segment] = []
        self._finishing: collections.deque[tuple[Segment, StreamedPut]] = collections.deque()
        self._final_attempted = False

    # --- Writer -----------------------------------------------------------------------

    def write(self, chunk: bytes) -> None:
        if self._probe is not None:
            self._probe.append(chunk)
            self._probe_bytes += len(chunk)
            if self._probe_bytes > self._small:
                probe, self._probe = self._probe, None
                for piece in probe:
                    self._write_segments(piece)
        elif self._segment_size is None:
            if self._held is not None:
                self._single_put().write(self._held)
            self._held = chunk
        else:
            self._write_segments(chunk)

    def commit(self) -> str:
        loc = self._location
        self._swift.check_absent(loc)  # narrows the race where If-None-Match is ignored
        headers = self._final_headers()
        if self._probe is not None or (self._segment_size is None and self._single is None):
            # Everything is still here (small unknown length, or at most one chunk): one
            # PUT that swiftclient can replay on errors.
            pieces = self._probe if self._probe is not None else [self._held or b""]
            self._final_attempted = True
            self.stored_md5 = self._swift.put_small(loc, b"".join(pieces), headers)
        elif self._segment_size is None:
            put = self._single_put()
            self._final_attempted = True
            if self._held is not None:
                put.write(self._held)
                self._held = None
            put.end_input()
            self.stored_md5 = put.wait()
        else:
            self._finish_segments()
            self._final_attempted = True
            self._swift.put_manifest(loc, self._segments_container, self._segments, headers)
        return loc.to_uri()

    def abort(self) -> None:
        puts = [put for _, put in self._finishing]
        puts += [p for p in (self._single, self._current) if p is not None]
        self._finishing.clear()
        self._current = self._single = None
        timeout = self._swift.config.timeout + self._swift.config.connect_timeout
        for put in puts:
            put.cancel(timeout)
        self._probe = None
        self._held = None
        if self._final_attempted:
            self._swift.delete_if_ours(self._location, self._upload_id)
        self._swift.delete_objects(self._segments_container, [s.name for s in self._segments])

    # --- one PUT ----------------------------------------------------------------------

    def _single_put(self) -> StreamedPut:
        if self._single is None:
            loc = self._location
            self._single = self._swift.start_put(
                loc.container, loc.obj, length=self._size, headers=self._final_headers()
            )
        return self._single

    def _final_headers(self) -> dict[str, str]:
        return {
            "If-None-Match": "*",
            UPLOAD_META: self._upload_id,
            "Content-Type": "application/octet-stream",
        }

    # --- segments ---------------------------------------------------------------------

    def _write_segments(self, chunk: Buffer) -> None:
        assert self._segment_size is not None
        view = memoryview(chunk)
        while view:
            if self._current is None:
                self._start_segment()
            assert self._current is not None
            piece = view[: self._segment_size - self._filled]
            view = view[len(piece) :]
            self._current.write(piece)
            self._filled += len(piece)
            self._segments[-1].size = self._filled
            if self._filled == self._segment_size:
                self._end_segment()

    def _start_segment(self) -> None:
        assert self._segment_size is not None
        while len(self._finishing) > FINISHING:
            self._reap()
        index = len(self._segments)
        length = None
        if self._size is not None:
            length = min(self._segment_size, self._size - index * self._segment_size)
        segment = Segment(f"{self._location.obj}/{self._upload_id}/{index:08d}")
        self._segments.append(segment)
        self._current = self._swift.start_put(
            self._segments_container,
            segment.name,
            length=length,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._filled = 0

    def _end_segment(self) -> None:
        assert self._current is not None
        self._current.end_input()
        self._finishing.append((self._segments[-1], self._current))
        self._current = None
        self._filled = 0

    def _reap(self) -> None:
        segment, put = self._finishing.popleft()
        segment.etag = put.wait()

    def _finish_segments(self) -> None:
        if self._current is not None:
            self._end_segment()
        while self._finishing:
            self._reap()
