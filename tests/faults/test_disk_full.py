"""A disk full when tank-api starts, then freed, with a real tank-api (issue 15: "a disk
full at start-up disables uploads until restart"): while full, uploads are 413 (never
403, the store is not read-only) and leave nothing; once space is freed, uploads work
again in the same process, after the store's back-off (``RECHECK_SECONDS``).

Needs a small filesystem to fill: a 4 MiB tmpfs, which only root can mount; skipped
elsewhere, saying why.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tank.store import Backend
from tank.testing.api_server import ApiServer


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        reason = (done.stderr.decode(errors="replace") or f"exit {done.returncode}")[:200]
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {reason}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write until the filesystem says it is full."""
    with open(path, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * (256 << 10))
            f.flush()
    st = os.statvfs(path.parent)
    assert st.f_bavail * st.f_frsize < 64 << 10, "the filesystem did not fill up"


def upload(api: ApiServer, data: bytes) -> requests.Response:
    return requests.post(
        f"{api.url}/v1/images",
        data=data,
        headers={"Content-Type": "application/octet-stream", "x-image-meta-name": "full?"},
        timeout=30,
    )


def test_a_disk_full_at_start_up_is_413_and_uploads_work_once_freed_without_a_restart(
    start_api: Callable[..., ApiServer], tiny_disk: Path, tmp_path: Path
) -> None:
    images = tiny_disk / "images"
    images.mkdir()
    filler = tiny_disk / "filler"
    fill(filler)
    config = tmp_path / "tank.toml"
    config.write_text(f'[stores.file]\ndatadir = "{images}"\n')
    api = start_api("--config", str(config))
    started = time.monotonic()
    pid = api.proc.pid
    data = os.urandom(1 << 20)

    full = upload(api, data)
    assert full.status_code == 413, full.text
    assert "full" in full.json()["error"]["message"]
    assert sorted(p.name for p in images.iterdir()) == []

    filler.unlink()
    # Until the back-off has passed the store still answers 413 (it probes again at
    # most every RECHECK_SECONDS); then the next upload succeeds, in the same process.
    deadline = started + Backend.RECHECK_SECONDS + 30
    while True:
        resp = upload(api, data)
        if resp.status_code == 201:
            break
        assert resp.status_code == 413, resp.text  # never 403: the store is not read-only
        assert time.monotonic() < deadline, f"uploads never worked again:\n{api.log()}"
        time.sleep(0.5)
    image = resp.json()["image"]
    assert (image["status"], image["size"]) == ("active", len(data))
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    got = requests.get(f"{api.url}/v1/images/{image['id']}", timeout=30)
    assert got.content == data
    assert api.proc.pid == pid and api.proc.poll() is None  # no restart
    assert sorted(p.name for p in images.iterdir()) == [image["id"]]
    assert "writable again" in api.log_path.read_text()
