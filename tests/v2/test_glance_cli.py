"""The ``glance`` command (python-glanceclient's CLI, API v2) run as an operator runs it.

The CLI authenticates through Keystone or takes a token and an endpoint; it cannot send
identity headers, so it talks to a tank-api without ``--auth`` (as to a Glance deployed
with ``auth_strategy = noauth``): the ``api`` fixture of Tank's pytest plugin.
"""

from __future__ import annotations

import hashlib
import os
import pty
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.testing.api_server import ApiServer, find_script


@pytest.fixture
def glance_cli(api: ApiServer, tmp_path: Path) -> Any:
    exe = find_script("glance")
    assert exe is not None, "python-glanceclient's glance script is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "TANK_"))}
    env["HOME"] = str(tmp_path)  # the CLI caches the schemas under ~/.glanceclient

    def run(*args: str, stdin: Any = None, ok: bool = True) -> str:
        """Run ``glance ...``; its stdin is a terminal unless ``stdin`` is given (the CLI
        takes any other stdin for image data)."""
        cmd = [exe, "--os-image-url", api.url, "--os-auth-token", "unused"]
        cmd += ["--os-image-api-version", "2", *args]
        terminal, tty = pty.openpty() if stdin is None else (None, None)
        try:
            done = subprocess.run(
                cmd,
                stdin=tty if stdin is None else stdin,
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=False,
            )
        finally:
            for fd in (terminal, tty):
                if fd is not None:
                    os.close(fd)
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
            return done.stdout
        assert done.returncode != 0, (args, done.stdout)
        return done.stderr

    return run


def field(table: str, key: str) -> str:
    """A value of the CLI's ``| Property | Value |`` table."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] == key:
            return cells[1]
    raise AssertionError(f"no {key!r} in:\n{table}")


def test_glance_cli_image_lifecycle(glance_cli: Any, api: ApiServer, tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    src = tmp_path / "disk.img"
    src.write_bytes(data)
    name = f"cli-{uuid.uuid4().hex[:8]}"

    shown = glance_cli(
        "image-create",
        "--name",
        name,
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--property",
        "colour=red",
        "--file",
        str(src),
    )
    image_id = field(shown, "id")
    assert field(shown, "status") == "active"
    assert field(shown, "checksum") == hashlib.md5(data).hexdigest()
    assert field(shown, "os_hash_value") == hashlib.sha256(data).hexdigest()
    assert field(shown, "colour") == "red"

    listed = glance_cli("image-list", "--property-filter", "colour=red", "--sort", "name:asc")
    assert image_id in listed

    out = tmp_path / "copy.img"
    glance_cli("image-download", "--file", str(out), image_id)  # checks os_hash_value
    assert out.read_bytes() == data

    updated = glance_cli(
        "image-update", "--name", name + "-2", "--property", "shape=square",
        "--remove-property", "colour", image_id,
    )  # fmt: skip
    assert field(updated, "name") == name + "-2"
    assert field(updated, "shape") == "square"
    assert "colour" not in updated

    # only a queued image changes formats (Glance's rule): the CLI fails with the message
    refused = glance_cli("image-update", "--disk-format", "qcow2", image_id, ok=False)
    assert "disk_format can be only replaced for a queued image" in refused, refused
    assert field(glance_cli("image-show", image_id), "disk_format") == "raw"

    url = f"{api.url}/v2/images/{image_id}"
    glance_cli("image-tag-update", image_id, "golden")
    assert requests.get(url, timeout=10).json()["tags"] == ["golden"]
    glance_cli("image-tag-delete", image_id, "golden")
    assert requests.get(url, timeout=10).json()["tags"] == []

    glance_cli("image-delete", image_id)
    assert image_id in glance_cli("image-show", image_id, ok=False)
    assert requests.get(url, timeout=10).status_code == 404


def test_glance_cli_reads_the_image_from_stdin(glance_cli: Any, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    src = tmp_path / "disk.img"
    src.write_bytes(data)
    with open(src, "rb") as stdin:
        shown = glance_cli(
            "image-create", "--name", "from-stdin", "--disk-format", "raw",
            "--container-format", "bare", stdin=stdin,
        )  # fmt: skip
    assert field(shown, "size") == str(len(data))
    assert field(shown, "checksum") == hashlib.md5(data).hexdigest()


def test_glance_cli_create_via_import(glance_cli: Any, api: ApiServer, tmp_path: Path) -> None:
    """``image-create-via-import`` stages the file, then imports it with glance-direct."""
    data = os.urandom(700_000)
    src = tmp_path / "disk.img"
    src.write_bytes(data)
    shown = glance_cli(
        "image-create-via-import", "--name", "via-import", "--disk-format", "raw",
        "--container-format", "bare", "--import-method", "glance-direct", "--file", str(src),
    )  # fmt: skip
    image_id = field(shown, "id")
    for _ in range(600):
        image = requests.get(f"{api.url}/v2/images/{image_id}", timeout=10).json()
        if image["status"] not in ("queued", "uploading", "importing"):
            break
        time.sleep(0.1)
    assert image["status"] == "active", image
    out = tmp_path / "copy.img"
    glance_cli("image-download", "--file", str(out), image_id)
    assert out.read_bytes() == data
