"""The staging area: complete files or nothing, hashes computed on the way."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tank import errors
from tank.imports.staging import Staging, describe

CHUNK = bytes(range(256)) * 256  # 64 KiB


def chunks(count: int, fail_after: int | None = None) -> Iterator[bytes]:
    for i in range(count):
        if fail_after is not None and i == fail_after:
            raise ConnectionResetError("client went away")
        yield CHUNK


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return Staging(tmp_path / "staging")


def test_write_streams_and_hashes(staging: Staging) -> None:
    image_id = str(uuid.uuid4())
    staged = staging.write(image_id, chunks(20), max_size=20 * len(CHUNK))
    data = CHUNK * 20
    assert staged.path == staging.path(image_id)
    assert staged.size == len(data)
    assert staged.md5 == hashlib.md5(data).hexdigest()
    assert (staged.hash_algo, staged.hash_value) == ("sha256", hashlib.sha256(data).hexdigest())
    with staging.open(image_id) as f:
        assert f.read() == data
    assert describe(staged.path) == staged
    assert os.listdir(staging.directory) == [image_id]
    assert staging.directory.stat().st_mode & 0o777 == 0o700


def test_staged_data_gets_the_configured_multihash(tmp_path: Path) -> None:
    staging = Staging(tmp_path / "staging", hash_algo="sha512")
    image_id = str(uuid.uuid4())
    staged = staging.write(image_id, chunks(3), max_size=3 * len(CHUNK))
    sha512 = hashlib.sha512(CHUNK * 3).hexdigest()
    assert (staged.md5, staged.hash_algo, staged.hash_value) == (
        hashlib.md5(CHUNK * 3).hexdigest(),
        "sha512",
        sha512,
    )
    assert describe(staged.path, "sha512") == staged
    assert describe(staged.path).hash_value == hashlib.sha256(CHUNK * 3).hexdigest()
    with pytest.raises(errors.ConfigError, match="hashing_algorithm"):
        Staging(tmp_path / "other", hash_algo="md5")
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("failure", ["source", "too large"])
def test_a_failed_write_leaves_nothing(staging: Staging, failure: str) -> None:
    image_id = str(uuid.uuid4())
    expected = ConnectionResetError if failure == "source" else errors.ImageTooLarge
    source = chunks(10, fail_after=5) if failure == "source" else chunks(10)
    with pytest.raises(expected):
        staging.write(image_id, source, max_size=8 * len(CHUNK))
    assert os.listdir(staging.directory) == []
    assert not staging.exists(image_id)
    assert staging.leftovers() == []


def test_a_failed_rewrite_keeps_the_complete_file(staging: Staging) -> None:
    image_id = str(uuid.uuid4())
    staging.write(image_id, [b"complete"], max_size=100)
    with pytest.raises(ConnectionResetError):
        staging.write(image_id, chunks(3, fail_after=1), max_size=1 << 20)
    assert staging.path(image_id).read_bytes() == b"complete"
    assert os.listdir(staging.directory) == [image_id]


def test_no_partial_file_under_the_final_name(staging: Staging) -> None:
    image_id = str(uuid.uuid4())
    seen: list[list[str]] = []

    def watched() -> Iterator[bytes]:
        for chunk in chunks(3):
            seen.append(sorted(os.listdir(staging.directory)))
            yield chunk

    staging.write(image_id, watched(), max_size=1 << 20)
    assert seen[-1] and all(image_id not in names for names in seen)
    assert all(name.endswith(".part") for names in seen for name in names)


def test_steps_outputs_leftovers_and_remove(staging: Staging) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    staging.write(a, [b"a"], max_size=10)
    staging.write(a, [b"a2"], max_size=10, step="decompress")
    with staging.creating(b, "convert") as pending:
        pending.temp.write_bytes(b"converted")
    (staging.directory / f"{b}.0123.part").write_bytes(b"left by a crash")
    (staging.directory / "not-an-image").write_bytes(b"?")
    assert staging.path(b, "convert").read_bytes() == b"converted"
    assert staging.leftovers() == sorted([a, b])
    staging.remove(a)
    assert staging.leftovers() == [b]
    staging.remove(b)
    assert staging.leftovers() == []
    assert os.listdir(staging.directory) == ["not-an-image"]


def test_creating_removes_the_temp_file_on_failure(staging: Staging) -> None:
    image_id = str(uuid.uuid4())
    with pytest.raises(RuntimeError), staging.creating(image_id, "convert") as pending:
        pending.temp.write_bytes(b"half")
        raise RuntimeError("tool failed")
    assert os.listdir(staging.directory) == []


def test_ids_cannot_name_other_files(staging: Staging) -> None:
    for bad in ("../../etc/passwd", "", "a/b"):
        with pytest.raises(errors.ValidationError):
            staging.path(bad)
    with pytest.raises(ValueError):
        staging.path(str(uuid.uuid4()), "../x")
    with pytest.raises(errors.NotFound):
        staging.open(str(uuid.uuid4()))


def test_memory_stays_flat(staging: Staging) -> None:
    import tracemalloc

    piece = bytes(range(256)) * 1024  # 256 KiB
    total = 256 * len(piece)  # 64 MiB

    def fresh() -> Iterator[bytes]:
        for i in range(256):
            yield bytes([i]) + piece[1:]  # a new object each time, as a socket gives

    tracemalloc.start()
    try:
        staged = staging.write(str(uuid.uuid4()), fresh(), max_size=total)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert staged.size == total
    assert peak < total // 4, f"peak {peak} bytes for {total} bytes written"
