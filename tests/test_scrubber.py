"""Delayed delete, the scrub pass and restore, in process (issue 15): a fs store and an
SQLite registry in a temporary data dir; end-to-end with tank-api processes in
tests/test_scrubber_e2e.py."""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tank import errors
from tank.config import ScrubberConfig, load
from tank.model import Context, Image, Status
from tank.plugins import make_plugin_manager
from tank.scrubber import delayed, scrub_pass
from tank.scrubber.restore import restore
from tank.service import ImageService
from tank.testing import read_all

ADMIN = Context.admin()
ALICE = Context(tenant="alice")
BOB = Context(tenant="bob")
META = {"name": "cirros", "disk_format": "raw", "container_format": "bare"}


@pytest.fixture
def delayed_service(data_dir: Path, recorder) -> Iterator[ImageService]:  # type: ignore[no-untyped-def]
    plugins = make_plugin_manager(plugins=[("recorder", recorder)])
    config = load(data_dir=data_dir, environ={})
    config = attrs.evolve(config, scrubber=ScrubberConfig(delayed_delete=True))
    with ImageService.from_config(config, plugins) as svc:
        yield svc


def stored_files(data_dir: Path) -> list[str]:
    images = data_dir / "images"
    return sorted(p.name for p in images.rglob("*") if p.is_file()) if images.exists() else []


def upload(service: ImageService, data: bytes, context: Context = ALICE, **meta: object) -> Image:
    image = service.create({**META, **meta}, data=io.BytesIO(data), context=context)
    assert image.status is Status.ACTIVE
    return image


def scrub(service: ImageService, scrub_time: float = 0.0) -> scrub_pass.PassReport:
    return scrub_pass.run_pass(service, ScrubberConfig(scrub_time=scrub_time))


def test_delayed_delete_keeps_the_data(
    delayed_service: ImageService, data_dir: Path, recorder
) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(100_000)
    image = upload(delayed_service, data)
    before = time.time()
    deleted = delayed_service.delete(image.id, context=ALICE)
    assert (deleted.status, deleted.deleted) == (Status.PENDING_DELETE, True)
    assert deleted.deleted_at is not None and deleted.deleted_at.timestamp() >= before - 1
    assert ("deleted", image.id, "pending_delete") in recorder.events
    assert len(stored_files(data_dir)) == 1
    # gone for its owner, shown to admins
    with pytest.raises(errors.NotFound):
        delayed_service.get(image.id, context=ALICE)
    assert delayed_service.get(image.id, context=ADMIN).status is Status.PENDING_DELETE
    with pytest.raises(errors.NotFound):
        delayed_service.download(image.id, context=ADMIN)
    with pytest.raises(errors.NotFound):
        delayed_service.delete(image.id, context=ALICE)
    with pytest.raises(errors.Forbidden, match="pending_delete"):
        delayed_service.delete(image.id, context=ADMIN)


