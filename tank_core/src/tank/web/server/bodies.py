"""Request bodies as ``wsgi.input``: a known length, or chunked (RFC 9112 §7.1).

Nothing is read before the application asks, and the first read is what sends the
deferred ``100 Continue`` (PEP 3333's second way): an upload refused for its headers is
answered before the client has sent a byte of it. A body that ends early raises
:class:`BodyIncomplete`, never looks like a shorter body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tank.web.server.channel import Channel, ServerStopping

__all__ = ["BadChunking", "BodyIncomplete", "ChunkedBody", "KnownLengthBody", "ServerStopping"]

MiB = 1 << 20
#: Longest chunk-size or trailer line of a chunked body.
MAX_CHUNK_LINE = 4096
#: Most bytes of trailer fields after the last chunk.
MAX_TRAILERS = 16 << 10


class BodyIncomplete(ConnectionError):
    """The client closed the connection before the end of the request body."""


class BadChunking(ValueError):
    """A chunked request body does not follow RFC 9112 §7.1."""


class Body:
    """Base of the body streams. ``on_first_read`` sends the deferred 100 Continue."""

    done: bool = True
    received: int = 0

    def __init__(self, channel: Channel, on_first_read: Callable[[], None] | None) -> None:
        self._channel = channel
        self._on_first_read = on_first_read
        self._reused = bytearray(0)

    def _started(self) -> None:
        if self._on_first_read is not None:
            on_first_read, self._on_first_read = self._on_first_read, None
            on_first_read()

    def _buffer(self, size: int) -> memoryview:
        """A view of ``size`` bytes to receive into, reused from read to read (up to
        1 MiB): each ``read`` then costs one copy, into the bytes it returns."""
        if size > MiB:
            return memoryview(bytearray(size))
        if len(self._reused) < size:
            self._reused = bytearray(MiB if size > 64 << 10 else 64 << 10)
        return memoryview(self._reused)[:size]

    def read(self, size: int | None = -1) -> bytes:
        if self.done:
            return b""
        if size is None or size < 0:  # all of it, but only as fast as it arrives
            return b"".join(iter(self))
        with self._buffer(size) as view:
            got = self.readinto(view)
            return bytes(view[:got])

    def readinto(self, buffer: memoryview | bytearray) -> int:
        raise NotImplementedError

    def readline(self, size: int | None = -1) -> bytes:
        """Bodies here are binary; a line is a bounded read (PEP 3333 wants the
        method; the API never calls it)."""
        return self.read(MiB if size is None or size < 0 else size)

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(MiB):
            yield chunk

    @property
    def unread(self) -> int | None:
        """Bytes of body not read yet: exact for a known length, None if unknown."""
        return 0


class NoBody(Body):
    pass


class KnownLengthBody(Body):
    """A ``Content-Length`` body."""

    def __init__(
        self, channel: Channel, length: int, on_first_read: Callable[[], None] | None
    ) -> None:
        super().__init__(channel, on_first_read)
        self.length = length
        self.remaining = length
        self.done = length == 0

    @property
    def received(self) -> int:  # type: ignore[override]
        return self.length - self.remaining

    @property
    def unread(self) -> int | None:
        return self.remaining

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Fill ``buffer`` (or what is left of the body); bytes read."""
        if self.remaining == 0:
            return 0
        self._started()
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.remaining)
        got = self._channel.fill(view[:want])
        self.remaining -= got
        self.done = self.remaining == 0
        if got < want:
            self._channel.check_stopping(self.received)
            raise BodyIncomplete(
                f"the client sent {self.received} of {self.length} bytes and closed the connection"
            )
        return got


class ChunkedBody(Body):
    """A ``Transfer-Encoding: chunked`` body, decoded with bounded lines."""

    def __init__(self, channel: Channel, on_first_read: Callable[[], None] | None) -> None:
        super().__init__(channel, on_first_read)
        self._left = 0  # bytes of the current chunk still to read
        self._first = True
        self.done = False
        self.received = 0

    @property
    def unread(self) -> int | None:
        return 0 if self.done else None

    def readinto(self, buffer: memoryview | bytearray) -> int:
        if self.done:
            return 0
        self._started()
        view = memoryview(buffer).cast("B")
        size = len(view)
        filled = 0
        while filled < size:
            if self._left == 0 and not self._next_chunk():
                break
            want = min(self._left, size - filled)
            got = self._channel.fill(view[filled : filled + want])
            filled += got
            self._left -= got
            self.received += got
            if got < want:
                self._channel.check_stopping(self.received)
                raise BodyIncomplete(
                    f"the client closed the connection after {self.received} bytes "
                    "of a chunked body"
                )
        return filled

    def _line(self) -> bytes:
        line = self._channel.readline(MAX_CHUNK_LINE)
        if not line.endswith(b"\n"):
            self._channel.check_stopping(self.received)
            if len(line) >= MAX_CHUNK_LINE:
                raise BadChunking(f"chunked body: a line is longer than {MAX_CHUNK_LINE} bytes")
            raise BodyIncomplete(
                f"the client closed the connection after {self.received} bytes of a chunked body"
            )
        if not line.endswith(b"\r\n"):  # as heads: a bare LF is refused, never guessed at
            raise BadChunking("chunked body: a line ends with a bare LF, not CRLF")
        return line

    def _next_chunk(self) -> bool:
        """Start the next chunk; False at the last (zero-size) chunk."""
        if not self._first and self._line().strip():
            raise BadChunking("chunked body: chunk data is not followed by CRLF")
        self._first = False
        text = self._line().split(b";", 1)[0].strip()
        if not text or len(text) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in text):
            raise BadChunking(f"chunked body: bad chunk size {text[:40]!r}")
        self._left = int(text, 16)
        if self._left:
            return True
        trailers = 0
        while line := self._line().strip():
            trailers += len(line)
            if trailers > MAX_TRAILERS:
                raise BadChunking(f"chunked body: trailers longer than {MAX_TRAILERS} bytes")
        self.done = True
        return False
