"""The notifier: an observer plugin that turns Tank's lifecycle hooks into Glance's
events and hands them to the configured sinks.

Which events, as Glance sends them (``glance/notifier.py``, ``glance/api/v2/``):

* ``image.create`` when an image is recorded;
* an upload: ``image.update`` (now ``saving``) and ``image.prepare`` when it starts, then
  ``image.upload``, ``image.activate`` and ``image.update`` (now ``active``) once the
  image is recorded active; if it fails, ``image.upload`` at ERROR priority (its payload
  a message, as Glance's) and ``image.update`` (``queued`` again, or ``killed``);
* an import: ``image.update`` as it starts (now ``importing``; copy-image: the stores it
  writes to listed), then, as Glance's import sets the data through the same notifying
  proxy store by store, ``image.prepare`` before and ``image.upload`` after each store's
  write, and ``image.activate`` and ``image.update`` once the image is active
  (copy-image: no ``image.activate``, the image was active already);
* a location registered or handed over: ``image.activate`` and ``image.update``, no
  ``image.upload`` (Tank received no data);
* ``image.update`` for every change of metadata, tags, deactivate and reactivate;
* ``image.delete`` (``deleted`` true, ``deleted_at`` set);
* ``image.send`` when a download ends (ERROR if fewer bytes went out than announced);
* ``image.member.create``, ``image.member.update``, ``image.member.delete``.

Every hook is called after the registry has committed the change, so an event always
describes a change that happened; a change that failed or was rolled back has none.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

import tank
from tank import config as config_mod
from tank.errors import ConfigError
from tank.model import Context, Image, Member, Status
from tank.notify import events
from tank.notify.events import ERROR, Event
from tank.notify.sink import Sink

if TYPE_CHECKING:
    from tank.plugins import Plugins

log = logging.getLogger(__name__)


def _names(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if len(set(value)) != len(value):
        raise ValueError(f"{attribute.name}: a sink is listed twice")


@attrs.frozen(kw_only=True)
class NotificationsConfig:
    """``[notifications]``: which sinks get events (each configured in its own
    ``[notifications.<sink>]`` table)."""

    #: Sinks by name: ``log``, ``webhook`` (tank-core), ``amqp`` (tank-notify-amqp).
    sinks: tuple[str, ...] = attrs.field(default=(), validator=_names)
    #: The ``publisher_id`` of every event (Glance's ``default_publisher_id``).
    publisher_id: str = events.DEFAULT_PUBLISHER_ID
    #: Event types (``image.send``) or groups (``image.member``, ``image``) not sent
    #: (Glance's ``disabled_notifications``).
    disabled: tuple[str, ...] = ()
    #: Seconds :meth:`Notifier.close` waits for the sinks to deliver what is queued.
    close_timeout: float = attrs.field(default=5.0, validator=config_mod.between(0, 600))
    #: The ``[notifications.<sink>]`` tables, raw until their sink is known.
    sink_options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, alias="_sinks")


def load_config(raw: Mapping[str, Any], source: str) -> NotificationsConfig:
    """``[notifications]``: its own keys strictly; a table under any other name is a
    sink's ``[notifications.<sink>]``."""
    where = f"{source} [notifications]"
    own = {str(f.alias) for f in attrs.fields(NotificationsConfig) if f.alias != "_sinks"}
    keys = {k: v for k, v in raw.items() if k in own or not isinstance(v, Mapping)}
    tables = {k: v for k, v in raw.items() if k not in keys}
    settings = config_mod.build(NotificationsConfig, keys, where=where)
    for name in tables:
        if name not in settings.sinks:
            raise ConfigError(
                f"{source} [notifications.{name}]: sink {name!r} is not in "
                f"[notifications] sinks ({', '.join(settings.sinks) or 'none'})"
            )
    return attrs.evolve(settings, _sinks=tables)


def build_sinks(
    settings: NotificationsConfig, sink_types: Mapping[str, type[Sink]], source: str
) -> list[Sink]:
    sinks = []
    for name in settings.sinks:
        cls = sink_types.get(name)
        if cls is None:
            hint = " (install tank-notify-amqp)" if name == "amqp" else ""
            raise ConfigError(
                f"{source} [notifications] sinks: no installed notification sink {name!r}"
                f"{hint}; installed: {', '.join(sorted(sink_types)) or 'none'}"
            )
        section = settings.sink_options.get(name, {})
        sinks.append(
            cls(config_mod.build(cls.Config, section, where=f"{source} [notifications.{name}]"))
        )
    return sinks