def test_delayed_delete_still_refuses_protected_images(
    delayed_service: ImageService, data_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    image = upload(delayed_service, b"x" * 1000, protected=True)
    with pytest.raises(errors.Forbidden, match="protected"):
        delayed_service.delete(image.id, context=ALICE)
    assert delayed_service.get(image.id, context=ALICE).status is Status.ACTIVE


def test_an_image_without_data_is_deleted_at_once(delayed_service: ImageService) -> None:
    image = delayed_service.create(META, context=ALICE)
    deleted = delayed_service.delete(image.id, context=ALICE)
    assert deleted.status is Status.DELETED


def test_without_delayed_delete_data_goes_at_once(service: ImageService, data_dir: Path) -> None:
    image = upload(service, b"y" * 1000)
    assert service.delete(image.id, context=ALICE).status is Status.DELETED
    assert stored_files(data_dir) == []


def test_restore_brings_the_image_back_with_its_data(delayed_service: ImageService) -> None:
    data = os.urandom(50_000)
    image = upload(delayed_service, data)
    delayed_service.add_member(image.id, "bob", context=ALICE)
    delayed_service.delete(image.id, context=ALICE)
    restored = restore(delayed_service, image.id)
    assert (restored.status, restored.deleted, restored.deleted_at) == (Status.ACTIVE, False, None)
    assert read_all(delayed_service, image.id) == data
    assert delayed_service.get(image.id, context=ALICE).checksum == hashlib.md5(data).hexdigest()
    assert [m.member for m in delayed_service.list_members(image.id, context=ALICE)] == ["bob"]
    # and a scrub pass leaves it alone
    assert scrub(delayed_service).lines() == []
    assert read_all(delayed_service, image.id) == data


def test_restore_errors_say_what_is_wrong(delayed_service: ImageService) -> None:
    image = upload(delayed_service, b"z" * 10)
    with pytest.raises(
        errors.Conflict,
        match=r"cannot restore the image from active to active "
        r"\(wanted from_state=pending_delete\)",
    ):
        restore(delayed_service, image.id)
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(errors.NotFound, match=f"No image found with ID {missing}"):
        restore(delayed_service, missing)
    delayed_service.delete(image.id, context=ALICE)
    scrub(delayed_service)
    with pytest.raises(errors.Conflict, match="from deleted to active"):
        restore(delayed_service, image.id)


def test_scrub_waits_for_scrub_time(delayed_service: ImageService, data_dir: Path) -> None:
    image = upload(delayed_service, b"a" * 5000)
    delayed_service.delete(image.id, context=ALICE)
    report = scrub(delayed_service, scrub_time=3600)
    assert report.lines() == [] and not report.failed
    assert len(stored_files(data_dir)) == 1
    report = scrub(delayed_service, scrub_time=0)
    assert report.lines() == [
        f"delayed delete: image {image.id} scrubbed (data removed, now deleted)"
    ]
    assert stored_files(data_dir) == []
    after = delayed_service.get(image.id, context=ADMIN)
    assert (after.status, after.deleted) == (Status.DELETED, True)
    assert not any(k.startswith("os_glance_scrub") for k in after.properties)
    assert scrub(delayed_service).lines() == []  # nothing left to do


def test_a_store_failure_leaves_it_pending_delete_until_a_later_pass(
    delayed_service: ImageService, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = upload(delayed_service, b"b" * 5000)
    delayed_service.delete(image.id, context=ALICE)
    backend = delayed_service.stores.get("file")

    def unreachable(location: str) -> None:
        raise errors.StoreUnavailable("store file is down", store="file")

    monkeypatch.setattr(backend, "delete", unreachable)
    report = scrub(delayed_service)
    assert report.failed
    assert report.lines() == [
        f"delayed delete: FAILED image {image.id} stays pending_delete: "
        "store file: store file is down"
    ]
    left = delayed_service.get(image.id, context=ADMIN)
    assert left.status is Status.PENDING_DELETE and left.locations == image.locations
    assert not any(k.startswith("os_glance_scrub") for k in left.properties)
    assert len(stored_files(data_dir)) == 1
    monkeypatch.undo()
    report = scrub(delayed_service)
    assert not report.failed and stored_files(data_dir) == []
    assert delayed_service.get(image.id, context=ADMIN).status is Status.DELETED


def test_data_already_gone_counts_as_removed(delayed_service: ImageService, data_dir: Path) -> None:
    image = upload(delayed_service, b"c" * 100)
    delayed_service.delete(image.id, context=ALICE)
    for path in (data_dir / "images").rglob("*"):
        if path.is_file():
            path.unlink()
    report = scrub(delayed_service)
    assert not report.failed
    assert delayed_service.get(image.id, context=ADMIN).status is Status.DELETED


def test_a_partly_scrubbed_image_keeps_only_locations_with_data(
    delayed_service: ImageService, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of two locations one is removed and one fails: a restore must not point at the
    removed one."""
    data = os.urandom(2000)
    first = upload(delayed_service, data)
    second = upload(delayed_service, data)
    both = (*first.locations, *second.locations)
    image = delayed_service.registry.update(first.id, {"locations": both}, context=ADMIN)
    delayed_service.registry.update(second.id, {"locations": ()}, context=ADMIN)
    delayed_service.delete(image.id, context=ALICE)
    backend = delayed_service.stores.get("file")
    real_delete = backend.delete

    def second_fails(location: str) -> None:
        if location == second.locations[0].url:
            raise errors.StoreError("disk on fire", store="file")
        real_delete(location)

    monkeypatch.setattr(backend, "delete", second_fails)
    assert scrub(delayed_service).failed
    left = delayed_service.get(image.id, context=ADMIN)
    assert left.status is Status.PENDING_DELETE
    assert left.locations == second.locations
    restored = restore(delayed_service, image.id)
    assert read_all(delayed_service, restored.id) == data


def test_restore_and_scrub_exclude_each_other(
    delayed_service: ImageService, data_dir: Path
) -> None:
    """A restore after a scrub pass claimed the image is refused (its data is being
    removed); a claim after a restore is refused (the data stays)."""
    image = upload(delayed_service, b"d" * 100)
    delayed_service.delete(image.id, context=ALICE)
    delayed_service.registry.update(
        image.id,
        {
            "status": Status.DELETED,
            "properties": {delayed.CLAIMED: "true", delayed.CLAIM: f"other {time.time()}"},
        },
        context=ADMIN,
        expected_status=Status.PENDING_DELETE,
    )  # another scrubber's claim
    with pytest.raises(errors.Conflict, match="from deleted to active"):
        restore(delayed_service, image.id)

    other = upload(delayed_service, b"e" * 100)
    delayed_service.delete(other.id, context=ALICE)
    restore(delayed_service, other.id)
    outcome = delayed.Outcome()
    delayed.scrub_one(delayed_service, other.id, outcome, expected=Status.PENDING_DELETE)
    assert outcome.skipped == [other.id] and not outcome.scrubbed
    assert read_all(delayed_service, other.id) == b"e" * 100


def test_an_abandoned_claim_is_taken_over(delayed_service: ImageService, data_dir: Path) -> None:
    """A scrubber that died after claiming leaves a deleted image with data: the next
    pass after the claim lease finishes it; a fresh claim is left to its scrubber."""
    image = upload(delayed_service, b"f" * 100)
    delayed_service.delete(image.id, context=ALICE)
    claimed_at = time.time() - 10
    delayed_service.registry.update(
        image.id,
        {
            "status": Status.DELETED,
            "properties": {delayed.CLAIMED: "true", delayed.CLAIM: f"dead {claimed_at}"},
        },
        context=ADMIN,
        expected_status=Status.PENDING_DELETE,
    )
    assert scrub(delayed_service).lines() == []  # a live claim (10 s old)
    assert len(stored_files(data_dir)) == 1
    outcome = delayed.scrub_due(delayed_service, 0, now=claimed_at + delayed.CLAIM_LEASE + 1)
    assert outcome.scrubbed == [image.id]
    assert stored_files(data_dir) == []
    after = delayed_service.get(image.id, context=ADMIN)
    assert after.status is Status.DELETED and delayed.CLAIMED not in after.properties


def test_upload_leases_are_part_of_the_pass(delayed_service: ImageService) -> None:
    image = delayed_service.create(META, context=ALICE)
    delayed_service.registry.update(
        image.id,
        {"status": Status.SAVING, "properties": {"os_glance_upload_heartbeat": "1000"}},
        context=ADMIN,
    )
    report = scrub(delayed_service)
    assert f"upload leases: image {image.id} killed (upload lease expired)" in report.lines()
    assert delayed_service.get(image.id, context=ADMIN).status is Status.KILLED


def test_a_step_that_raises_fails_the_pass_but_not_the_others(
    delayed_service: ImageService,
) -> None:
    def broken(service: ImageService, config: ScrubberConfig) -> scrub_pass.StepReport:
        raise errors.StoreUnavailable("registry down")

    ran = []

    def fine(service: ImageService, config: ScrubberConfig) -> scrub_pass.StepReport:
        ran.append(True)
        return scrub_pass.StepReport("fine", done=["ok"])

    report = scrub_pass.run_pass(delayed_service, ScrubberConfig(), [broken, fine])
    assert report.failed and ran == [True]
    assert report.lines() == ["broken: FAILED registry down", "fine: ok"]


def test_in_api_one_scrubber_at_a_time(delayed_service: ImageService, data_dir: Path) -> None:
    """Two tank-api scrub threads on one registry: only the lease holder runs the pass;
    when it stops it gives the lease up and the other runs the next pass."""
    from tank.scrubber.in_api import InApiScrubber

    config = ScrubberConfig(delayed_delete=True, interval=1)
    first = InApiScrubber(delayed_service, config, holder="first")
    second = InApiScrubber(delayed_service, config, holder="second")
    image = upload(delayed_service, b"g" * 100)
    delayed_service.delete(image.id, context=ALICE)
    report = first.turn()
    assert report is not None and first.leading
    assert report.lines() == [
        f"delayed delete: image {image.id} scrubbed (data removed, now deleted)"
    ]
    assert second.turn() is None and not second.leading
    assert first.turn() is not None  # renewed
    first.close()
    again = upload(delayed_service, b"h" * 100)
    delayed_service.delete(again.id, context=ALICE)
    report = second.turn()
    assert report is not None and second.leading
    assert report.lines() == [
        f"delayed delete: image {again.id} scrubbed (data removed, now deleted)"
    ]
    assert stored_files(data_dir) == []


def test_a_deleted_image_cannot_be_updated(delayed_service: ImageService) -> None:
    """Glance v1's "Forbidden to update deleted image" (admins see deleted images): a
    v1 PUT would also purge a scrubber's claim. A pending_delete one may be (Glance)."""
    image = upload(delayed_service, b"i" * 10)
    delayed_service.delete(image.id, context=ALICE)
    renamed = delayed_service.update(image.id, {"name": "still pending"}, context=ADMIN)
    assert renamed.name == "still pending" and renamed.status is Status.PENDING_DELETE
    scrub(delayed_service)
    with pytest.raises(errors.Forbidden, match="is deleted: it cannot be updated"):
        delayed_service.update(image.id, {"name": "x"}, context=ADMIN, purge_props=True)
    assert delayed_service.get(image.id, context=ADMIN).name == "still pending"


@pytest.fixture
def pg_config(tmp_path: Path) -> Iterator[Any]:
    """A config on a PostgreSQL schema of the test's own (``TANK_TEST_PG_URL``)."""
    from tank.testing.postgresql import pg_schema

    with pg_schema("scrub") as dsn:
        path = tmp_path / "tank.toml"
        path.write_text(
            f'[registry]\nconnection = "{dsn}"\n'
            "auto_upgrade = true\n[scrubber]\ndelayed_delete = true\n"
        )
        yield load(path, data_dir=tmp_path / "data", environ={})


def test_scrubs_and_restores_racing_on_postgresql(pg_config: Any) -> None:
    """Two scrubbers and a restorer at once, each with its own connections: every image
    is scrubbed by one scrubber at most, none fails, and every image ends either
    restored with its data or deleted without it; never active without data."""
    from tank.testing.registry_contract import run_concurrently

    services = [ImageService.from_config(pg_config) for _ in range(3)]
    try:
        first = services[0]
        images = {upload(first, os.urandom(1000)).id: None for _ in range(30)}
        for image_id in images:
            first.delete(image_id, context=ALICE)
        restored: list[str] = []

        def work(i: int) -> Any:
            if i < 2:
                return delayed.scrub_due(services[i], 0)
            for image_id in images:
                try:
                    restore(services[2], image_id)
                    restored.append(image_id)
                except errors.Conflict:
                    pass
            return None

        outcomes = run_concurrently(3, work)
        assert not any(isinstance(o, Exception) for o in outcomes), outcomes
        one, two = outcomes[0].scrubbed, outcomes[1].scrubbed
        assert not outcomes[0].failed and not outcomes[1].failed
        assert not set(one) & set(two)
        assert set(one) | set(two) | set(restored) == set(images)
        assert not (set(one) | set(two)) & set(restored)
        for image_id in images:
            image = first.get(image_id, context=ADMIN)
            if image_id in restored:
                assert image.status is Status.ACTIVE
                assert len(read_all(first, image_id)) == 1000
            else:
                assert image.status is Status.DELETED
                backend = first.stores.get("file")
                with pytest.raises(errors.NotFound):
                    backend.get_size(image.locations[0].url)
    finally:
        for service in services:
            service.close()
