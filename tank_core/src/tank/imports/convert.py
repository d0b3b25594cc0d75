"""The ``convert`` import step: ``qemu-img convert`` to ``[import] convert_to``.

RBD copy-on-write clones need raw images, so operators convert whatever users upload.
qemu-img (Debian package qemu-utils) reads dozens of formats, and that is the danger:
a qcow2 may name a *backing file* or an external *data file* (``/etc/shadow``, a
host device), and converting it copies that file into an image the user can download
(OSSA-2024-001 / CVE-2024-32498 and its predecessors). So, as Glance does since then:

1. the declared ``disk_format`` is the only format qemu-img is told to read (``-f``; no
   probing), and a file declared raw that starts with another format's magic bytes is
   refused;
2. ``qemu-img info --output=json`` is read first, under resource limits (``prlimit``:
   1 GiB of address space, 30 s of CPU): a backing file, a data file or a VMDK whose
   create type may name other files is refused, and so is a virtual size over
   ``image_size_cap`` (raw output would be that big);
3. only then ``qemu-img convert -f <declared> -O <convert_to>``, into a new file in the
   staging area; the output is inspected the same way before it is used.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs

from tank import errors
from tank.config import CONVERT_FORMATS, one_of
from tank.imports.decompress import data_changes
from tank.imports.staging import describe
from tank.imports.steps import ImportStep, StepResult
from tank.model import Image

#: Tank's disk_format -> qemu-img's format name.
QEMU_FORMATS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc"}
#: VMDK create types that keep all data in the one file (Glance's default allow-list).
VMDK_SINGLE_FILE = frozenset({"monolithicSparse", "streamOptimized"})
#: First bytes of the formats qemu-img reads, at their offsets: a "raw" file with one of
#: them is another format in disguise.
SIGNATURES = (
    (0, b"QFI\xfb", "qcow2"),
    (0, b"KDMV", "vmdk"),
    (0, b"# Disk DescriptorFile", "vmdk"),
    (0, b"conectix", "vhd"),
    (0, b"vhdxfile", "vhdx"),
    (0x40, b"\x7f\x10\xda\xbe", "vdi"),
    (0, b"QEVM", "qed"),
    (0, b"WithoutFreeSpace", "parallels"),
)
INFO_LIMITS = ("--as=1073741824", "--cpu=30")
INFO_TIMEOUT = 120
_PATH = re.compile(r"/[^\s'\"]+")


class Convert(ImportStep):
    """Convert the image to ``convert_to`` with qemu-img (see the module docstring)."""

    name = "convert"
    import_keys = ("convert_to",)

    @attrs.frozen(kw_only=True)
    class Config:
        #: The disk format every imported image ends in.
        convert_to: str = attrs.field(validator=one_of(*CONVERT_FORMATS))

    def run(self, path: Path, image: Image) -> StepResult:
        source = image.disk_format
        if source is None:
            raise errors.Invalid(f"image {image.id} has no disk_format: set it before importing")
        if source not in QEMU_FORMATS:
            if source == "iso":  # Glance keeps ISO images as they are
                return StepResult(path)
            raise errors.Invalid(
                f"cannot convert disk_format {source!r} (convertible: "
                f"{', '.join(sorted(QEMU_FORMATS))})"
            )
        target = self.config.convert_to
        _check_signature(path, source)
        info = inspect(path, source)
        self._check_size(info, image)
        changes: dict[str, Any] = {"virtual_size": info.get("virtual-size")}
        if source == target:
            return StepResult(path, changes)
        with self.staging.creating(image.id, self.name) as pending:
            _qemu_img(
                "convert", "-f", QEMU_FORMATS[source], "-O", QEMU_FORMATS[target],
                "--", str(path), str(pending.temp),
            )  # fmt: skip
            out = inspect(pending.temp, target)
            if target == "raw":
                _check_signature(pending.temp, "raw")
        staged = describe(pending.path, self.staging.hash_algo)
        if staged.size > self.size_cap:
            pending.path.unlink(missing_ok=True)
            raise errors.ImageTooLarge(
                f"image {image.id} converted to {target} is {staged.size} bytes, more than "
                f"the {self.size_cap} bytes allowed (image_size_cap)"
            )
        changes.update(data_changes(staged))
        changes.update(
            disk_format=target, container_format="bare", virtual_size=out.get("virtual-size")
        )
        return StepResult(staged.path, changes)

    def _check_size(self, info: dict[str, Any], image: Image) -> None:
        virtual = info.get("virtual-size")
        if not isinstance(virtual, int) or virtual < 0:
            raise errors.Invalid(f"qemu-img reports no virtual size for image {image.id}")
        if self.config.convert_to == "raw" and virtual > self.size_cap:
            raise errors.ImageTooLarge(
                f"image {image.id} has a virtual size of {virtual} bytes: as raw it would be "
                f"more than the {self.size_cap} bytes allowed (image_size_cap)"
            )


def inspect(path: Path, disk_format: str) -> dict[str, Any]:
    """``qemu-img info`` of ``path`` read as ``disk_format``, refused if unsafe.

    :raises errors.Invalid: not that format, or it refers to other files.
    """
    fmt = QEMU_FORMATS[disk_format]
    try:
        output = _qemu_img("info", "-f", fmt, "--output=json", "--", str(path), limits=True)
    except errors.ImportStepFailed as exc:
        raise errors.Invalid(f"the data is not a valid {disk_format} image ({exc})") from None
    try:
        info = json.loads(output)
    except ValueError:
        raise errors.ImportStepFailed("qemu-img info printed no JSON") from None
    if not isinstance(info, dict) or info.get("format") != fmt:
        raise errors.Invalid(f"qemu-img does not read the data as {disk_format}")
    if "backing-filename" in info or "full-backing-filename" in info:
        raise errors.Invalid("images with a backing file are not allowed")
    specific = info.get("format-specific") or {}
    data = specific.get("data") or {}
    if data.get("data-file") is not None or data.get("data-file-raw"):
        raise errors.Invalid("qcow2 images with an external data file are not allowed")
    if fmt == "vmdk":
        create_type = data.get("create-type")
        if create_type not in VMDK_SINGLE_FILE:
            raise errors.Invalid(
                f"VMDK create type {create_type!r} is not allowed "
                f"(allowed: {', '.join(sorted(VMDK_SINGLE_FILE))})"
            )
        extents = data.get("extents") or []
        if len(extents) > 1:
            raise errors.Invalid("VMDK images with more than one extent are not allowed")
    return info


def _check_signature(path: Path, declared: str) -> None:
    """Refuse a file declared raw that is another format (it would be converted as raw,
    but a later consumer probing it would follow its backing file)."""
    if declared != "raw":
        return
    with path.open("rb") as f:
        head = f.read(0x44)
    for offset, magic, fmt in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            raise errors.Invalid(f"the image is declared raw but its data is {fmt}")


def _qemu_img(*args: str, limits: bool = False) -> str:
    tool = shutil.which("qemu-img")
    if tool is None:
        raise errors.ImportStepFailed(
            "the convert step needs qemu-img, which is not installed (Debian package qemu-utils)"
        )
    command = [tool, *args]
    prlimit = shutil.which("prlimit") if limits else None
    if prlimit is not None:
        command = [prlimit, *INFO_LIMITS, *command]
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=INFO_TIMEOUT if limits else None,
            check=False,
        )
    except subprocess.TimeoutExpired:
        why = f"qemu-img {args[0]} took more than {INFO_TIMEOUT} s"
        raise errors.ImportStepFailed(why) from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {done.returncode}"
        why = _PATH.sub("<file>", why)  # host paths are nothing to show a user
        raise errors.ImportStepFailed(f"qemu-img {args[0]} failed: {why}")
    return done.stdout.decode("utf-8", "replace")