def _publisher_id(value: str) -> str:
    return value.replace("{host}", socket.gethostname())


class Notifier:
    """The observer plugin: one per :class:`~tank.service.ImageService` with sinks."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        publisher_id: str = events.DEFAULT_PUBLISHER_ID,
        disabled: Sequence[str] = (),
        close_timeout: float = 5.0,
    ) -> None:
        self.sinks = list(sinks)
        self.publisher_id = _publisher_id(publisher_id)
        self.disabled = frozenset(disabled)
        self.close_timeout = close_timeout

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], plugins: Plugins, *, source: str
    ) -> Notifier | None:
        """The notifier ``[notifications]`` asks for; None without sinks (the sinks'
        registration hook is then not even called)."""
        settings = load_config(raw, source)
        if not settings.sinks:
            return None
        return cls(
            build_sinks(settings, plugins.sink_types(), source),
            publisher_id=settings.publisher_id,
            disabled=settings.disabled,
            close_timeout=settings.close_timeout,
        )

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close(self.close_timeout)
            except Exception:
                log.exception("notification sink %s failed to close", sink.name)

    # --- sending ---------------------------------------------------------------------

    def enabled(self, event_type: str) -> bool:
        """Glance's ``_is_notification_enabled``: the type and its group (the part
        before the first dot) may be disabled; so may ``image.member``."""
        parts = event_type.split(".")
        prefixes = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
        return not (prefixes & self.disabled)

    def emit(self, event_type: str, payload: Any, priority: str = events.INFO) -> None:
        if not self.enabled(event_type):
            return
        event = Event(
            event_type=event_type,
            payload=payload,
            priority=priority,
            publisher_id=self.publisher_id,
        )
        for sink in self.sinks:
            try:
                sink.send(event)
            except Exception:
                log.exception("notification sink %s failed to take %s", sink.name, event_type)

    # --- the hooks -----------------------------------------------------------------

    @tank.hookimpl
    def tank_image_created(self, image: Image) -> None:
        self.emit("image.create", events.image_payload(image))

    @tank.hookimpl
    def tank_image_upload_started(self, image: Image, store: str) -> None:
        if image.status is Status.SAVING:  # an upload's status change (an import's: its own)
            self.emit("image.update", events.image_payload(image))
        payload = {**events.image_payload(image), **events.import_state(image), "backend": store}
        self.emit("image.prepare", payload)

    @tank.hookimpl
    def tank_image_data_stored(self, image: Image) -> None:
        self.emit("image.upload", {**events.image_payload(image), **events.import_state(image)})

    @tank.hookimpl
    def tank_image_activated(self, image: Image) -> None:
        self.emit("image.activate", events.image_payload(image))
        self.emit("image.update", events.image_payload(image))

    @tank.hookimpl
    def tank_image_upload_failed(self, image: Image, reason: str) -> None:
        self.emit("image.upload", events.upload_error(image, reason), ERROR)
        self.emit("image.update", events.image_payload(image))

    @tank.hookimpl
    def tank_image_updated(self, image: Image) -> None:
        self.emit("image.update", events.image_payload(image))

    @tank.hookimpl
    def tank_image_deleted(self, image: Image) -> None:
        self.emit("image.delete", events.deleted_payload(image))

    @tank.hookimpl
    def tank_image_sent(
        self, image: Image, bytes_sent: int, expected: int, context: Context
    ) -> None:
        priority = events.INFO if bytes_sent == expected else ERROR
        self.emit("image.send", events.send_payload(image, bytes_sent, context), priority)

    @tank.hookimpl
    def tank_member_created(self, member: Member) -> None:
        self.emit("image.member.create", events.member_payload(member))

    @tank.hookimpl
    def tank_member_updated(self, member: Member) -> None:
        self.emit("image.member.update", events.member_payload(member))

    @tank.hookimpl
    def tank_member_deleted(self, member: Member) -> None:
        self.emit("image.member.delete", events.member_payload(member, deleted=True))
