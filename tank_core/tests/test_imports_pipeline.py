"""The configured steps in a row: gzip'd qcow2 in, raw with injected properties out."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from tank import errors
from tank.imports.convert import Convert
from tank.imports.decompress import Decompress
from tank.imports.inject import InjectMetadata
from tank.imports.pipeline import run_steps
from tank.imports.staging import Staging
from tank.imports.steps import ImportStep
from tank.model import Image

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img missing")

MiB = 1 << 20
DATA = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(65536))  # 2 MiB


@pytest.fixture
def staging(tmp_path: Path) -> Staging:
    return Staging(tmp_path / "staging")


def steps(staging: Staging) -> list[ImportStep]:
    cap = 1 << 30
    return [
        Decompress(Decompress.Config(), staging=staging, size_cap=cap),
        Convert(Convert.Config(convert_to="raw"), staging=staging, size_cap=cap),
        InjectMetadata(
            InjectMetadata.Config(inject_properties={"origin": "import"}),
            staging=staging,
            size_cap=cap,
        ),
    ]


def gzipped_qcow2(tmp_path: Path, *extra: str) -> bytes:
    raw, qcow2 = tmp_path / "disk.raw", tmp_path / "disk.qcow2"
    raw.write_bytes(DATA)
    if extra:
        subprocess.run(
            ["qemu-img", "create", "-f", "qcow2", *extra, str(qcow2)],
            check=True,
            capture_output=True,
        )
    else:
        subprocess.run(
            ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
            check=True,
        )
    return gzip.compress(qcow2.read_bytes())


def test_steps_in_a_row(tmp_path: Path, staging: Staging) -> None:
    image = Image(id=str(uuid.uuid4()), disk_format="qcow2", container_format="bare")
    staged = staging.write(image.id, [gzipped_qcow2(tmp_path)], max_size=1 << 30)
    result = run_steps(steps(staging), staged.path, image)
    assert result.path.read_bytes() == DATA
    assert result.changes["disk_format"] == "raw"
    assert result.changes["size"] == len(DATA)
    assert result.changes["checksum"] == hashlib.md5(DATA).hexdigest()
    assert result.changes["os_hash_value"] == hashlib.sha256(DATA).hexdigest()
    assert result.changes["virtual_size"] == len(DATA)
    assert result.changes["properties"] == {"origin": "import"}
    # the decompressed qcow2 went once convert had made its output
    assert sorted(os.listdir(staging.directory)) == sorted([image.id, f"{image.id}.convert"])
    image.update(result.changes)  # the changes are fields the image has


def test_a_failing_step_leaves_only_the_input(tmp_path: Path, staging: Staging) -> None:
    backing = tmp_path / "secret"
    backing.write_bytes(bytes(MiB))
    image = Image(id=str(uuid.uuid4()), disk_format="qcow2", container_format="bare")
    data = gzipped_qcow2(tmp_path, "-b", str(backing), "-F", "raw")
    staged = staging.write(image.id, [data], max_size=1 << 30)
    with pytest.raises(errors.Invalid, match="backing file"):
        run_steps(steps(staging), staged.path, image)
    assert os.listdir(staging.directory) == [image.id]
    assert staged.path.read_bytes() == data


def test_stopping_ends_the_run_between_steps(tmp_path: Path, staging: Staging) -> None:
    image = Image(id=str(uuid.uuid4()), disk_format="qcow2", container_format="bare")
    staged = staging.write(image.id, [gzipped_qcow2(tmp_path)], max_size=1 << 30)
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(errors.ShuttingDown, match="before the decompress step"):
        run_steps(steps(staging), staged.path, image, stopping=stopping)
    assert os.listdir(staging.directory) == [image.id]
