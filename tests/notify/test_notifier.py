"""The notifier in process: no event for a change the registry did not commit, sinks
as plugins, Glance's disabled_notifications, the log sink, configuration errors."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from tank import errors, hookimpl
from tank.config import load
from tank.model import Context, Status
from tank.notify.events import Event
from tank.notify.sink import Sink
from tank.plugins import make_plugin_manager
from tank.service import ImageService

ADMIN = Context(tenant="ops", user="op", is_admin=True)
META = {"name": "n", "disk_format": "raw", "container_format": "bare"}


@attrs.frozen
class MemoryConfig:
    label: str = "memory"


class MemorySink(Sink):
    """A sink a plugin contributes, through the same hook as the built-in ones."""

    name: ClassVar[str] = "memory"
    Config: ClassVar[type[MemoryConfig]] = MemoryConfig
    received: ClassVar[list[Event]] = []

    def send(self, event: Event) -> None:
        MemorySink.received.append(event)


class MemoryPlugin:
    @hookimpl
    def tank_register_notification_sinks(self, register):  # type: ignore[no-untyped-def]
        register(MemorySink)


def make_service(tmp_path: Path, text: str) -> ImageService:
    path = tmp_path / "tank.toml"
    path.write_text(text)
    plugins = make_plugin_manager(plugins=[("memory-sink", MemoryPlugin())])
    return ImageService.from_config(load(path, data_dir=tmp_path / "data", environ={}), plugins)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ImageService]:
    MemorySink.received.clear()
    with make_service(tmp_path, '[notifications]\nsinks = ["memory"]\n') as svc:
        yield svc


def types() -> list[str]:
    return [e.event_type + (":ERROR" if e.priority == "ERROR" else "") for e in MemorySink.received]


def test_an_upload_whose_activation_is_not_committed_sends_no_success(
    service: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry fails to record the image active (the database went away at
    commit): the data is removed, the image killed, and no image.upload (INFO) or
    image.activate is ever sent: only Glance's ERROR image.upload."""
    update = service.registry.update

    def failing(image_id: str, changes: dict[str, Any], **kw: Any) -> Any:
        if changes.get("status") is Status.ACTIVE:
            raise errors.StoreUnavailable("the registry database went away")
        return update(image_id, changes, **kw)

    monkeypatch.setattr(service.registry, "update", failing)
    with pytest.raises(errors.StoreUnavailable):
        service.create(META, data=io.BytesIO(b"data"), context=ADMIN)
    assert types() == [
        "image.create",
        "image.update",
        "image.prepare",
        "image.upload:ERROR",
        "image.update",
    ]
    assert MemorySink.received[-1].payload["status"] == "killed"
    assert "went away" in MemorySink.received[3].payload


def test_a_change_the_registry_refused_sends_nothing(
    service: ImageService, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = service.create(META, context=ADMIN)
    MemorySink.received.clear()

    def refuse(*args: Any, **kw: Any) -> Any:
        raise errors.StoreUnavailable("the registry database went away")

    for name in ("create", "update", "delete", "add_member", "remove_member",
                 "set_member_status", "replace_members"):  # fmt: skip
        monkeypatch.setattr(service.registry, name, refuse)
    calls = [
        lambda: service.create(META, context=ADMIN),
        lambda: service.update(image.id, {"name": "x"}, context=ADMIN),
        lambda: service.delete(image.id, context=ADMIN),
        lambda: service.add_member(image.id, "bob", context=ADMIN),
        lambda: service.replace_members(image.id, [("bob", False)], context=ADMIN),
        lambda: service.set_member_status(image.id, "bob", "accepted", context=ADMIN),
        lambda: service.remove_member(image.id, "bob", context=ADMIN),
    ]
    for call in calls:
        with pytest.raises(errors.StoreUnavailable):
            call()
    assert MemorySink.received == []


def test_disabled_event_types_and_groups_are_not_sent(tmp_path: Path) -> None:
    MemorySink.received.clear()
    text = '[notifications]\nsinks = ["memory"]\ndisabled = ["image.member", "image.prepare"]\n'
    with make_service(tmp_path, text) as service:
        image = service.create(META, data=io.BytesIO(b"data"), context=ADMIN)
        service.add_member(image.id, "bob", context=ADMIN)
    assert types() == ["image.create", "image.update", "image.upload", "image.activate",
                       "image.update"]  # fmt: skip


def test_a_location_registered_image_is_created_and_activated_but_not_uploaded(
    service: ImageService, tmp_path: Path
) -> None:
    """No data was written (image.upload is for data Tank received)."""
    data = tmp_path / "data" / "images" / "elsewhere"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(b"1234")
    service.create(META, location=f"file://{data}", context=ADMIN)
    assert types() == ["image.create", "image.activate", "image.update"]


def test_the_log_sink_writes_one_json_line_per_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = '[notifications]\nsinks = ["log"]\npublisher_id = "image.{host}"\n'
    with caplog.at_level(logging.INFO, logger="tank.notifications"):
        with make_service(tmp_path, text) as service:
            with pytest.raises(errors.SizeMismatch):
                service.create(META, data=io.BytesIO(b"abc"), size=10, context=ADMIN)
    lines = [r for r in caplog.records if r.name == "tank.notifications"]
    messages = [json.loads(r.getMessage()) for r in lines]
    assert [m["event_type"] for m in messages] == [
        "image.create", "image.update", "image.prepare", "image.upload", "image.update",
    ]  # fmt: skip
    assert [r.levelno for r in lines] == [logging.INFO] * 3 + [logging.ERROR, logging.INFO]
    assert (
        messages[0]["publisher_id"].startswith("image.")
        and "{host}" not in messages[0]["publisher_id"]
    )


@pytest.mark.parametrize(
    "text,message",
    [
        (
            '[notifications]\nsinks = ["nope"]\n',
            "[notifications] sinks: no installed notification sink 'nope'; installed: ",
        ),
        (
            '[notifications]\nsinks = ["amqp"]\n',
            "no installed notification sink 'amqp' (install tank-notify-amqp)",
        ),
        (
            '[notifications]\nsinks = ["log"]\n[notifications.webhook]\nurl = "http://h/"\n',
            "[notifications.webhook]: sink 'webhook' is not in [notifications] sinks (log)",
        ),
        (
            '[notifications]\nsinks = ["webhook"]\n',
            "[notifications.webhook] url: required key is missing",
        ),
        (
            '[notifications]\nsinks = ["webhook"]\n[notifications.webhook]\n'
            'url = "https://user:pw@h/"\n',
            "[notifications.webhook] url: must not contain credentials",
        ),
        (
            '[notifications]\nsinks = ["log", "log"]\n',
            "[notifications] sinks: a sink is listed twice",
        ),
        ('[notifications]\nsink = ["log"]\n', "[notifications] sink: unknown key"),
    ],
)
def test_configuration_errors_name_the_file_section_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "tank.toml"
    path.write_text(text)
    plugins = make_plugin_manager(autoload=False)  # only tank-core's sinks
    with pytest.raises(errors.ConfigError) as info:
        ImageService.from_config(load(path, data_dir=tmp_path / "data", environ={}), plugins)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))
    assert "pw@" not in str(info.value)
