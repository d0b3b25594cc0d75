"""Recovery of imports whose tank-api died, in process, on what a crash leaves at the
points a SIGKILL test cannot aim at: a copy already written to a store, a stage cut
short, staging files nobody claims. Real SQL registry and file stores."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tank import model
from tank.config import load
from tank.imports import job, recovery, state
from tank.imports.service import ImportService
from tank.model import Context, Location, Status
from tank.service import ImageService

ADMIN = Context.admin()
DATA = b"recover me " * 100_000


@pytest.fixture
def imports(tmp_path: Path) -> Iterator[ImportService]:
    config = tmp_path / "tank.toml"
    config.write_text(
        f"""
[stores.file]
datadir = "{tmp_path / "file"}"
[stores.second]
type = "file"
datadir = "{tmp_path / "second"}"
[import]
lease_seconds = 5
"""
    )
    images = ImageService.from_config(load(config, data_dir=tmp_path / "data", environ={}))
    service = ImportService.from_config(
        load(config, data_dir=tmp_path / "data", environ={}), images
    )
    yield service
    service.close()
    images.close()


def age(image_id: str, imports: ImportService, seconds: float) -> None:
    """Make the image's heartbeat ``seconds`` old, as if its tank-api stopped then."""
    beat = f"{time.time() - seconds:.3f}"
    imports.images.registry.update(image_id, {"properties": {state.HEARTBEAT: beat}}, context=ADMIN)


def test_a_copy_written_before_the_crash_is_deleted(imports: ImportService) -> None:
    images = imports.images
    image = images.create({"disk_format": "raw", "container_format": "bare"}, [DATA], context=ADMIN)
    # what a copy-image into "second" leaves when killed after writing its copy
    task = "6f1c9a52-0000-4000-8000-000000000001"
    second = images.stores.get("second")
    stored = second.add(image.id, [DATA])
    copy = Location(url=stored.location, store="second", metadata={job.MARK: task})
    images.registry.update(
        image.id,
        {
            "locations": [*image.locations, copy],
            "properties": {
                state.TASK: task,
                state.IMPORTING: "",
                state.HEARTBEAT: state.heartbeat_now(),
            },
        },
        context=ADMIN,
    )
    imports.staging.write(image.id, [DATA], max_size=1 << 30)

    assert recovery.sweep(imports) == []  # its heartbeat is fresh: maybe alive elsewhere
    assert second.get_size(stored.location) == len(DATA)

    age(image.id, imports, 60)
    assert recovery.sweep(imports) == [image.id]
    after = images.get(image.id, context=ADMIN)
    assert after.status is Status.ACTIVE
    assert after.stores == ("file",)
    assert after.properties[state.FAILED] == "second"
    assert not {state.TASK, state.IMPORTING, state.HEARTBEAT} & set(after.properties)
    assert list(Path(second.config.datadir).iterdir()) == []
    assert imports.staging.leftovers() == []
    with images.read(after) as data:
        assert hashlib.sha256(b"".join(data)).digest() == hashlib.sha256(DATA).digest()


def test_a_stage_cut_short_queues_the_image_again(imports: ImportService) -> None:
    images = imports.images
    image = images.create({"disk_format": "raw", "container_format": "bare"}, context=ADMIN)
    images.registry.update(
        image.id,
        {
            "status": Status.UPLOADING,
            "properties": {state.STAGE_HOST: "h", state.HEARTBEAT: state.heartbeat_now()},
        },
        context=ADMIN,
    )
    # a killed stage leaves its partial file behind
    (imports.staging.directory / f"{image.id}.0123abcd.part").write_bytes(b"half")
    assert recovery.sweep(imports) == []
    age(image.id, imports, 60)
    assert recovery.sweep(imports) == [image.id]
    after = images.get(image.id, context=ADMIN)
    assert after.status is Status.QUEUED
    assert not [k for k in after.properties if k.startswith(model.RESERVED_PREFIX)]
    assert imports.staging.leftovers() == []


def test_staging_files_nobody_claims_are_removed(imports: ImportService) -> None:
    images = imports.images
    waiting = images.create({"disk_format": "raw", "container_format": "bare"}, context=ADMIN)
    images.registry.update(waiting.id, {"status": Status.UPLOADING}, context=ADMIN)
    imports.staging.write(waiting.id, [b"staged, import to come"], max_size=100)
    gone = images.create({"disk_format": "raw", "container_format": "bare"}, context=ADMIN)
    imports.staging.write(gone.id, [b"of a deleted image"], max_size=100)
    images.delete(gone.id, context=ADMIN)
    recovery.sweep(imports)
    assert imports.staging.leftovers() == [waiting.id]
    assert images.get(waiting.id, context=ADMIN).status is Status.UPLOADING
