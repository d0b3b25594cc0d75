"""The staging area: image data waiting to be imported, one directory on local disk.

``PUT /v2/images/{id}/stage`` and web-download write here; import steps read one file
and write the next beside it; the import then copies the last one into the stores and
removes everything of that image. Every file of an image is named after it
(``<image_id>``, ``<image_id>.<step>``), so :meth:`Staging.leftovers` can tell, after a
restart, which images still hold data here, and :meth:`Staging.remove` takes all of
an image's files at once.

A file appears under its final name only when complete: it is written under a
``.part`` name, synced, then renamed, so a crash or a failed write never leaves a
truncated file that looks finished.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import attrs

from tank import errors
from tank.checksums import DEFAULT_HASH_ALGO, StreamHasher, check_hash_algo
from tank.model import parse_image_id
from tank.streams import iter_chunks

PARTIAL = ".part"
READ_SIZE = 1 << 20


@attrs.frozen
class Staged:
    """A complete file in the staging area and what it holds."""

    path: Path
    size: int
    md5: str
    #: The multihash (``os_hash_algo`` / ``os_hash_value`` of the image).
    hash_algo: str
    hash_value: str


@attrs.frozen
class Pending:
    """A file being made: write ``temp``; it becomes ``path`` if the block succeeds."""

    temp: Path
    path: Path


class Staging:
    """One staging directory (created, owner-only, if missing). ``hash_algo`` is the
    multihash of what is staged (``[api] hashing_algorithm``), as for uploads."""

    def __init__(
        self, directory: str | os.PathLike[str], *, hash_algo: str = DEFAULT_HASH_ALGO
    ) -> None:
        self.hash_algo = check_hash_algo(hash_algo)
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, image_id: str, step: str | None = None) -> Path:
        """Where the staged data of ``image_id`` is (``step``: that step's output).

        The image id is checked to be a UUID, so no id can name a file elsewhere.
        """
        name = parse_image_id(image_id)
        if step is not None:
            if not step.isidentifier():
                raise ValueError(f"step name {step!r} is not an identifier")
            name = f"{name}.{step}"
        return self.directory / name

    def write(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, step: str | None = None
    ) -> Staged:
        """Stream ``chunks`` to :meth:`path`, hashing as they pass; return what was staged.

        Memory stays flat whatever the size: each chunk is written and dropped. An
        existing file of that name is replaced only once the new one is complete.

        :raises errors.ImageTooLarge: more than ``max_size`` bytes came; nothing is kept.
        :raises errors.StorageFull: the disk filled up; nothing is kept.
        """
        size = 0
        with (
            self.creating(image_id, step) as pending,
            StreamHasher(algorithm=self.hash_algo) as hasher,
        ):
            with _create(pending.temp) as out:
                for chunk in iter_chunks(chunks):
                    size += len(chunk)
                    if size > max_size:
                        raise errors.ImageTooLarge(
                            f"image {image_id}: more than the {max_size} bytes allowed"
                        )
                    hasher.update(chunk)
                    _write(out, chunk)
                out.flush()
                os.fsync(out.fileno())
            sums = hasher.result()
        return Staged(pending.path, size, sums.md5, sums.hash_algo, sums.hash_value)

    @contextlib.contextmanager
    def creating(self, image_id: str, step: str | None = None) -> Iterator[Pending]:
        """Make a file by hand (a tool writes it): write to ``pending.temp``; when the
        block ends without an error it is renamed to ``pending.path``, else removed."""
        final = self.path(image_id, step)
        temp = final.with_name(f"{final.name}.{uuid.uuid4().hex}{PARTIAL}")
        try:
            yield Pending(temp, final)
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _sync_directory(self.directory)

    def open(self, image_id: str, step: str | None = None) -> BinaryIO:
        """The staged file, open for reading; :class:`errors.NotFound` if there is none."""
        path = self.path(image_id, step)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise errors.NotFound(f"image {image_id} has no staged data") from None

    def exists(self, image_id: str, step: str | None = None) -> bool:
        return self.path(image_id, step).is_file()

    def remove(self, image_id: str) -> None:
        """Remove every file of ``image_id``: staged data, step outputs, partial files."""
        name = parse_image_id(image_id)
        for path in self.directory.glob(f"{name}*"):
            if path.name == name or path.name.startswith(f"{name}."):
                path.unlink(missing_ok=True)

    def leftovers(self) -> list[str]:
        """The ids of images with any file here, sorted: after a restart, each is either
        an upload that waits for its import or the remains of an interrupted one."""
        ids = set()
        for path in self.directory.iterdir():
            try:
                ids.add(parse_image_id(path.name.split(".", 1)[0]))
            except errors.ValidationError:
                continue  # not ours
        return sorted(ids)


def describe(path: Path, hash_algo: str = DEFAULT_HASH_ALGO) -> Staged:
    """Size, MD5 and ``hash_algo`` multihash of a file a step made (read once, in pieces)."""
    size = 0
    with path.open("rb") as f, StreamHasher(algorithm=hash_algo) as hasher:
        for chunk in iter_chunks(f, READ_SIZE):
            size += len(chunk)
            hasher.update(chunk)
        sums = hasher.result()
    return Staged(path, size, sums.md5, sums.hash_algo, sums.hash_value)


def _create(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _write(out: BinaryIO, chunk: bytes) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise errors.StorageFull("the staging area is full") from None
        raise


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
