"""The webhook sink: retried until the receiver recovers, signed, never in a request's
way (a hanging receiver), a bounded queue whose drops are counted."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tank.notify import metrics
from tank.notify.events import Event
from tank.notify.webhook import WebhookConfig, WebhookSink, sign
from tank.testing.api_server import ApiServer

from .conftest import SECRET
from .receiver import Receiver

IMAGE = {"name": "hook", "disk_format": "raw", "container_format": "bare"}


def test_a_receiver_that_fails_first_gets_each_event_once_it_recovers(
    notifying_api: Callable[..., ApiServer], receiver: Receiver
) -> None:
    api = notifying_api()
    receiver.fail_next = 3  # the first three POSTs answer 500
    image = requests.post(api.url + "/v2/images", json=IMAGE, timeout=10).json()
    events = receiver.wait_for(lambda got: len(got) == 1)
    assert events[0]["event_type"] == "image.create" and events[0]["payload"]["id"] == image["id"]
    attempts = [(headers, body) for headers, body, _ in receiver.posts]
    assert [status for _, _, status in receiver.posts] == [500, 500, 500, 200]
    # the same delivery each time, every signature good
    assert len({h["X-Tank-Delivery"] for h, _ in attempts}) == 1
    assert {h["X-Tank-Delivery"] for h, _ in attempts} == {events[0]["message_id"]}
    assert all(receiver.verify(h, body) for h, body in attempts)
    assert all(h["X-Tank-Event"] == "image.create" for h, _ in attempts)
    assert all(h["Content-Type"] == "application/json" for h, _ in attempts)
    # a body changed in transit (or signed with another secret) does not verify
    headers, body = attempts[-1]
    assert not receiver.verify(headers, body.replace(b"hook", b"hack"))
    assert headers["X-Tank-Signature"] != sign("another secret", body)
    assert headers["X-Tank-Signature"] == sign(SECRET, body)


def test_a_hanging_receiver_never_holds_up_a_request(
    notifying_api: Callable[..., ApiServer], receiver: Receiver
) -> None:
    api = notifying_api()
    receiver.open.clear()  # every POST now waits, holding the sink's only connection
    durations = []
    ids = []
    for n in range(5):
        started = time.monotonic()
        resp = requests.post(api.url + "/v2/images", json={**IMAGE, "name": f"h{n}"}, timeout=10)
        durations.append(time.monotonic() - started)
        assert resp.status_code == 201
        ids.append(resp.json()["id"])
        if n == 0:
            receiver.wait_arrived(1)  # the first event is stuck at the receiver from here on
    assert max(durations) < 1.0, durations  # the receiver would hold a request for 10 s
    assert receiver.delivered() == []
    receiver.open.set()
    events = receiver.wait_for(lambda got: len(got) == 5)
    assert [e["payload"]["id"] for e in events] == ids  # in order, none lost


def test_a_full_queue_drops_events_and_counts_them(receiver: Receiver) -> None:
    sink = WebhookSink(WebhookConfig(url=receiver.url, secret=SECRET, queue_size=2, timeout=30))
    receiver.open.clear()
    before = metrics.snapshot()
    heard: list[tuple[str, str, int]] = []  # what /metrics subscribes to

    def hear(*counted: Any) -> None:
        heard.append(counted)

    metrics.subscribe(hear)
    started = time.monotonic()
    sink.send(Event(event_type="image.update", payload={"n": 0}))
    receiver.wait_arrived(1)  # the first is being delivered; the queue holds the next two
    for n in range(1, 10):
        sink.send(Event(event_type="image.update", payload={"n": n}))
    assert time.monotonic() - started < 5  # nothing waited for the receiver
    after = metrics.snapshot()
    assert (
        after.get(("webhook", "dropped_queue_full"), 0)
        - before.get(("webhook", "dropped_queue_full"), 0)
        == 7
    )
    receiver.open.set()
    sink.close(10)
    got = [e["payload"]["n"] for e in receiver.delivered()]
    assert got == [0, 1, 2]
    assert metrics.snapshot()[("webhook", "sent")] - before.get(("webhook", "sent"), 0) == 3
    metrics.unsubscribe(hear)
    assert heard == [("webhook", "dropped_queue_full", 1)] * 7 + [("webhook", "sent", 1)] * 3


def test_a_receiver_that_refuses_is_not_retried(receiver: Receiver) -> None:
    """A 4xx other than 408/429 is final: dropped at once and counted, not retried."""
    receiver.status = 404
    sink = WebhookSink(WebhookConfig(url=receiver.url, retries=3, backoff=0.01))
    before = metrics.snapshot()
    sink.send(Event(event_type="image.update", payload={}))
    sink.close(10)
    assert [status for _, _, status in receiver.posts] == [404]
    after = metrics.snapshot()
    key = ("webhook", "dropped_undeliverable")
    assert after.get(key, 0) - before.get(key, 0) == 1
    assert after.get(("webhook", "retried"), 0) == before.get(("webhook", "retried"), 0)


def test_the_body_is_the_oslo_message(receiver: Receiver) -> None:
    sink = WebhookSink(WebhookConfig(url=receiver.url))
    sink.send(Event(event_type="image.delete", payload={"id": "x"}, publisher_id="image.h1"))
    sink.close(10)
    ((headers, body, _),) = receiver.posts
    assert "X-Tank-Signature" not in headers  # no secret: unsigned
    message = json.loads(body)
    assert set(message) == {"message_id", "publisher_id", "event_type", "priority", "payload",
                            "timestamp"}  # fmt: skip
    assert message["publisher_id"] == "image.h1" and message["priority"] == "INFO"


def test_a_forked_worker_delivers_through_a_thread_and_connection_of_its_own(
    receiver: Receiver,
) -> None:
    """tank-api's pre-forked workers: the sink was used in the parent before the fork."""
    sink = WebhookSink(WebhookConfig(url=receiver.url, backoff=0.01))
    sink.send(Event(event_type="image.create", payload={"from": "parent"}))
    receiver.wait_for(lambda got: len(got) == 1)
    pid = os.fork()
    if pid == 0:  # the child: exit at once whatever happens
        try:
            sink.send(Event(event_type="image.create", payload={"from": "child"}))
            sink.close(10)
            os._exit(0 if sink.pending() == 0 else 3)
        except BaseException:  # noqa: BLE001 - a child never returns into pytest
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sink.send(Event(event_type="image.create", payload={"from": "parent again"}))
    events = receiver.wait_for(lambda got: len(got) == 3)
    sink.close(10)
    assert sorted(e["payload"]["from"] for e in events) == ["child", "parent", "parent again"]


