"""PartBody: a part's chunks read as one seekable file, as botocore reads it (sign, send,
seek(0), send again on a retry)."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from tank_store_s3.body import PartBody

CHUNKS = [os.urandom(n) for n in (5, 1 << 20, 0, 3, 70_000)]
DATA = b"".join(CHUNKS)


def drain(body: PartBody, size: int) -> bytes:
    out = bytearray()
    while piece := body.read(size):
        out += piece
    return bytes(out)


@pytest.mark.parametrize("size", [1, 4, 1 << 17, 1 << 20, -1])
def test_reads_the_chunks_in_order_then_again_after_seek(size: int) -> None:
    body = PartBody([memoryview(c) if i % 2 else c for i, c in enumerate(CHUNKS)])
    assert len(body) == len(DATA)
    assert drain(body, size) == DATA
    assert body.read(10) == b"" and body.tell() == len(DATA)
    assert body.seek(0) == 0
    assert hashlib.sha256(drain(body, size)).digest() == hashlib.sha256(DATA).digest()


@pytest.mark.parametrize("where", [0, 3, 5, 6, (1 << 20) + 5, (1 << 20) + 8, len(DATA)])
def test_seek_anywhere(where: int) -> None:
    body = PartBody(CHUNKS)
    assert body.seek(where) == where
    assert drain(body, 7777) == DATA[where:]
    body.seek(-3, io.SEEK_END)
    assert drain(body, 2) == DATA[-3:]
    body.seek(where)
    body.seek(1, io.SEEK_CUR)
    assert drain(body, 1 << 20) == DATA[where + 1 :]
    with pytest.raises(ValueError):
        body.seek(-1)


def test_readinto_and_reads_past_the_end() -> None:
    body = PartBody(CHUNKS)
    buf = bytearray(4)
    assert body.readinto(buf) == 4 and bytes(buf) == DATA[:4]
    assert body.seek(len(DATA) + 100) == len(DATA)
    assert body.readinto(buf) == 0
    assert PartBody([]).read() == b"" and len(PartBody([b""])) == 0
