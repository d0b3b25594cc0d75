"""Every hook goes through pluggy, once per event: a plugin's wrapper and the plugin
manager's call monitoring (what ``pm.enable_tracing()`` uses) see each call exactly once,
with the same arguments the plugins get."""

from __future__ import annotations

import io
import wsgiref.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tank import errors, hookimpl, hookspecs
from tank.api import make_app
from tank.cli.inventory import store_rows
from tank.config import load
from tank.model import Context
from tank.plugins import make_plugin_manager
from tank.service import ImageService

from .conftest import Recorder

ADMIN = Context.admin()
META = {"name": "hooked", "disk_format": "raw", "container_format": "bare"}
LIFECYCLE = {
    "created",
    "activated",
    "updated",
    "deleted",
    "killed",
    "upload_started",
    "data_stored",
    "upload_failed",
    "sent",
}
MEMBERS = {"member_created", "member_updated", "member_deleted"}


class Wrapper:
    """Wraps every Tank hook, as a tracing or metrics plugin would."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def _saw(self, hook: str, image: Any = None) -> None:
        self.seen.append(
            (hook.removeprefix("tank_image_").removeprefix("tank_"), image.id if image else "")
        )

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

    @hookimpl(wrapper=True)
    def tank_register_notification_sinks(self, register):  # type: ignore[no-untyped-def]
        self._saw("tank_register_notification_sinks")
        return (yield)

    @hookimpl(wrapper=True)
    def tank_image_upload_started(self, image):  # type: ignore[no-untyped-def]
        self._saw("tank_image_upload_started", image)
        return (yield)

    @hookimpl(wrapper=True)
    def tank_image_data_stored(self, image):  # type: ignore[no-untyped-def]
        self._saw("tank_image_data_stored", image)
        return (yield)

    @hookimpl(wrapper=True)
    def tank_image_upload_failed(self, image):  # type: ignore[no-untyped-def]
        self._saw("tank_image_upload_failed", image)
        return (yield)

    @hookimpl(wrapper=True)
    def tank_image_sent(self, image):  # type: ignore[no-untyped-def]
        self._saw("tank_image_sent", image)
        return (yield)

    @hookimpl(wrapper=True)
    def tank_member_created(self, member):  # type: ignore[no-untyped-def]
        self.seen.append(("member_created", member.image_id))
        return (yield)

    @hookimpl(wrapper=True)
    def tank_member_updated(self, member):  # type: ignore[no-untyped-def]
        self.seen.append(("member_updated", member.image_id))
        return (yield)

    @hookimpl(wrapper=True)
    def tank_member_deleted(self, member):  # type: ignore[no-untyped-def]
        self.seen.append(("member_deleted", member.image_id))
        return (yield)


def _get(path: str) -> dict[str, Any]:
    """A WSGI environ for ``GET path`` (the download goes through the API's data path)."""
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
    wsgiref.util.setup_testing_defaults(environ)
    return environ


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
    body = make_app(service)(_get(f"/v2/images/{image.id}/file"), lambda *a: None)
    assert b"".join(body) == b"data"
    body.close()  # type: ignore[attr-defined]
    service.add_member(image.id, "bob", context=ADMIN)
    service.set_member_status(image.id, "bob", "accepted", context=ADMIN)
    service.remove_member(image.id, "bob", context=ADMIN)
    service.delete(image.id, context=ADMIN)
    with pytest.raises(errors.SizeMismatch):
        service.create(META, data=iter([b"short"]), size=10, context=ADMIN)
    failed = recorder.events[-1][1]
    store_rows(service.plugins)  # `tank stores` learns owners without calling again
    service.plugins.store_types()
    service.plugins.import_step_types()  # the [import] steps, built on demand
    service.plugins.import_step_types()

    service.plugins.sink_types()
    service.plugins.sink_types()

    events = [(kind, image_id) for kind, image_id, _ in recorder.events]
    assert events == [
        ("created", image.id),
        ("upload_started", image.id),
        ("data_stored", image.id),
        ("activated", image.id),
        ("updated", image.id),
        ("sent", image.id),
        ("member_created", image.id),
        ("member_updated", image.id),
        ("member_deleted", image.id),
        ("deleted", image.id),
        ("created", failed),
        ("upload_started", failed),
        ("upload_failed", failed),
        ("killed", failed),
    ]
    lifecycle = [seen for seen in wrapper.seen if seen[0] in LIFECYCLE | MEMBERS]
    assert lifecycle == events
    registration = [hook for hook, _ in wrapper.seen if hook not in LIFECYCLE | MEMBERS]
    assert sorted(registration) == [
        "register_import_steps",
        "register_notification_sinks",
        "register_registries",
        "register_stores",
    ]
    names = {f"tank_image_{k}" for k in LIFECYCLE} | {f"tank_{k}" for k in MEMBERS}
    assert [f"tank_image_{k}" if k in LIFECYCLE else f"tank_{k}" for k, _ in events] == [
        name for name in monitored if name in names
    ]
    assert sorted(n for n in monitored if n.startswith("tank_register_")) == sorted(
        f"tank_{hook}" for hook in registration
    )


def test_every_hook_is_exercised_above() -> None:
    names = {n for n in vars(hookspecs) if n.startswith("tank_")}
    assert names == {f"tank_image_{k}" for k in LIFECYCLE} | {f"tank_{k}" for k in MEMBERS} | {
        "tank_register_stores",
        "tank_register_registries",
        "tank_register_import_steps",
        "tank_register_notification_sinks",
    }
