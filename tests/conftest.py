"""End-to-end fixtures: a Tank built from installed plugins (fs store + SQL registry), in
this process (``service``). A real ``tank-api`` process (``api``, ``start_api``) comes from
Tank's pytest plugin, :mod:`tank.testing.plugin` (see the root conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tank import hookimpl
from tank.config import load
from tank.plugins import make_plugin_manager
from tank.service import ImageService


class Recorder:
    """A plugin that records lifecycle events, as a notifications plugin would see them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    @hookimpl
    def tank_image_created(self, image):  # type: ignore[no-untyped-def]
        self.events.append(("created", image.id, image.status.value))

    @hookimpl
    def tank_image_activated(self, image):  # type: ignore[no-untyped-def]
        self.events.append(("activated", image.id, image.status.value))

    @hookimpl
    def tank_image_updated(self, image, previous):  # type: ignore[no-untyped-def]
        self.events.append(("updated", image.id, image.status.value))

    @hookimpl
    def tank_image_deleted(self, image):  # type: ignore[no-untyped-def]
        self.events.append(("deleted", image.id, image.status.value))

    @hookimpl
    def tank_image_killed(self, image, reason):  # type: ignore[no-untyped-def]
        self.events.append(("killed", image.id, reason))

    @hookimpl
    def tank_image_upload_started(self, image, store):  # type: ignore[no-untyped-def]
        self.events.append(("upload_started", image.id, store))

    @hookimpl
    def tank_image_data_stored(self, image, store):  # type: ignore[no-untyped-def]
        self.events.append(("data_stored", image.id, store))

    @hookimpl
    def tank_image_upload_failed(self, image, reason):  # type: ignore[no-untyped-def]
        self.events.append(("upload_failed", image.id, reason))

    @hookimpl
    def tank_image_sent(self, image, bytes_sent, expected):  # type: ignore[no-untyped-def]
        self.events.append(("sent", image.id, f"{bytes_sent}/{expected}"))

    @hookimpl
    def tank_member_created(self, member):  # type: ignore[no-untyped-def]
        self.events.append(("member_created", member.image_id, member.member))

    @hookimpl
    def tank_member_updated(self, member):  # type: ignore[no-untyped-def]
        self.events.append(("member_updated", member.image_id, member.member))

    @hookimpl
    def tank_member_deleted(self, member):  # type: ignore[no-untyped-def]
        self.events.append(("member_deleted", member.image_id, member.member))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "tank-data"


@pytest.fixture
def service(data_dir: Path, recorder: Recorder) -> Iterator[ImageService]:
    plugins = make_plugin_manager(plugins=[("recorder", recorder)])
    with ImageService.from_config(load(data_dir=data_dir, environ={}), plugins) as svc:
        yield svc
