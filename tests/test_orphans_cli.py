"""``tank-manage scrub --orphans [--delete]`` end to end (issue 15), as a real process on
an fs store and the SQLite registry: orphans are reported, nothing changes without
``--delete``, ``--delete`` removes exactly them, and data that an image references
(deleted images included), data younger than the grace period and files that are not
Tank's stay."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tank.config import load
from tank.model import Context
from tank.service import ImageService
from tank.testing.api_server import find_script
from tank_store_fs.backend import TEMP_PREFIX

ADMIN = Context.admin()
DAY = 86400


class Site:
    def __init__(self, root: Path, extra: str = "") -> None:
        self.root = root
        self.data_dir = root / "data"
        self.store_dir = root / "store"
        self.config = root / "tank.toml"
        self.config.write_text(f'[stores.file]\ndatadir = "{self.store_dir}"\n{extra}')

    def service(self) -> ImageService:
        return ImageService.from_config(load(self.config, data_dir=self.data_dir))

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        script = find_script("tank-manage")
        assert script is not None
        command = [script, *args, "--config", str(self.config), "--data-dir", str(self.data_dir)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)

    def files(self) -> set[str]:
        return {p.name for p in self.store_dir.iterdir()}


def backdate(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_scrub_orphans_reports_then_deletes_exactly_the_orphans(site: Site) -> None:
    with site.service() as service:
        backend = service.stores.get("file")
        active = service.create({"name": "kept"}, iter([b"kept"]), context=ADMIN)
        # data registered by location (not owned): a delete leaves it, and the deleted
        # image still references it
        shared_id = str(uuid.uuid4())
        shared = backend.add(shared_id, iter([b"shared"])).location
        gone = service.create({"name": "gone"}, location=shared, context=ADMIN)
        service.delete(gone.id, context=ADMIN)
        # orphans: data of no image, and a temporary file
        lost_id = str(uuid.uuid4())
        backend.add(lost_id, iter([b"lost"]))
        temp = f"{TEMP_PREFIX}{uuid.uuid4()}.0123456789ab"
        (site.store_dir / temp).write_bytes(b"partial")
    (site.store_dir / "README.txt").write_text("not Tank's")
    for path in site.store_dir.iterdir():
        backdate(path, 2 * DAY)
    young_id = str(uuid.uuid4())
    (site.store_dir / young_id).write_bytes(b"young")  # within the default grace (a day)
    before = site.files()
    assert before == {active.id, shared_id, lost_id, temp, "README.txt", young_id}

    report = site.manage("scrub", "--orphans")
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    orphan_lines = [line for line in lines if line.endswith(": orphan")]
    assert len(orphan_lines) == 2
    assert any(f"file://{site.store_dir}/{lost_id}" in line for line in orphan_lines)
    assert any(
        f"temp  {site.store_dir}/{temp}  7 bytes  age 2.0 d" in line for line in orphan_lines
    )
    assert lines[-1].startswith("orphans (grace 86400 s): 5 items listed: 2 referenced")
    assert "1 younger than the grace period; 2 orphan" in lines[-1]
    assert site.files() == before

    removed = site.manage("scrub", "--orphans", "--delete")
    assert removed.returncode == 0, removed.stderr
    assert sum(line.endswith(": removed") for line in removed.stdout.splitlines()) == 2
    assert site.files() == before - {lost_id, temp}
    assert (site.store_dir / shared_id).read_bytes() == b"shared"
    with site.service() as service:
        assert b"".join(service.read(service.get(active.id, context=ADMIN))) == b"kept"

    again = site.manage("scrub", "--orphans", "--delete")
    assert again.returncode == 0 and "no orphans" in again.stdout.splitlines()[-1]
    young = site.manage("scrub", "--orphans", "--grace", "0")
    assert [line for line in young.stdout.splitlines() if line.endswith(": orphan")] == [
        line for line in young.stdout.splitlines() if young_id in line
    ]
    assert young_id in young.stdout


def test_orphan_grace_from_the_config(tmp_path: Path) -> None:
    site = Site(tmp_path, "[scrubber]\norphan_grace = 0\n")
    site.store_dir.mkdir()
    young_id = str(uuid.uuid4())
    (site.store_dir / young_id).write_bytes(b"young")
    result = site.manage("scrub", "--orphans", "--delete")
    assert result.returncode == 0, result.stderr
    assert "orphans (grace 0 s)" in result.stdout
    assert site.files() == set()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--delete"], "--delete removes orphans: it needs --orphans"),
        (["--grace", "10"], "--grace is the age of orphans: it needs --orphans"),
        (["--orphans", "--grace", "-1"], "must be 0 or more"),
        (["--orphans", "--grace", "soon"], "'soon' is not a valid float"),
    ],
)
def test_bad_options(site: Site, args: list[str], message: str) -> None:
    result = site.manage("scrub", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_listing_fails_the_command(site: Site) -> None:
    site.store_dir.write_text("a file where the data directory should be")
    result = site.manage("scrub", "--orphans")
    assert result.returncode == 1
    assert "file: unlisted: listing failed: listing file://" in result.stdout
    assert "Not a directory" in result.stdout
