"""Streaming an object out of S3: one ranged GET, resumed if the connection breaks.

botocore retries requests, but not a response body that breaks half-way. A download
that breaks is resumed here, with backoff, from the last byte received, and only from
the same object (``If-Match`` its ETag).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tank import errors
from tank.store import ReadResult
from tank.streams import slice_chunks
from tank_store_s3.client import error_code, library_errors, translate

if TYPE_CHECKING:
    from tank_store_s3.backend import S3Backend
    from tank_store_s3.location import S3Location

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class PastTheEnd(Exception):
    """A Range that starts at or after the end of the object (HTTP 416)."""


def open_read(backend: S3Backend, loc: S3Location, offset: int, length: int | None) -> ReadResult:
    """A :class:`ReadResult` for ``length`` bytes (None: to the end) from ``offset``."""
    if length == 0:
        return ReadResult(0, backend.head(loc, "reading")["ContentLength"], iter(()))
    wanted = None
    if offset or length is not None:
        wanted = f"bytes={offset}-{'' if length is None else offset + length - 1}"
    try:
        response = get_object(backend, loc, wanted)
    except PastTheEnd:
        return ReadResult(0, backend.head(loc, "reading")["ContentLength"], iter(()))
    size = response["ContentLength"]
    ranged = _CONTENT_RANGE.fullmatch(response.get("ContentRange") or "")
    start, total = (int(ranged[1]), int(ranged[3])) if ranged else (0, size)
    download = Download(backend, loc, response, start)
    chunks = download.chunks()
    if wanted and not ranged:  # the server ignored Range: skip and trim here
        chunks = slice_chunks(chunks, offset, length)
        size = max(0, (total if length is None else min(total, offset + length)) - offset)
    return ReadResult(size=size, total_size=total, chunks=chunks, on_close=download.close)


def get_object(
    backend: S3Backend, loc: S3Location, wanted: str | None, etag: str | None = None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Bucket": loc.bucket, "Key": loc.key}
    if wanted:
        kwargs["Range"] = wanted
    if etag:
        kwargs["IfMatch"] = etag
    try:
        return backend.client.get_object(**kwargs)  # type: ignore[no-any-return]
    except library_errors() as exc:
        code, status = error_code(exc)
        if code == "InvalidRange" or status == 416:
            raise PastTheEnd(wanted) from exc
        if etag and (code == "PreconditionFailed" or status == 412):
            raise errors.StoreError(
                f"store {backend.name!r}: {loc.redacted()} changed while being read",
                store=backend.name,
            ) from exc
        raise translate(exc, backend, "reading", loc.redacted()) from exc


class Download:
    """The body of one GET response, resumed with new GETs when it breaks."""

    def __init__(self, backend: S3Backend, loc: S3Location, response: Any, start: int) -> None:
        self._backend = backend
        self._loc = loc
        self._body = response["Body"]
        self._etag = response.get("ETag")
        self._pos = start
        self._end = start + response["ContentLength"]

    def chunks(self) -> Iterator[bytes]:
        from botocore import exceptions as bx

        broken = (bx.HTTPClientError, bx.IncompleteReadError, bx.ResponseStreamingError)
        chunk_size = self._backend.read_chunk_size
        attempts = self._backend.config.max_attempts
        failures = 0
        try:
            while True:
                try:
                    for chunk in self._body.iter_chunks(chunk_size):
                        self._pos += len(chunk)
                        yield chunk
                    return
                except broken as exc:
                    failures += 1
                    if failures >= attempts or self._pos >= self._end:
                        where = self._loc.redacted()
                        raise translate(exc, self._backend, "reading", where) from exc
                    self._resume(exc, failures)
        finally:
            self.close()

    def close(self) -> None:
        self._body.close()

    def _resume(self, exc: BaseException, failures: int) -> None:
        log.warning(
            "store %s: reading %s broke at byte %d (%s); resuming",
            self._backend.name,
            self._loc.redacted(),
            self._pos,
            type(exc).__name__,
        )
        self._body.close()
        time.sleep(min(0.2 * 2**failures, 5.0))
        wanted = f"bytes={self._pos}-{self._end - 1}"
        self._body = get_object(self._backend, self._loc, wanted, self._etag)["Body"]
