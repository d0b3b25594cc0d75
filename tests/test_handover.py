"""Handed-over locations (:mod:`tank.handover`) in process, over the real fs store and SQL
registry: what a restart finds, and data that changes under a verification."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tank import errors
from tank import handover as handover_mod
from tank.api import make_app
from tank.handover import VERIFYING, LocationHandover, ValidationData
from tank.model import Context, Location, Status
from tank.service import ImageService
from tank.testing import read_all

ADMIN = Context.admin()
META = {"name": "snap", "disk_format": "raw", "container_format": "bare"}


def left_importing(service: ImageService, data: bytes, checksum: str, **meta: Any) -> str:
    """An image as a process stopped mid-verification leaves it."""
    image = service.create({**META, **meta}, context=ADMIN)
    path = Path(service.stores.get().datadir) / image.id  # type: ignore[attr-defined]
    path.write_bytes(data)
    service.registry.update(
        image.id,
        {
            "status": Status.IMPORTING,
            "locations": [Location(url=f"file://{path}", store="file")],
            "checksum": checksum,
            "properties": {VERIFYING: "gone-host:1"},
        },
        context=ADMIN,
    )
    return image.id


def test_a_restart_verifies_what_a_stopped_process_left(service: ImageService) -> None:
    data = os.urandom(100_000)
    # listings leave community and hidden images out unless asked: recovery asks
    good = left_importing(
        service, data, hashlib.md5(data).hexdigest(), visibility="community", os_hidden=True
    )
    bad = left_importing(service, data, hashlib.md5(b"something else").hexdigest())
    app = make_app(service)  # what tank-api does at start-up
    app.handover.join()

    image = service.get(good, context=ADMIN)
    assert image.status is Status.ACTIVE and image.size == len(data)
    assert image.os_hash_value == hashlib.sha256(data).hexdigest()
    assert VERIFYING not in image.properties
    assert read_all(service, good) == data

    image = service.get(bad, context=ADMIN)
    assert image.status is Status.QUEUED
    assert image.locations == () and image.checksum is None
    assert VERIFYING not in image.properties


def test_data_gone_before_verification_leaves_the_image_queued(service: ImageService) -> None:
    handover = LocationHandover(service)
    data = b"abc" * 1000
    image = service.create(META, context=ADMIN)
    path = Path(service.stores.get().datadir) / image.id  # type: ignore[attr-defined]
    path.write_bytes(data)
    # the request's checks pass, then the data vanishes before the read-back
    handover._jobs.put = lambda image_id: None  # type: ignore[method-assign]
    handover.add(image.id, f"file://{path}", ValidationData(), context=ADMIN)
    assert service.get(image.id, context=ADMIN).status is Status.IMPORTING
    with pytest.raises(errors.NotFound):  # no data to download while verifying
        service.download(image.id, context=ADMIN)
    path.unlink()
    assert handover.verify(image.id) is not None
    image = service.get(image.id, context=ADMIN)
    assert image.status is Status.QUEUED and image.locations == ()


def test_validation_data_is_checked_before_anything_happens() -> None:
    assert ValidationData.parse(None) == ValidationData()
    parsed = ValidationData.parse({"os_hash_algo": "sha512", "os_hash_value": "AB" * 64})
    assert parsed.os_hash_value == "ab" * 64
    for bad in (
        [],
        {"checksum": "0" * 31},
        {"os_hash_value": "00" * 32},
        {"os_hash_algo": "sha256", "os_hash_value": "00" * 64},
        {"os_hash_algo": "whirlpool", "os_hash_value": "00"},
        {"size": 5},
    ):
        with pytest.raises(errors.ValidationError):
            ValidationData.parse(bad)


def test_properties_set_while_verifying_are_kept(
    service: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    handover = LocationHandover(service)
    handover._jobs.put = lambda image_id: None  # type: ignore[method-assign]
    data = os.urandom(10_000)
    image = service.create(META, context=ADMIN)
    path = Path(service.stores.get().datadir) / image.id  # type: ignore[attr-defined]
    path.write_bytes(data)
    handover.add(image.id, f"file://{path}", ValidationData(), context=ADMIN)
    read_back = handover_mod._read_back

    def user_edits_meanwhile(*args: Any) -> tuple[int, str, str]:
        service.update(image.id, {"properties": {"os_distro": "debian"}}, context=ADMIN)
        return read_back(*args)

    monkeypatch.setattr(handover_mod, "_read_back", user_edits_meanwhile)
    verified = handover.verify(image.id)
    assert verified is not None and verified.status is Status.ACTIVE
    assert verified.properties == {"os_distro": "debian"}
