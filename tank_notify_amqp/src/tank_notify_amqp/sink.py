"""The ``amqp`` sink: each event published with kombu as oslo.messaging's
``messagingv2`` notification driver publishes it (``impl_rabbit.Connection.notify_send``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar

import attrs
import kombu

from tank.notify.events import Event
from tank.notify.sink import QueueConfig, QueuedSink
from tank_notify_amqp import transport_url

#: oslo.messaging's envelope (``_drivers/common.py``: ``_RPC_ENVELOPE_VERSION``).
ENVELOPE_VERSION = "2.0"


def _transport_url(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    try:
        transport_url.parse(value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name} {exc}") from None


def _identifier(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{attribute.name} must be a non-empty name without spaces")


@attrs.frozen(kw_only=True)
class AmqpConfig(QueueConfig):
    """``[notifications.amqp]``."""

    #: oslo.messaging's transport URL: ``rabbit://user:pass@host:5672/vhost``.
    transport_url: str = attrs.field(validator=_transport_url, repr=False)
    #: oslo's notification topic: routing keys ``<topic>.info``, ``<topic>.error``.
    topic: str = attrs.field(default="notifications", validator=_identifier)
    #: The topic exchange (oslo's ``control_exchange``; Glance sets ``glance``).
    exchange: str = attrs.field(default="glance", validator=_identifier)
    #: oslo's ``amqp_durable_queues``: must match how the listeners declare them.
    durable: bool = False


def envelope(event: Event) -> dict[str, str]:
    """The body oslo.messaging publishes for a notification: the message, with the
    ``_unique_id`` its AMQP driver adds, serialised inside a 2.0 envelope."""
    message = {**event.message(), "_unique_id": uuid.uuid4().hex}
    return {"oslo.version": ENVELOPE_VERSION, "oslo.message": json.dumps(message)}


class AmqpSink(QueuedSink):
    name: ClassVar[str] = "amqp"
    Config: ClassVar[type[AmqpConfig]] = AmqpConfig
    config: AmqpConfig

    def __init__(self, config: AmqpConfig) -> None:
        super().__init__(config)
        self.url = transport_url.parse(config.transport_url)
        self.exchange = kombu.Exchange(
            config.exchange, type="topic", durable=config.durable, auto_delete=False
        )
        self._connection: kombu.Connection | None = None
        self._producer: kombu.Producer | None = None
        #: Queues declared on this connection (oslo declares each once per connection).
        self._declared: set[str] = set()

    def describe(self) -> str:
        return f"{self.url.describe()} exchange {self.config.exchange!r}"

    def _connect(self) -> kombu.Producer:
        if self._producer is None:
            connection = kombu.Connection(
                self.url.kombu_urls(),
                connect_timeout=self.config.timeout,
                failover_strategy="round-robin",
                transport_options={
                    "read_timeout": self.config.timeout,
                    "write_timeout": self.config.timeout,
                },
            )
            try:
                # one try here: the sink's own retries back off between events' attempts
                connection.ensure_connection(
                    max_retries=1, interval_start=0, interval_step=0, timeout=self.config.timeout
                )
                producer = kombu.Producer(connection.channel())
            except BaseException:
                connection.release()
                raise
            self._connection, self._producer = connection, producer
            self._declared.clear()
        return self._producer

    def deliver(self, event: Event) -> None:
        producer = self._connect()
        routing_key = f"{self.config.topic}.{event.priority.lower()}"
        declare = []
        if routing_key not in self._declared:
            # oslo's _publish_and_creates_default_queue: events wait for a listener
            declare = [
                kombu.Queue(
                    routing_key,
                    exchange=self.exchange,
                    routing_key=routing_key,
                    durable=self.config.durable,
                    auto_delete=False,
                )
            ]
        producer.publish(
            envelope(event),
            exchange=self.exchange,
            routing_key=routing_key,
            serializer="json",
            declare=declare,
            retry=False,
            timeout=self.config.timeout,
        )
        self._declared.add(routing_key)

    def forget(self) -> None:
        self._connection, self._producer = None, None

    def disconnect(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # noqa: BLE001 - the connection is being dropped anyway
                pass
