"""Streaming an image into S3 with bounded memory.

``Backend.add`` calls :meth:`S3Writer.write` from one thread. The writer keeps at most
one part of data; each full part goes to a small thread pool that uploads it while the
next part is being received. A semaphore with one slot per thread bounds the parts in
flight, so an upload holds at most about ``(thread_pools + 1) x part size`` bytes (the
parts in flight and the part being received). Parts and single PUTs are sent from the
chunks as they were received (:class:`~tank_store_s3.body.PartBody`), never joined.

* Known size up to ``large_object_size``: buffered and sent in one PUT at commit.
* Larger, or unknown length: a multipart upload, started when the first part is full
  (an unknown-length image smaller than one part still goes up in one PUT).
* Commit is conditional (``If-None-Match: *``) and preceded by a HEAD for servers that
  ignore the condition on multipart completion (Ceph RGW), so existing data is never
  overwritten. Abort aborts the multipart upload and checks that no part is left.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from tank import errors
from tank.store import Writer
from tank_store_s3.body import PartBody
from tank_store_s3.client import error_code, is_no_such_bucket, library_errors, translate

if TYPE_CHECKING:
    from tank_store_s3.backend import S3Backend
    from tank_store_s3.location import S3Location

log = logging.getLogger(__name__)

MiB = 1 << 20
#: S3's limits: smallest part (but the last), largest part, most parts per upload.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
#: Unknown-length uploads double their part size every this many parts (80 GiB at 8 MiB
#: parts before the first doubling; 10,000 parts then reach several TiB).
PARTS_PER_DOUBLING = 1_000

Buffer = bytes | memoryview


class S3Writer(Writer):
    """One image upload; see the module docstring."""

    def __init__(self, backend: S3Backend, location: S3Location, size: int | None) -> None:
        config = backend.config
        self._backend = backend
        self._client = backend.client
        self._loc = location
        self._where = location.redacted()
        self._single = size is not None and size <= config.large_object_size
        self._fixed_part = (
            None
            if size is None
            else max(config.large_object_chunk_size, _round_up(-(-size // MAX_PARTS), MiB))
        )
        self._base_part = config.large_object_chunk_size
        self._threads = config.thread_pools
        self._chunks: collections.deque[Buffer] = collections.deque()
        self._buffered = 0
        self._upload_id: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.Semaphore(self._threads)
        self._parts: list[Future[dict[str, Any]]] = []
        #: The first error a part upload hit; the next write or commit raises it.
        self._failure: errors.TankError | None = None
        self._stopping = False
        #: A commit request went out: the object may exist even if it raised.
        self._commit_sent = False
        #: The object at our key is someone else's: abort must not delete it.
        self._not_ours = False

    # --- Writer --------------------------------------------------------------------------

    def write(self, chunk: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._single:
            return
        while self._buffered >= (part_size := self._next_part_size()):
            self._send_part(part_size)

    def commit(self) -> str:
        if self._failure is not None:
            raise self._failure
        if self._upload_id is None:
            self._put(self._take_pieces(self._buffered))
        else:
            if self._buffered:
                self._send_part(self._buffered)
            self._complete([future.result() for future in self._parts])
        return self._loc.to_uri()

    def abort(self) -> None:
        self._stopping = True
        self._chunks.clear()
        self._buffered = 0
        try:
            self._shutdown_pool()
            if self._upload_id is not None:
                self._abort_upload()
            if self._commit_sent and not self._not_ours:
                self._client.delete_object(Bucket=self._loc.bucket, Key=self._loc.key)
        except Exception:
            log.exception("store %s: cleaning up %s failed", self._backend.name, self._where)

    # --- single PUT ----------------------------------------------------------------------

    def _put(self, pieces: list[Buffer]) -> None:
        self._commit_sent = True
        size = sum(len(piece) for piece in pieces)
        try:
            self._call_with_bucket(
                lambda: self._client.put_object(
                    Bucket=self._loc.bucket,
                    Key=self._loc.key,
                    Body=PartBody(pieces),  # a new stream for each call
                    ContentLength=size,
                    IfNoneMatch="*",
                )
            )
        except errors.Duplicate:
            # A retried PUT whose first try landed also fails the condition: is it ours?
            md5 = hashlib.md5(usedforsecurity=False)
            for piece in pieces:
                md5.update(piece)
            if not self._is_ours(f'"{md5.hexdigest()}"'):
                raise

    # --- multipart -----------------------------------------------------------------------

    def _next_part_size(self) -> int:
        if self._fixed_part is not None:
            return self._fixed_part
        doublings = len(self._parts) // PARTS_PER_DOUBLING
        return min(self._base_part << doublings, MAX_PART_SIZE)

    def _send_part(self, size: int) -> None:
        """Hand the next ``size`` buffered bytes to the pool, waiting for a free slot."""
        if self._upload_id is None:
            self._start_upload()
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise errors.ImageTooLarge(
                f"store {self._backend.name!r}: image needs more than {MAX_PARTS} parts "
                "of large_object_chunk_size; raise it",
                store=self._backend.name,
            )
        self._slots.acquire()
        if self._failure is not None:
            self._slots.release()
            raise self._failure
        data = PartBody(self._take_pieces(size))
        assert self._pool is not None
        self._parts.append(self._pool.submit(self._upload_part, number, data))

    def _start_upload(self) -> None:
        response = self._call_with_bucket(
            lambda: self._client.create_multipart_upload(Bucket=self._loc.bucket, Key=self._loc.key)
        )
        self._upload_id = response["UploadId"]
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="tank-s3-part")

    def _upload_part(self, number: int, data: PartBody) -> dict[str, Any]:
        try:
            if self._stopping:
                raise errors.StoreError("upload aborted", store=self._backend.name)
            response = self._client.upload_part(
                Bucket=self._loc.bucket,
                Key=self._loc.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,  # botocore seeks back to 0 before each try
                ContentLength=len(data),
            )
            return {"PartNumber": number, "ETag": response["ETag"]}
        except Exception as exc:
            failure = translate(exc, self._backend, f"uploading part {number} of", self._where)
            if self._failure is None:
                self._failure = failure
            raise failure from exc
        finally:
            self._slots.release()

    def _complete(self, parts: list[dict[str, Any]]) -> None:
        self._shutdown_pool()
        if self._backend.exists(self._loc):
            self._not_ours = True
            raise self._duplicate()
        self._commit_sent = True
        try:
            self._call(
                "completing",
                lambda: self._client.complete_multipart_upload(
                    Bucket=self._loc.bucket,
                    Key=self._loc.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                ),
            )
        except errors.Duplicate:
            if not self._is_ours(_multipart_etag(parts)):
                raise
        self._upload_id = None

    def _abort_upload(self) -> None:
        """Abort, then make sure: S3 may keep parts that were in flight during an abort."""
        for _ in range(3):
            try:
                self._client.abort_multipart_upload(
                    Bucket=self._loc.bucket, Key=self._loc.key, UploadId=self._upload_id
                )
                self._client.list_parts(
                    Bucket=self._loc.bucket, Key=self._loc.key, UploadId=self._upload_id
                )
            except library_errors() as exc:
                code, status = error_code(exc)
                if code in ("NoSuchUpload", "NoSuchKey") or status == 404:
                    self._upload_id = None
                    return
                raise translate(exc, self._backend, "aborting upload of", self._where) from exc
        log.warning(
            "store %s: multipart upload of %s still listed after 3 aborts",
            self._backend.name,
            self._where,
        )

    def _shutdown_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    # --- helpers -------------------------------------------------------------------------

    def _take_pieces(self, size: int) -> list[Buffer]:
        """The next ``size`` buffered bytes, as the chunks (or views of them) they came in."""
        pieces: list[Buffer] = []
        needed = size
        while needed:
            chunk = self._chunks[0]
            if len(chunk) <= needed:
                pieces.append(self._chunks.popleft())
                needed -= len(chunk)
            else:
                view = memoryview(chunk)
                pieces.append(view[:needed])
                self._chunks[0] = view[needed:]
                needed = 0
        self._buffered -= size
        return pieces

    def _call(self, doing: str, operation: Callable[[], Any]) -> Any:
        try:
            return operation()
        except library_errors() as exc:
            failure = translate(exc, self._backend, doing, self._where)
            if isinstance(failure, errors.Duplicate):
                self._not_ours = True
                raise self._duplicate() from exc
            raise failure from exc

    def _call_with_bucket(self, operation: Callable[[], Any]) -> Any:
        """Call ``operation``; if the bucket is missing, create it (if we may) and retry."""
        try:
            return self._call("writing", operation)
        except errors.NotFound as exc:
            if not is_no_such_bucket(exc.__cause__):
                raise
            if not self._backend.config.create_bucket_on_put:
                raise self._backend.missing_bucket() from exc
        self._backend.create_bucket()
        return self._call("writing", operation)

    def _is_ours(self, etag: str) -> bool:
        """After a failed condition: True if the object there is what we just wrote."""
        try:
            head = self._backend.head(self._loc, "checking")
        except errors.NotFound:
            return False
        if head.get("ETag") == etag:
            self._not_ours = False
            return True
        self._not_ours = True
        return False

    def _duplicate(self) -> errors.Duplicate:
        return errors.Duplicate(
            f"store {self._backend.name!r}: {self._where} already exists",
            store=self._backend.name,
        )


def _multipart_etag(parts: list[dict[str, Any]]) -> str:
    """The ETag S3 gives an object completed from ``parts``: md5 of the part md5s, -N."""
    digests = b"".join(bytes.fromhex(p["ETag"].strip('"')) for p in parts)
    return f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit
