"""Every hook goes through pluggy, once per event: a plugin's wrapper and the plugin
manager's call monitoring (what ``pm.enable_tracing()`` uses) see each call exactly once,
with the same arguments the plugins get."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tank import errors, hookimpl, hookspecs
from tank.cli.inventory import store_rows
from tank.config import load
from tank.model import Context
from tank.plugins import make_plugin_manager
from tank.service import ImageService

from .conftest import Recorder

ADMIN = Context.admin()
META = {"name": "hooked", "disk_format": "raw", "container_format": "bare"}
LIFECYCLE = {"created", "activated", "updated", "deleted", "killed"}


class Wrapper:
    """Wraps every Tank hook, as a tracing or metrics plugin would."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def _saw(self, hook: str, image: Any = None) -> None:
        self.seen.append((hook.removeprefix("tank_image_"), image.id if image else ""))

    @hookimpl(wrapper=True)
    def tank_register_stores(self, register):  # type: ignore[no-untyped-def]
        self._saw("tank_register_stores")
        return (yield)

    @hookimpl(wrapper=True)
    def tank_register_registries(self, register):  # type: ignore[no-untyped-def]
        self._saw("tank_register_registries")
        return (yield)

    @hookimpl(wrapper=True)
    def tank_register_import_steps(self, register):  # type: ignore[no-untyped-def]
        self._saw("tank_register_import_steps")
        return (yield)

    @hookimpl(wrapper=True)
    def tank_image_created(self, image):  # type: ignore[no-untyped-def]
        self._saw("tank_image_created", image)
        return (yield)

    @hookimpl(wrapper=True)
    def tank_image_activated(self, image):  # type: ignore[no-untyped-def]
        self._saw("tank_image_activated", image)
        return (yield)

    @hookimpl(wrapper=True)
    def tank_image_updated(self, image):  # type: ignore[no-untyped-def]
        self._saw("tank_image_updated", image)
        return (yield)

    @hookimpl(wrapper=True)
    def tank_image_deleted(self, image):  # type: ignore[no-untyped-def]
        self._saw("tank_image_deleted", image)
        return (yield)

    @hookimpl(wrapper=True)
    def tank_image_killed(self, image):  # type: ignore[no-untyped-def]
        self._saw("tank_image_killed", image)
        return (yield)


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[ImageService, Recorder, Wrapper, list[str]]]:
    recorder, wrapper = Recorder(), Wrapper()
    plugins = make_plugin_manager(plugins=[("recorder", recorder), ("wrapper", wrapper)])
    monitored: list[str] = []
    plugins.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: monitored.append(name), lambda *_: None
    )
    config = load(data_dir=tmp_path / "data", environ={})
    with ImageService.from_config(config, plugins) as service:
        yield service, recorder, wrapper, monitored


def test_each_event_is_one_hook_call(traced) -> None:  # type: ignore[no-untyped-def]
    service, recorder, wrapper, monitored = traced
    image = service.create(META, data=io.BytesIO(b"data"), context=ADMIN)
    service.update(image.id, {"name": "renamed"}, context=ADMIN)
    service.delete(image.id, context=ADMIN)
    with pytest.raises(errors.SizeMismatch):
        service.create(META, data=iter([b"short"]), size=10, context=ADMIN)
    failed = recorder.events[-1][1]
    store_rows(service.plugins)  # `tank stores` learns owners without calling again
    service.plugins.store_types()
    service.plugins.import_step_types()  # the [import] steps, built on demand
    service.plugins.import_step_types()

    events = [(kind, image_id) for kind, image_id, _ in recorder.events]
    assert events == [
        ("created", image.id),
        ("activated", image.id),
        ("updated", image.id),
        ("deleted", image.id),
        ("created", failed),
        ("killed", failed),
    ]
    lifecycle = [seen for seen in wrapper.seen if seen[0] in LIFECYCLE]
    assert lifecycle == events
    registration = [hook for hook, _ in wrapper.seen if hook not in LIFECYCLE]
    assert sorted(registration) == [
        "tank_register_import_steps",
        "tank_register_registries",
        "tank_register_stores",
    ]
    assert [f"tank_image_{kind}" for kind, _ in events] == [
        name for name in monitored if name.startswith("tank_image_")
    ]
    assert sorted(n for n in monitored if n.startswith("tank_register_")) == sorted(registration)


def test_every_hook_is_exercised_above() -> None:
    names = {n for n in vars(hookspecs) if n.startswith("tank_")}
    assert names == {f"tank_image_{k}" for k in LIFECYCLE} | {
        "tank_register_stores",
        "tank_register_registries",
        "tank_register_import_steps",
    }
