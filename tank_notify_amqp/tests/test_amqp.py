"""The ``amqp`` sink against a real RabbitMQ (``tests/servers/rabbitmq.sh``), received
with an unchanged oslo.messaging notification listener, the way Ceilometer receives
Glance's notifications."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kombu
import pytest
import requests

from tank.notify import metrics
from tank.notify.events import Event
from tank.testing.api_server import ApiServer
from tank_notify_amqp import transport_url
from tank_notify_amqp.sink import AmqpConfig, AmqpSink

oslo_messaging = pytest.importorskip(
    "oslo_messaging", reason="pip install -e './tank_notify_amqp[testing]'"
)
from oslo_config import cfg  # noqa: E402 - after the skip: comes with oslo.messaging

URL = os.environ.get("TANK_TEST_AMQP_URL")
pytestmark = pytest.mark.skipif(
    not URL,
    reason="TANK_TEST_AMQP_URL is not set: start RabbitMQ with "
    '`bash tests/servers/rabbitmq.sh start` and `eval "$(bash tests/servers/rabbitmq.sh env)"`',
)
WAIT = 30.0


class Received:
    """An oslo.messaging notification endpoint: records what the listener hands it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.changed = threading.Condition()

    def _got(self, priority: str, ctxt: Any, publisher_id: str, event_type: str,
             payload: Any, metadata: dict[str, Any]) -> None:  # fmt: skip
        with self.changed:
            self.events.append(
                {
                    "priority": priority,
                    "ctxt": ctxt,
                    "publisher_id": publisher_id,
                    "event_type": event_type,
                    "payload": payload,
                    "metadata": metadata,
                }
            )
            self.changed.notify_all()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):  # type: ignore[no-untyped-def]
        self._got("INFO", ctxt, publisher_id, event_type, payload, metadata)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):  # type: ignore[no-untyped-def]
        self._got("ERROR", ctxt, publisher_id, event_type, payload, metadata)

    def wait_for(self, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        with self.changed:
            while not done(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    types = [e["event_type"] for e in self.events]
                    pytest.fail(f"the listener did not get the events in {WAIT} s; got {types}")
                self.changed.wait(left)
            return list(self.events)


@pytest.fixture
def topic() -> str:
    """A topic of the test's own: its queues (``<topic>.info``) are nobody else's."""
    return f"tank_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def listener(topic: str) -> Iterator[Received]:
    """oslo.messaging's notification listener on exchange ``glance``, as Ceilometer runs
    it, with nothing configured but the transport URL."""
    conf = cfg.ConfigOpts()
    conf([], project="tank-test")
    transport = oslo_messaging.get_notification_transport(conf, url=URL)
    received = Received()
    server = oslo_messaging.get_notification_listener(
        transport,
        [oslo_messaging.Target(topic=topic, exchange="glance")],
        [received],
        executor="threading",
    )
    server.start()
    yield received
    server.stop()
    server.wait()
    transport.cleanup()
    _delete_queues(topic)


def _delete_queues(topic: str) -> None:
    assert URL is not None
    with kombu.Connection(transport_url.parse(URL).kombu_urls()) as conn:
        channel = conn.channel()
        for priority in ("info", "error"):
            try:
                channel.queue_delete(f"{topic}.{priority}")
            except Exception:  # noqa: BLE001 - never declared
                channel = conn.channel()


def _config(tmp_path: Path, topic: str, **amqp: Any) -> Path:
    lines = [f'transport_url = "{URL}"', f'topic = "{topic}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in amqp.items()]
    path = tmp_path / "tank.toml"
    path.write_text('[notifications]\nsinks = ["amqp"]\n[notifications.amqp]\n' + "\n".join(lines))
    return path


def test_an_oslo_listener_receives_tank_api_events_as_glance_sends_them(
    tmp_path: Path, topic: str, listener: Received
) -> None:
    for needed in ("tank_store_fs", "tank_registry_sql"):  # what a tank-api serves with
        pytest.importorskip(needed, reason=f"tank-api needs {needed} (nox -s tests_all has it)")
    server = ApiServer(
        tmp_path / "data", tmp_path / "api.log", ["--config", str(_config(tmp_path, topic))]
    )
    try:
        v2 = server.url + "/v2"
        data = os.urandom(100_000)
        image = requests.post(
            v2 + "/images",
            json={"name": "amqp", "disk_format": "raw", "container_format": "bare"},
            timeout=10,
        ).json()
        iid = image["id"]
        put = requests.put(
            f"{v2}/images/{iid}/file",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=10,
        )
        assert put.status_code == 204, put.text
        assert requests.get(f"{v2}/images/{iid}/file", timeout=10).content == data
        # a failed upload: an ERROR event, on <topic>.error
        bad = requests.post(
            v2 + "/images",
            json={"name": "short", "disk_format": "raw", "container_format": "bare"},
            timeout=10,
        ).json()
        put = requests.put(
            f"{v2}/images/{bad['id']}/file",
            data=b"abc",
            headers={"Content-Type": "application/octet-stream", "x-openstack-image-size": "10"},
            timeout=10,
        )
        assert put.status_code == 400, put.text
        assert requests.delete(f"{v2}/images/{iid}", timeout=10).status_code == 204

        events = listener.wait_for(
            lambda got: (
                any(e["event_type"] == "image.delete" for e in got)
                and any(e["priority"] == "ERROR" for e in got)
            )
        )
    finally:
        server.stop()
    mine = [(e["event_type"], e["priority"]) for e in events if _about(e, iid)]
    assert mine == [
        ("image.create", "INFO"),
        ("image.update", "INFO"),
        ("image.prepare", "INFO"),
        ("image.upload", "INFO"),
        ("image.activate", "INFO"),
        ("image.update", "INFO"),
        ("image.send", "INFO"),
        ("image.delete", "INFO"),
    ]
    by_type = {e["event_type"]: e for e in events if _about(e, iid)}
    for event in events:
        assert event["publisher_id"] == "image.localhost"
        uuid.UUID(event["metadata"]["message_id"])
        assert event["metadata"]["timestamp"]
    upload = by_type["image.upload"]["payload"]
    assert upload["status"] == "active" and upload["size"] == len(data)
    assert upload["checksum"] == hashlib.md5(data).hexdigest()
    assert "locations" not in upload and "location" not in upload
    send = by_type["image.send"]["payload"]
    assert send["bytes_sent"] == len(data) and send["image_id"] == iid
    assert by_type["image.delete"]["payload"]["deleted"] is True
    errors = [e for e in events if e["priority"] == "ERROR"]
    assert [e["event_type"] for e in errors] == ["image.upload"]
    assert bad["id"] in errors[0]["payload"]  # Glance's ERROR payload is a message


def _about(event: dict[str, Any], image_id: str) -> bool:
    payload = event["payload"]
    return isinstance(payload, dict) and image_id in (payload.get("id"), payload.get("image_id"))


def test_on_the_wire_as_oslo_messaging_publishes(topic: str) -> None:
    """The same event published by oslo.messaging's own Notifier (driver messagingv2)
    and by the sink: same exchange, routing key, envelope and message keys."""
    assert URL is not None
    conf = cfg.ConfigOpts()
    conf([], project="tank-test")
    oslo_messaging.set_transport_defaults("glance")  # what glance.notifier.set_defaults does
    transport = oslo_messaging.get_notification_transport(conf, url=URL)
    oslo = oslo_messaging.Notifier(
        transport, publisher_id="image.localhost", driver="messagingv2", topics=[topic]
    )
    sink = AmqpSink(AmqpConfig(transport_url=URL, topic=topic))
    try:
        oslo.info({}, "image.create", {"id": "from-oslo"})
        sink.send(Event(event_type="image.create", payload={"id": "from-tank"}))
        sink.close(10)
        bodies = _drain(f"{topic}.info", 2)
    finally:
        transport.cleanup()
        _delete_queues(topic)
    (oslo_body, oslo_props), (tank_body, tank_props) = sorted(
        bodies, key=lambda b: json.loads(b[0]["oslo.message"])["payload"]["id"] != "from-oslo"
    )
    assert set(tank_body) == set(oslo_body) == {"oslo.version", "oslo.message"}
    assert tank_body["oslo.version"] == oslo_body["oslo.version"] == "2.0"
    oslo_msg, tank_msg = (
        json.loads(oslo_body["oslo.message"]),
        json.loads(tank_body["oslo.message"]),
    )
    assert set(tank_msg) == set(oslo_msg)
    for key in ("publisher_id", "event_type", "priority"):
        assert tank_msg[key] == oslo_msg[key]
    assert len(tank_msg["timestamp"]) == len(oslo_msg["timestamp"])  # str(utcnow())
    assert tank_props == oslo_props


def _drain(queue: str, count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``count`` raw messages of ``queue``: the decoded body and what AMQP says of it."""
    assert URL is not None
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with kombu.Connection(transport_url.parse(URL).kombu_urls()) as conn:
        channel = conn.default_channel  # py-amqp's: basic_get takes the queue as it is
        deadline = time.monotonic() + WAIT
        while len(out) < count:
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                assert time.monotonic() < deadline, f"{queue} got {len(out)} of {count}"
                time.sleep(0.1)
                continue
            props = {
                "content_type": message.properties.get("content_type"),
                "content_encoding": message.properties.get("content_encoding"),
                "exchange": message.delivery_info["exchange"],
                "routing_key": message.delivery_info["routing_key"],
                "delivery_mode": message.properties.get("delivery_mode"),
            }
            out.append((json.loads(message.body), props))
    return out


def test_a_broker_that_is_down_never_holds_up_a_request(free_port: int) -> None:
    """A broker that takes connections and never answers (a hung one): each delivery
    attempt waits out ``timeout`` in the sink's thread, while sending only queues the
    event; the events are then dropped and counted."""
    with socket.create_server(("127.0.0.1", free_port)):  # listens, never accepts
        sink = AmqpSink(
            AmqpConfig(
                transport_url=f"rabbit://tank:s3cret-pass@127.0.0.1:{free_port}/",
                retries=1,
                backoff=0.05,
                timeout=3.0,
            )
        )
        before = metrics.dropped("amqp")
        for n in range(5):
            sink.send(Event(event_type="image.update", payload={"n": n}))
        # a send that waited for its delivery would have seen two attempts time out and
        # the event dropped: all five are still queued (or in their first attempt)
        assert sink.pending() == 5
        assert metrics.dropped("amqp") == before
        sink.close(0)  # gives up what is queued; the attempt under way ends by its timeout
        deadline = time.monotonic() + WAIT
        while metrics.dropped("amqp") - before < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert metrics.dropped("amqp") - before == 5
    assert "s3cret" not in sink.describe() and str(free_port) in sink.describe()


def test_refused_credentials_are_never_logged(topic: str, caplog: pytest.LogCaptureFixture) -> None:
    assert URL is not None
    parsed = transport_url.parse(URL)
    host = parsed.hosts[0]
    bad = f"rabbit://{host.username}:wrong-pw-4711@{host.hostname}:{host.port}/"
    sink = AmqpSink(AmqpConfig(transport_url=bad, topic=topic, retries=1, backoff=0.01))
    before = metrics.dropped("amqp")
    with caplog.at_level(logging.DEBUG):
        sink.send(Event(event_type="image.create", payload={}))
        sink.close(30)
        deadline = time.monotonic() + WAIT
        while metrics.dropped("amqp") == before and time.monotonic() < deadline:
            time.sleep(0.05)
    assert metrics.dropped("amqp") - before == 1
    assert "ACCESS_REFUSED" in caplog.text or "refused" in caplog.text.lower()
    assert "wrong-pw-4711" not in caplog.text
