"""tank.web.messages.Body: the request body as the service reads it."""

from __future__ import annotations

import io

import pytest

from tank import errors
from tank.web.messages import Body, ClientGone


class ReadOnly:
    """A wsgi.input without readinto (PEP 3333 asks only for read)."""

    def __init__(self, data: bytes) -> None:
        self._io = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._io.read(size)


@pytest.mark.parametrize("stream", [io.BytesIO, ReadOnly])
def test_readinto_and_read_give_exactly_the_announced_bytes(stream: type) -> None:
    body = Body(stream(b"abcdefghij-and-the-next-request"), 10)
    buffer = bytearray(4)
    assert body.readinto(buffer) == 4 and buffer == b"abcd"
    assert body.read(100) == b"efghij"
    assert body.read(100) == b"" and body.readinto(buffer) == 0
    assert body.received == 10


@pytest.mark.parametrize("stream", [io.BytesIO, ReadOnly])
def test_a_body_that_ends_early_is_the_client_gone(stream: type) -> None:
    body = Body(stream(b"abc"), 10)
    assert body.read(3) == b"abc"
    with pytest.raises(ClientGone, match="sent 3 of 10 bytes"):
        body.readinto(bytearray(8))
    assert issubclass(ClientGone, errors.Invalid)


def test_without_a_length_the_body_runs_to_the_end_of_the_stream() -> None:
    assert b"".join(Body(io.BytesIO(b"x" * (3 << 20)), None)) == b"x" * (3 << 20)
