"""The Swift operations the chase store is made of, each translated into tank.errors.

:class:`SwiftClient` owns the connection pool and the cached ``/info`` answer; it keeps
no per-request state, so one instance serves concurrent uploads and downloads.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tank import errors
from tank.store import ReadResult
from tank.streams import ReadAhead
from tank_store_chase.connections import (
    ClusterInfo,
    ConnectionPool,
    cluster_info,
    import_swiftclient,
    status_of,
    translate,
)
from tank_store_chase.upload import StreamedPut

if TYPE_CHECKING:
    from swiftclient.client import Connection

    from tank_store_chase.location import SwiftLocation

log = logging.getLogger(__name__)
T = TypeVar("T")

SEGMENTS_SUFFIX = "_segments"
#: Metadata on every object Tank completes: the id of the upload that wrote it.
UPLOAD_META = "X-Object-Meta-Tank-Upload"
#: Parallel DELETEs when removing the segments of one image.
DELETE_WORKERS = 4
#: Objects per listing request.
LIST_PAGE = 1000
#: Bytes a download reads from Swift ahead of what tank-api has sent on.
READ_AHEAD = 4 << 20


@attrs.define
class Segment:
    """One uploaded segment of a large object, as Swift confirmed it."""

    name: str
    size: int = 0
    etag: str | None = None


class SwiftClient:
    """Swift operations for one configured store (``config``: ``ChaseBackend.Config``)."""

    def __init__(self, config: Any, store: str, read_chunk_size: int) -> None:
        self.config = config
        self.store = store
        self.read_chunk_size = read_chunk_size
        self.pool = ConnectionPool(config, store)
        self._info: ClusterInfo | None = None
        self._info_lock = threading.Lock()

    # --- plumbing ---------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[Connection], T], location: str | None = None) -> T:
        """Run ``fn`` on a borrowed connection; library errors become tank.errors."""
        with self.pool.connection() as conn:
            try:
                return fn(conn)
            except Exception as exc:
                raise self.translate(exc, what, location) from exc

    def translate(self, exc: BaseException, what: str, location: str | None = None) -> Exception:
        return translate(exc, what, config=self.config, store=self.store, location=location)

    def close(self) -> None:
        self.pool.close()

    def info(self) -> ClusterInfo:
        """The cluster's large-object support, asked once (``/info``)."""
        kind = self.config.large_object_manifest
        if kind != "auto":
            return ClusterInfo(slo=kind == "slo")
        with self._info_lock:
            if self._info is None:
                self._info = self.call("asking Swift for /info", cluster_info)
                log.info("store %s: swift SLO support: %s", self.store, self._info.slo)
            return self._info

    # --- containers -----------------------------------------------------------------

    def ensure_container(self, conn: Connection, container: str) -> None:
        """HEAD ``container`` (refreshing an expired token), creating it if allowed."""
        client = import_swiftclient()
        try:
            conn.head_container(container)
        except client.ClientException as exc:
            if exc.http_status != 404:
                raise
            if not self.config.create_container_on_put:
                raise errors.BadStoreConfig(
                    f"swift container {container!r} does not exist and "
                    f"create_container_on_put is false in [stores.{self.store}]",
                    store=self.store,
                ) from None
            conn.put_container(container)
            log.info("store %s: created swift container %s", self.store, container)

    # --- objects ---------------------------------------------------------------------

    def head(self, loc: SwiftLocation, what: str) -> dict[str, str]:
        return self.call(what, lambda c: c.head_object(loc.container, loc.obj), loc.redacted())

    def check_absent(self, loc: SwiftLocation) -> None:
        """Duplicate if ``loc`` has data; NotFound (no container yet) is fine."""
        try:
            self.head(loc, "checking for existing data")
        except errors.NotFound:
            return
        raise errors.Duplicate(
            f"store {self.store!r} already holds data at {loc.redacted()}",
            store=self.store,
            location=loc.redacted(),
        )

    def start_put(
        self, container: str, name: str, *, length: int | None, headers: dict[str, str]
    ) -> StreamedPut:
        what = f"uploading swift object {container}/{name}"
        return StreamedPut(
            self.pool,
            container,
            name,
            length=length,
            headers=headers,
            prepare=lambda conn: self.ensure_container(conn, container),
            translate=lambda exc: self.translate(exc, what),
        )

    def put_small(self, loc: SwiftLocation, data: bytes, headers: dict[str, str]) -> str:
        """PUT ``data`` in one request that can be retried; the ETag Swift returns."""

        def put(conn: Connection) -> str:
            self.ensure_container(conn, loc.container)
            # A seekable body: swiftclient rewinds it to retry (or re-authenticate).
            etag = conn.put_object(
                loc.container, loc.obj, io.BytesIO(data), content_length=len(data), headers=headers
            )
            return str(etag or "")

        return self.call("uploading image data", put, loc.redacted())

    def put_manifest(
        self,
        loc: SwiftLocation,
        segments_container: str,
        segments: list[Segment],
        headers: dict[str, str],
    ) -> None:
        """SLO if the cluster has it and the segments fit in one manifest, else DLO."""
        info = self.info()
        if info.slo and len(segments) <= info.max_manifest_segments:
            body = json.dumps(
                [
                    {
                        "path": f"/{segments_container}/{s.name}",
                        "etag": s.etag or None,  # None: Swift does not check it
                        "size_bytes": s.size,
                    }
                    for s in segments
                ]
            )

            def put(conn: Connection) -> None:
                self.ensure_container(conn, loc.container)
                conn.put_object(
                    loc.container,
                    loc.obj,
                    body,
                    query_string="multipart-manifest=put",
                    headers=headers,
                )
        else:
            prefix = segments[0].name.rpartition("/")[0] + "/"
            dlo = {**headers, "X-Object-Manifest": f"{segments_container}/{prefix}"}

            def put(conn: Connection) -> None:
                self.ensure_container(conn, loc.container)
                conn.put_object(loc.container, loc.obj, None, headers=dlo)

        self.call("writing the large object manifest", put, loc.redacted())

    # --- reading ----------------------------------------------------------------------

    def read(self, loc: SwiftLocation, offset: int, length: int | None) -> ReadResult:
        what, where = "reading image data", loc.redacted()
        if length == 0:
            return ReadResult(0, self.size(loc), iter(()))
        headers = None
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers = {"Range": f"bytes={offset}-{end}"}
        response: dict[str, Any] = {}
        conn = self.pool.take()
        try:
            rheaders, body = conn.get_object(
                loc.container,
                loc.obj,
                resp_chunk_size=self.read_chunk_size,
                headers=headers,
                response_dict=response,
            )
        except Exception as exc:
            self.pool.give(conn, broken=True)
            if status_of(exc) == 416:  # range starts at or past the end
                return ReadResult(0, self.size(loc), iter(()))
            raise self.translate(exc, what, where) from exc
        total = _total_size(rheaders)
        if total is None:
            total = self.size(loc)
        size = max(0, min(total - offset, total if length is None else length))
        ignored_range = response.get("status") == 200 and headers is not None
        chunks = _Body(
            body,
            release=lambda broken: self.pool.give(conn, broken=broken),
            translate=lambda exc: self.translate(exc, what, where),
            skip=offset if ignored_range else 0,
            limit=size if ignored_range else None,
        )
        return ReadResult(size, total, ReadAhead(chunks, READ_AHEAD, name="tank-chase-read"))

    def size(self, loc: SwiftLocation) -> int:
        headers = self.head(loc, "getting the image size")
        size = _int(headers.get("content-length"))
        if size is None:
            raise errors.StoreError("Swift sent no Content-Length", location=loc.redacted())
        return size

    # --- deleting ---------------------------------------------------------------------

    def delete(self, loc: SwiftLocation) -> None:
        """Remove the object and, for a manifest, all its segments."""
        headers = self.head(loc, "deleting image data")
        where = loc.redacted()
        if headers.get("x-static-large-object", "").lower() == "true":
            self.call(
                "deleting the large object and its segments",
                lambda c: c.delete_object(
                    loc.container, loc.obj, query_string="multipart-manifest=delete"
                ),
                where,
            )
            # The server reports failed segment deletes only in a body swiftclient drops:
            # sweep what is left under our own prefix.
            self.delete_prefix(self.segments_container(loc.container), loc.obj + "/")
            return
        self.call("deleting image data", lambda c: c.delete_object(loc.container, loc.obj), where)
        manifest = headers.get("x-object-manifest")
        if manifest:
            container, _, prefix = urllib.parse.unquote(manifest).partition("/")
            ours = {loc.container, self.segments_container(loc.container)}
            if container in ours and prefix.startswith(loc.obj) and len(prefix) > len(loc.obj):
                self.delete_prefix(container, prefix)
            else:
                log.warning(
                    "store %s: DLO %s points at segments %s/%s outside its layout; "
                    "they were left in place",
                    self.store,
                    where,
                    container,
                    prefix,
                )

    def remove_object(self, loc: SwiftLocation) -> bool:
        """Delete the object (a manifest only, never its segments) at ``loc``; False if
        there is none."""
        try:
            self.call("removing partial data", lambda c: c.delete_object(loc.container, loc.obj))
        except errors.NotFound:
            return False
        return True

    def remove_prefix(self, container: str, prefix: str) -> dict[str, int]:
        """Delete every object of ``container`` under ``prefix`` (``<object>/``); how many
        were deleted per upload id (the next part of their names). Failures raise."""

        def listing(conn: Connection) -> list[str]:
            _, objects = conn.get_container(container, prefix=prefix, full_listing=True)
            return [o["name"] for o in objects]

        try:
            names = self.call("listing segments", listing)
        except errors.NotFound:
            return {}  # no segments container
        deleted: dict[str, int] = {}
        for name in names:

            def delete(conn: Connection, name: str = name) -> None:
                conn.delete_object(container, name)

            try:
                self.call("removing a segment", delete)
            except errors.NotFound:
                continue  # gone meanwhile (or listed late)
            upload = name[len(prefix) :].partition("/")[0]
            deleted[upload] = deleted.get(upload, 0) + 1
        return deleted

    def delete_if_ours(self, loc: SwiftLocation, upload_id: str) -> None:
        """Delete the object at ``loc`` only if upload ``upload_id`` wrote it (abort)."""
        try:
            headers = self.head(loc, "cleaning up")
            if headers.get(UPLOAD_META.lower()) == upload_id:
                self.call("cleaning up", lambda c: c.delete_object(loc.container, loc.obj))
        except errors.NotFound:
            pass
        except errors.TankError as exc:
            log.warning("store %s: cleanup of %s failed: %s", self.store, loc.redacted(), exc)

    def delete_prefix(self, container: str, prefix: str) -> None:
        def listing(conn: Connection) -> list[str]:
            _, objects = conn.get_container(container, prefix=prefix, full_listing=True)
            return [o["name"] for o in objects]

        try:
            names = self.call("listing segments", listing)
        except errors.NotFound:
            return
        self.delete_objects(container, names)

    def delete_objects(self, container: str, names: list[str]) -> None:
        """Best effort, in parallel; missing objects are fine, failures are logged."""
        if not names:
            return

        def delete(name: str) -> None:
            try:
                self.call("deleting a segment", lambda c: c.delete_object(container, name))
            except errors.NotFound:
                pass

        workers = min(DELETE_WORKERS, len(names))
        with concurrent.futures.ThreadPoolExecutor(workers, "tank-chase-delete") as pool:
            futures = [pool.submit(delete, name) for name in names]
        failed = [f.exception() for f in futures if f.exception() is not None]
        if failed:
            log.warning(
                "store %s: %d of %d segments in %s could not be deleted: %s",
                self.store,
                len(failed),
                len(names),
                container,
                failed[0],
            )

    def listing(self, container: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        """The objects of ``container`` (under ``prefix``), a page at a time; nothing
        if the container does not exist."""
        marker = ""
        while True:

            def page(conn: Connection, marker: str = marker) -> list[dict[str, Any]]:
                _, objects = conn.get_container(
                    container, prefix=prefix or None, marker=marker, limit=LIST_PAGE
                )
                return objects  # type: ignore[no-any-return]

            try:
                objects = self.call(f"listing container {container!r}", page)
            except errors.NotFound:
                return
            yield from objects
            if len(objects) < LIST_PAGE:
                return
            marker = objects[-1]["name"]

    def containers(self, prefix: str) -> list[str]:
        """Names of the account's containers starting with ``prefix``."""

        def listing(conn: Connection) -> list[str]:
            _, containers = conn.get_account(prefix=prefix, full_listing=True)
            return [c["name"] for c in containers]

        return self.call("listing containers", listing)

    def segments_container(self, container: str) -> str:
        return container + SEGMENTS_SUFFIX


class _Body:
    """The chunks of one GET; owns the borrowed connection until exhausted or closed.

    ``skip`` and ``limit`` cut a range out of a whole-object answer, for a server that
    ignored the Range header.
    """

    def __init__(
        self,
        body: Any,
        *,
        release: Callable[[bool], None],
        translate: Callable[[BaseException], Exception],
        skip: int = 0,
        limit: int | None = None,
    ) -> None:
        self._body = body
        self._release: Callable[[bool], None] | None = release
        self._translate = translate
        self._skip = skip
        self._left = limit

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        while True:
            if self._release is None:
                raise StopIteration
            if self._left is not None and self._left <= 0:
                self._finish(broken=True)  # the rest of the answer is not wanted
                raise StopIteration
            try:
                chunk: bytes = next(self._body)
            except StopIteration:
                self._finish(broken=False)
                raise
            except Exception as exc:
                self._finish(broken=True)
                raise self._translate(exc) from exc
            if self._skip:
                cut = min(self._skip, len(chunk))
                chunk, self._skip = chunk[cut:], self._skip - cut
            if self._left is not None:
                chunk = chunk[: self._left]
                self._left -= len(chunk)
            if chunk:
                return chunk

    def close(self) -> None:
        if self._release is not None:
            self._finish(broken=True)

    def _finish(self, *, broken: bool) -> None:
        release, self._release = self._release, None
        if broken:
            try:
                self._body.close()
            except Exception:
                log.debug("closing a swift response failed", exc_info=True)
        if release is not None:
            release(broken)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _total_size(headers: dict[str, str]) -> int | None:
    """Whole-object size from ``Content-Range: bytes a-b/total``, else Content-Length."""
    content_range = headers.get("content-range")
    if content_range:
        return _int(content_range.rpartition("/")[2])
    return _int(headers.get("content-length"))
