"""The ``decompress`` import step: gzip, xz and zstd images, told apart by magic bytes.

Users upload ``cirros.img.gz`` and mean the image inside. The format is taken from the
first bytes, never from a name or a claim; data in none of the three formats passes
through unchanged. The output is streamed into the staging area and capped at
``image_size_cap``: a small file that inflates without end (a decompression bomb)
fails when it gets there, with nothing kept.

gzip and xz use the standard library. zstd has no standard module before Python 3.14,
so it runs Debian's ``zstd`` tool (package zstd) as a pipe rather than adding the
``zstandard`` C extension as a dependency of tank-core for one format: the tool is a
plain stream filter, its memory is bounded by its own default window limit (128 MiB),
and the step reads its output in pieces like the other two, so the cap applies alike.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

from tank import errors
from tank.imports.staging import Staged
from tank.imports.steps import ImportStep, StepResult
from tank.model import Image

CHUNK = 1 << 20
MAGIC = {
    "gzip": b"\x1f\x8b\x08",  # with deflate, the only method gzip defines
    "xz": b"\xfd7zXZ\x00",
    "zstd": b"\x28\xb5\x2f\xfd",
}


def detect(path: Path) -> str | None:
    """``gzip``, ``xz`` or ``zstd`` by the file's first bytes; None for anything else."""
    with path.open("rb") as f:
        head = f.read(8)
    for name, magic in MAGIC.items():
        if head.startswith(magic):
            return name
    return None


class Decompress(ImportStep):
    """Replace a gzip, xz or zstd file by what it holds."""

    name = "decompress"

    def run(self, path: Path, image: Image) -> StepResult:
        kind = detect(path)
        if kind is None:
            return StepResult(path)
        reader = {"gzip": _gzip, "xz": _xz, "zstd": _zstd}[kind]
        try:
            staged = self.staging.write(
                image.id, reader(path), max_size=self.size_cap, step=self.name
            )
        except errors.ImageTooLarge:
            raise errors.ImageTooLarge(
                f"the {kind} data of image {image.id} inflates to more than the "
                f"{self.size_cap} bytes allowed (image_size_cap)"
            ) from None
        return StepResult(staged.path, data_changes(staged))


def data_changes(staged: Staged) -> dict[str, object]:
    """The image fields that describe the data of ``staged``."""
    return {
        "size": staged.size,
        "checksum": staged.md5,
        "os_hash_algo": staged.hash_algo,
        "os_hash_value": staged.hash_value,
    }


def _gzip(path: Path) -> Iterator[bytes]:
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise errors.Invalid(f"the gzip data is damaged or cut short ({exc})") from None


def _xz(path: Path) -> Iterator[bytes]:
    try:
        with lzma.open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    except (lzma.LZMAError, EOFError) as exc:
        raise errors.Invalid(f"the xz data is damaged or cut short ({exc})") from None


def _zstd(path: Path) -> Iterator[bytes]:
    tool = shutil.which("zstd")
    if tool is None:
        raise errors.ImportStepFailed(
            "decompressing zstd needs the zstd tool, which is not installed (Debian package zstd)"
        )
    process = subprocess.Popen(
        [tool, "--decompress", "--stdout", "--quiet", "--no-progress", "--", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        while chunk := process.stdout.read(CHUNK):
            yield chunk
        stderr = process.stderr.read(4096)
        if process.wait() != 0:
            why = stderr.decode("utf-8", "replace").strip().splitlines()
            detail = why[-1].replace(str(path), "<staged data>") if why else "no reason given"
            raise errors.Invalid(f"the zstd data is damaged or cut short ({detail})")
    finally:
        if process.poll() is None:  # stopped early: the cap was reached, or an error
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
