"""Streamed object PUTs fed by ``Writer.write``.

swiftclient (through requests) *pulls* a request body from a file-like object, while
Tank's writer is *pushed* chunks. :class:`StreamedPut` runs one PUT in its own thread and
hands it the chunks through a :class:`Pipe` that holds at most a few MiB, so memory stays
bounded whatever the object size. The body is sent as the chunks arrive: with a known
length under ``Content-Length``, otherwise with chunked transfer encoding.

A streamed body cannot be sent twice, so swiftclient's retry loop (which re-authenticates
on a 401) cannot help once the PUT has started. Each PUT therefore first runs a cheap
request on its connection (``prepare``: a HEAD of the container, creating it if allowed),
which re-authenticates if the token has expired; the PUT itself is sent once, with the
fresh token. If the upload is abandoned, the pipe raises :class:`UploadAborted` inside
requests, the connection is dropped mid-body and Swift discards the partial object.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from tank.streams import ChunkQueue

if TYPE_CHECKING:
    from swiftclient.client import Connection

    from tank_store_chase.connections import ConnectionPool

log = logging.getLogger(__name__)

#: Bytes a pipe holds before ``write`` waits for the PUT to send them.
PIPE_BYTES = 2 << 20
#: Largest piece handed to requests per read when the length is unknown (chunked).
READ_SIZE = 1 << 20

Buffer = bytes | memoryview


class UploadAborted(Exception):
    """Raised into the PUT body when the upload is abandoned (never seen by callers)."""


class Pipe:
    """A bounded hand-over of chunks from one producer thread to one reading PUT: a
    :class:`~tank.streams.ChunkQueue` read as a file (in pieces of any size)."""

    def __init__(self, limit: int = PIPE_BYTES) -> None:
        self._queue: ChunkQueue[Buffer] = ChunkQueue(limit)
        self._current: memoryview = memoryview(b"")

    # --- producer side --------------------------------------------------------------

    def put(self, chunk: Buffer) -> bool:
        """Queue ``chunk``; False if the reader has stopped (the PUT ended or failed)."""
        return self._queue.put(chunk)

    def close(self) -> None:
        """No more data: the reader sees end of file."""
        self._queue.finish()

    def fail(self) -> None:
        """Abandon the body: the reader raises :class:`UploadAborted`."""
        self._queue.abort(UploadAborted("upload abandoned"))

    # --- reader side (the PUT thread, through requests) -------------------------------

    def read(self, size: int = -1) -> Buffer:
        if not self._current:
            chunk = self._queue.get()
            if chunk is None:
                return b""
            self._current = memoryview(chunk)
        if size < 0 or size >= len(self._current):
            piece, self._current = self._current, memoryview(b"")
        else:
            piece, self._current = self._current[:size], self._current[size:]
        return piece

    def reader_done(self) -> None:
        """The PUT has ended (either way): ``put`` stops waiting and returns False."""
        self._queue.stop()


class StreamedPut:
    """One object PUT running in a thread, its body written through :meth:`write`.

    ``prepare(conn)`` runs first on the borrowed connection (container check, token
    refresh). ``translate(exc)`` turns the thread's exception into a Tank error.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        container: str,
        name: str,
        *,
        length: int | None,
        headers: dict[str, str],
        prepare: Callable[[Connection], None],
        translate: Callable[[BaseException], Exception],
    ) -> None:
        self.container = container
        self.name = name
        self._pool = pool
        self._length = length
        self._headers = headers
        self._prepare = prepare
        self._translate = translate
        self._pipe = Pipe()
        self._etag: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"tank-chase-put-{name}", daemon=True
        )
        self._thread.start()

    def write(self, chunk: Buffer) -> None:
        if not self._pipe.put(chunk):
            self._thread.join()
            raise self._failure()

    def end_input(self) -> None:
        """All data is written; the PUT finishes in the background."""
        self._pipe.close()

    def wait(self) -> str:
        """Wait for the PUT to end; the ETag Swift returned, or the translated error."""
        self._thread.join()
        if self._etag is None:
            raise self._failure()
        return self._etag

    def cancel(self, timeout: float | None = None) -> None:
        """Abandon the PUT (the partial object is discarded by Swift) and wait for it."""
        self._pipe.fail()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("swift PUT of %s/%s did not stop in time", self.container, self.name)

    def _failure(self) -> Exception:
        return self._translate(self._error or RuntimeError("the PUT ended without an answer"))

    def _run(self) -> None:
        from tank_store_chase.connections import import_swiftclient, status_of

        client = import_swiftclient()
        conn = self._pool.take()
        broken = True
        try:
            self._prepare(conn)
            if not conn.http_conn:
                conn.http_conn = conn.http_connection()
            # The module-level put_object sends once: a half-read stream is never replayed.
            etag = client.put_object(
                conn.url,
                conn.token,
                self.container,
                self.name,
                contents=_body(self._pipe, self._length),
                content_length=self._length,
                headers=self._headers,
                http_conn=conn.http_conn,
            )
            self._etag = etag or ""
            broken = False
        except BaseException as exc:  # noqa: BLE001 - handed to the writer's thread
            self._error = exc
            if status_of(exc) == 401:
                conn.url = conn.token = None  # re-authenticate on next use
        finally:
            self._pipe.reader_done()
            self._pool.give(conn, broken=broken)


def _body(pipe: Pipe, length: int | None) -> object:
    """The PUT body as an iterable of the chunks Tank wrote (up to READ_SIZE each).

    Not a file-like object: urllib3 reads those 16 KiB at a time, which cost a third of a
    CPU second per GiB in Python calls and send() system calls. swiftclient passes its
    own ``ReadableToIterable`` through untouched; with a ``len()`` requests sends a
    Content-Length body, without one a chunked body.
    """
    from swiftclient.utils import ReadableToIterable

    class Body(ReadableToIterable):  # type: ignore[misc]  # swiftclient has no stubs
        def __len__(self) -> int:
            return length or 0

    return Body(pipe, READ_SIZE) if length is not None else ReadableToIterable(pipe, READ_SIZE)
