"""tank.image_format on its own: Glance's decisions, whatever the chunking, and the
``[image_format]`` keys."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tank import config, errors
from tank.config import ImageFormatConfig
from tank.errors import ConfigError
from tank.image_format import FormatCheck, format_check


def chunks(data: bytes, sizes: tuple[int, ...]) -> Iterator[bytes]:
    pos, i = 0, 0
    while pos < len(data):
        yield data[pos : pos + sizes[i % len(sizes)]]
        pos += sizes[i % len(sizes)]
        i += 1


def run(
    data: bytes, disk_format: str, sizes: tuple[int, ...] = (1 << 20,), **cfg: object
) -> FormatCheck:
    check = FormatCheck(disk_format, ImageFormatConfig(**cfg))  # type: ignore[arg-type]
    for chunk in chunks(data, sizes):
        check.update(chunk)
    check.verify()
    return check


@pytest.fixture(scope="module")
def qcow2s(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img (Debian qemu-utils) is not installed")
    tmp = tmp_path_factory.mktemp("qcow2")
    plain, backed = tmp / "plain.qcow2", tmp / "backed.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(plain), "3M"], check=True)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw",
         str(backed), "3M"],
        check=True,
    )  # fmt: skip
    return {"plain": plain.read_bytes(), "backed": backed.read_bytes()}


#: Chunkings that cut headers anywhere: single bytes first, odd sizes, big ones.
CHUNKINGS = [(1,) * 600 + (4093,), (7, 65536, 3), (300 << 10,), (4 << 20,)]


@pytest.mark.parametrize("sizes", CHUNKINGS)
def test_the_decision_does_not_depend_on_the_chunking(
    qcow2s: dict[str, bytes], sizes: tuple[int, ...]
) -> None:
    assert run(qcow2s["plain"], "qcow2", sizes).virtual_size == 3 << 20
    with pytest.raises(errors.InvalidImageData, match="data is qcow2 but disk_format is vmdk"):
        run(qcow2s["plain"], "vmdk", sizes)
    with pytest.raises(errors.InvalidImageData, match="backing_file: Image has a backing file"):
        run(qcow2s["backed"], "qcow2", sizes)


def test_raw_rules(qcow2s: dict[str, bytes]) -> None:
    assert run(b"", "raw").detected == "raw"
    assert run(b"\x00" * 5000, "raw").virtual_size == 5000
    as_raw = run(qcow2s["plain"], "raw")  # Glance: raw takes any safe data, sized as bytes
    assert as_raw.detected == "qcow2" and as_raw.virtual_size == len(qcow2s["plain"])
    with pytest.raises(errors.InvalidImageData, match="backing file"):
        run(qcow2s["backed"], "raw")
    assert run(b"anything", "ploop").detected == "raw"  # no inspector for ploop
    with pytest.raises(errors.InvalidImageData, match="data is qcow2 but disk_format is ploop"):
        run(qcow2s["plain"], "ploop")


def test_require_image_format_match_off(qcow2s: dict[str, bytes]) -> None:
    assert run(qcow2s["plain"], "vhd", require_image_format_match=False).detected == "qcow2"
    with pytest.raises(errors.InvalidImageData, match="backing file"):  # never relaxed
        run(qcow2s["backed"], "qcow2", require_image_format_match=False)
    with pytest.raises(errors.InvalidImageData, match="backing file"):  # nor when mismatched
        run(qcow2s["backed"], "vmdk", require_image_format_match=False)


def test_only_bare_images_are_inspected(qcow2s: dict[str, bytes]) -> None:
    assert format_check("qcow2", "bare", None) is not None
    assert format_check("qcow2", "ova", None) is None
    assert format_check("ami", "ami", None) is None
    unformatted = format_check(None, None, None)  # v1 data before formats: as raw
    assert unformatted is not None and unformatted.disk_format == "raw"
    unformatted.update(qcow2s["backed"])
    with pytest.raises(errors.InvalidImageData, match="backing file"):
        unformatted.verify()


def test_image_format_section(tmp_path: Path) -> None:
    defaults = config.load(environ={}).image_format
    assert defaults.require_image_format_match is True  # Glance's default
    assert defaults.gpt_safety_checks_nonfatal == ()
    path = tmp_path / "tank.toml"
    path.write_text(
        '[image_format]\nrequire_image_format_match = false\ngpt_safety_checks_nonfatal = ["mbr"]\n'
    )
    loaded = config.load(path, environ={}).image_format
    assert loaded == ImageFormatConfig(
        require_image_format_match=False, gpt_safety_checks_nonfatal=("mbr",)
    )
    path.write_text('[image_format]\ngpt_safety_checks_nonfatal = ["gpt"]\n')
    with pytest.raises(ConfigError, match=r"\[image_format\] gpt_safety_checks_nonfatal: .*'gpt'"):
        config.load(path, environ={})
    path.write_text("[image_format]\nrequire_image_format_match = 1\n")
    with pytest.raises(ConfigError, match=r"\[image_format\] require_image_format_match"):
        config.load(path, environ={})


def mbr_disk(*partitions: tuple[int, bytes, int]) -> bytes:
    """1 MiB of raw disk whose first sector is an MBR with these (type, start CHS,
    start LBA) entries, one sector each."""
    sector = bytearray(512)
    for i, (ostype, chs, lba) in enumerate(partitions):
        entry = bytes([0]) + chs + bytes([ostype]) + b"\xff\xff\xff"
        sector[446 + 16 * i : 462 + 16 * i] = entry + lba.to_bytes(4, "little") + b"\x01\0\0\0"
    sector[510:512] = b"\x55\xaa"
    return bytes(sector) + bytes((1 << 20) - 512)


def test_partitioned_raw_disks_are_gpt_and_checked_as_glance_does() -> None:
    """oslo.utils calls any disk with an MBR signature "gpt" (its MBR must be sane)."""
    linux = mbr_disk((0x83, b"\x00\x21\x00", 2048))
    protective = mbr_disk((0xEE, b"\x00\x02\x00", 1))
    assert run(linux, "raw").detected == "gpt"  # raw takes it, checked
    assert run(protective, "raw").detected == "gpt"
    with pytest.raises(errors.InvalidImageData, match="data is gpt but disk_format is qcow2"):
        run(linux, "qcow2")
    bad = mbr_disk((0xEE, b"\x00\x02\x00", 1), (0x83, b"\x00\x21\x00", 2048))
    with pytest.raises(errors.InvalidImageData, match="GPT MBR defines invalid extra"):
        run(bad, "raw")
    empty = mbr_disk()  # a boot sector and no partition
    with pytest.raises(errors.InvalidImageData, match="GPT MBR has no partitions defined"):
        run(empty, "raw")
    assert run(empty, "raw", gpt_safety_checks_nonfatal=("mbr",)).detected == "gpt"
