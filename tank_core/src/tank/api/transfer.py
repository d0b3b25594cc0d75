"""Image data in responses, shared by both APIs: Range, sendfile when the store offers
a file descriptor, and at most ``download_threads`` downloads at once (counted with the
server's uploads, :mod:`tank.web.server.transfers`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from tank import errors
from tank.api.ranges import Unsatisfiable, parse_range
from tank.model import Context, Image
from tank.store import ReadResult
from tank.web import FileBody, Request, Response
from tank.web.server.transfers import ENVIRON_KEY, RETRY_AFTER, Transfers

#: The kind :class:`Transfers` counts downloads as.
DOWNLOAD = "download"

if TYPE_CHECKING:
    from tank.api.app import Api


def data_response(
    api: Api, req: Request, ctx: Context, image: Image, headers: list[tuple[str, str]]
) -> Response:
    """The data of ``image`` (from ``ImageService.with_data``), whole or the requested
    range, with ``headers`` (the API's own) first. When the server is done with the body,
    the ``image_sent`` hook hears how many bytes went out (Glance's ``image.send``)."""
    size = image.size or 0
    try:
        wanted = parse_range(req.headers.get("range"), size)
    except Unsatisfiable:
        return Response(
            416,
            [("Content-Range", f"bytes */{size}"), ("Content-Type", "application/json")],
            [
                b'{"error":{"code":416,"title":"Range Not Satisfiable","message":'
                b'"the requested range is outside the image data"}}'
            ],
        )
    offset, length = (wanted.offset, wanted.length) if wanted else (0, None)
    transfers: Transfers = req.environ.get(ENVIRON_KEY) or api.transfers
    cap = api.download_threads
    counted = req.method != "HEAD"  # the server sends no data for HEAD
    if counted and not transfers.take(DOWNLOAD, cap):
        raise errors.Busy(
            f"this server is already busy with {transfers.busy()} (it sends image data to"
            f" at most {cap} clients at once, and runs at most {transfers.limit} uploads and"
            " downloads together); retry later",
            retry_after=RETRY_AFTER,
        )
    try:
        result = api.service.read(image, offset=offset, length=length)
    except BaseException:
        if counted:
            transfers.give_back(DOWNLOAD)
        raise
    headers = [
        *headers,
        ("Content-Type", "application/octet-stream"),
        ("Content-Length", str(result.size)),
        ("Accept-Ranges", "bytes"),
    ]
    if wanted:
        headers.append(("Content-Range", wanted.content_range(result.total_size)))
    expected = result.size

    def sent(count: int) -> None:  # once, when the server is done with the body
        if counted:
            transfers.give_back(DOWNLOAD)
        api.service.plugins.image_sent(
            image=image, bytes_sent=count, expected=expected, context=ctx
        )

    body: FileBody | _Stream = _Stream(result, sent)
    if result.fd is not None and "wsgi.file_wrapper" in req.environ:
        local = _file_body(result.fd, result.offset, result.size)
        if local is not None:
            result.close()
            local.on_sent = sent
            body = local
    return Response(206 if wanted else 200, headers, body)


def _file_body(store_fd: int, offset: int, size: int) -> FileBody | None:
    """The range as a file the server can ``sendfile``, from the descriptor a store
    offers (``ReadResult.fd``: the fs store); None to stream the chunks instead. The
    body gets a duplicate positioned at ``offset``: the store's belongs to its result."""
    try:
        fd = os.dup(store_fd)
    except OSError:
        return None
    try:
        os.lseek(fd, offset, os.SEEK_SET)
    except OSError:
        os.close(fd)
        return None
    return FileBody(fd, size)


class _Stream:
    """The response body: the store's chunks, closed when the server is done with them
    (also when the client hangs up mid-download); ``on_sent`` hears the bytes handed
    to the server, once, at close."""

    def __init__(self, result: ReadResult, on_sent: Callable[[int], None]) -> None:
        self.result = result
        self.sent = 0
        self.on_sent: Callable[[int], None] | None = on_sent

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.result.chunks:
            yield chunk
            self.sent += len(chunk)  # counted once the server took it

    def close(self) -> None:
        try:
            self.result.close()
        finally:
            on_sent, self.on_sent = self.on_sent, None
            if on_sent is not None:
                on_sent(self.sent)