class SilentReceiver:
    """A webhook endpoint that accepts every connection and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.held.append(conn)  # read nothing, say nothing

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


def drop_warnings(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "queue full" in line]


def test_a_hung_receiver_drops_are_warned_about_in_summary(tmp_path: Path) -> None:
    silent = SilentReceiver()
    config = tmp_path / "tank.toml"
    config.write_text(
        '[notifications]\nsinks = ["webhook"]\n[notifications.webhook]\n'
        f'url = "{silent.url}"\nqueue_size = 2\ntimeout = 120\ndrop_warning_interval = 3\n'
    )
    log = tmp_path / "tank-api.log"
    api = ApiServer(tmp_path / "data", log, ["--config", str(config), "--workers", "0"])
    try:

        def create(n: int) -> None:
            resp = requests.post(
                api.url + "/v2/images", json={**IMAGE, "name": f"d{n}"}, timeout=10
            )
            assert resp.status_code == 201, resp.text

        create(0)  # delivered to the silent socket: stuck there from now on
        deadline = time.monotonic() + 10
        while not silent.held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert silent.held
        started = time.monotonic()
        for n in range(1, 31):  # 2 queued, 28 dropped
            create(n)
        assert time.monotonic() - started < 3  # all within one interval
        time.sleep(0.5)
        lines = drop_warnings(log)
        assert len(lines) == 1, lines  # the first drop at once, the others held back
        assert "image.create event dropped (further drops are summarised" in lines[0]
        time.sleep(max(0.0, started + 3.2 - time.monotonic()))
        create(31)  # the next drop after the interval tells how many there were
        lines = drop_warnings(log)
        assert len(lines) == 2, lines
        assert (
            "queue full (2 events): 28 events dropped since the last warning "
            "(the last: image.create)"
        ) in lines[1]
        text = requests.get(api.url + "/metrics", timeout=10).text
        line = 'tank_notification_events_total{outcome="dropped_queue_full",sink="webhook"}'
        assert f"{line} 29.0" in text.splitlines()
    finally:
        api.stop()
        silent.close()
    assert len(drop_warnings(log)) == 2
