"""tank-api with pre-forked workers, as an operator runs it: requests spread over the
workers, a killed worker replaced, SIGTERM graceful, SIGHUP reloading the configuration
and reopening the log, metrics counted across workers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import time
import uuid
from pathlib import Path

import requests

from tank.testing.api_server import child_pids as children

from .conftest import serving_pids, wait_for, workers_ready

IMAGE = {"x-image-meta-disk_format": "raw", "x-image-meta-container_format": "bare"}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus exposition (0 if absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        if not (sample == name or sample.startswith(name + "{")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', sample))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def test_requests_spread_over_workers_and_metrics_add_up_across_them(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--workers", "2")
    pids = workers_ready(api, 2)
    before = requests.get(f"{api.url}/metrics", timeout=10).text
    count = 40
    assert serving_pids(api, count) == pids  # both workers answered some
    after = requests.get(f"{api.url}/metrics", timeout=10).text
    labels = {"method": "GET", "route": "/healthcheck", "status": "200"}
    counted = metric(after, "tank_http_requests_total", **labels)
    assert counted - metric(before, "tank_http_requests_total", **labels) == count


def test_a_killed_worker_is_replaced_and_its_counts_stay(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--workers", "2")
    pids = workers_ready(api, 2)
    labels = {"method": "GET", "route": "/healthcheck", "status": "200"}
    counted = metric(
        requests.get(f"{api.url}/metrics", timeout=10).text, "tank_http_requests_total", **labels
    )
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> int | None:
        new = children(api.proc.pid) - pids
        if not new:
            return None
        (pid,) = new
        return pid if f" {pid} INFO tank.api tank-api serving" in api.log_path.read_text() else None

    newcomer = wait_for("a new worker", replaced, 90)
    assert children(api.proc.pid) == pids - {victim} | {newcomer}
    assert f"worker {victim} was killed by SIGKILL; replacing it" in api.log_path.read_text()
    for _ in range(3):  # whoever answers: the dead worker's counts are still there
        text = requests.get(f"{api.url}/metrics", timeout=10).text
        assert metric(text, "tank_http_requests_total", **labels) == counted
    r = requests.post(f"{api.url}/v1/images", headers=IMAGE, data=b"after", timeout=30)
    assert r.status_code == 201, r.text
    assert serving_pids(api, 30) == pids - {victim} | {newcomer}
    assert api.proc.poll() is None


def test_sigterm_lets_an_upload_in_flight_finish_and_every_process_exits_0(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--workers", "2")
    workers_ready(api, 2)
    data = os.urandom(4 << 20)
    head = (
        f"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
        "Content-Type: application/octet-stream\r\nx-image-meta-name: inflight\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in IMAGE.items())
        + "\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as sock:
        sock.sendall(head + data[: 1 << 20])

        def saving() -> bool:
            r = requests.get(f"{api.url}/v1/images/detail?name=inflight", timeout=10)
            return bool(r.json()["images"]) and r.json()["images"][0]["status"] == "saving"

        wait_for("the upload to start", saving, 30)
        api.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(data[1 << 20 :])
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    image = json.loads(answer.partition(b"\r\n\r\n")[2])["image"]
    assert image["status"] == "active" and image["checksum"] == hashlib.md5(data).hexdigest()
    assert api.proc.wait(60) == 0
    log = api.log_path.read_text()
    assert log.count(" stopped\n") >= 3 and "tank-api stopped" in log  # 2 workers + supervisor
    assert "exited with status" not in log and "was killed by" not in log


def test_sigterm_ends_an_upload_past_the_grace_period_with_503(start_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nshutdown_timeout = 1\n")
    api = start_api("--workers", "2", "--config", str(config))
    workers_ready(api, 2)
    head = (
        "POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n"
        "Content-Type: application/octet-stream\r\nx-image-meta-name: stalled\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in IMAGE.items())
        + "\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as sock:
        sock.sendall(head + b"x" * 65536)
        wait_for(
            "the upload to start",
            lambda: requests.get(f"{api.url}/v1/images/detail?name=stalled", timeout=10).json()[
                "images"
            ],
            30,
        )
        api.proc.send_signal(signal.SIGTERM)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 503"), answer[:300]
    assert b"shutting down" in answer
    assert api.proc.wait(60) == 0


def test_sighup_reloads_the_configuration_and_reopens_the_log(start_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log_file = tmp_path / "api.log"
    config = tmp_path / "tank.toml"
    config.write_text(f'[api]\nlog_file = "{log_file}"\nlog_level = "INFO"\n')
    api = start_api("--workers", "2", "--config", str(config))
    api.log_path = log_file  # what the helpers read
    old = workers_ready(api, 2)
    assert " DEBUG " not in log_file.read_text()
    rotated = tmp_path / "api.log.1"
    log_file.rename(rotated)  # as logrotate does
    config.write_text(f'[api]\nlog_file = "{log_file}"\nlog_level = "DEBUG"\n')
    api.proc.send_signal(signal.SIGHUP)
    statuses = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # served all along the reload
        statuses.append(requests.get(f"{api.url}/healthcheck", timeout=30).status_code)
        pids = children(api.proc.pid)
        if len(pids) == 2 and not pids & old:
            break
        time.sleep(0.1)
    assert set(statuses) == {200}
    new = workers_ready(api, 2)
    assert not new & old
    text = log_file.read_text()  # the new file: reopened under its name
    assert "configuration reloaded" in text and " DEBUG " in text
    assert "opening the registry and stores" in text  # a DEBUG line of a new worker
    assert "SIGHUP: reloading the configuration" in rotated.read_text()
    # a bad configuration is refused on SIGHUP: the running one stays
    config.write_text("[api]\nthreads = 0\n")
    api.proc.send_signal(signal.SIGHUP)
    wait_for("the refusal", lambda: "reload failed" in log_file.read_text(), 30)
    assert children(api.proc.pid) == new
    assert requests.get(f"{api.url}/healthcheck", timeout=10).text == "OK"
    # so is a bad section only a worker reads (a store's, a notification sink's): the
    # workers would otherwise fail at start, one after the other, for ever
    good = f'[api]\nlog_file = "{log_file}"\nlog_level = "DEBUG"\n'
    for bad in (
        f'[stores.file]\ndatadir = "{tmp_path / "images"}"\nbogus = 1\n',
        '[notifications]\nsinks = ["webhook"]\n[notifications.webhook]\nurl = '
        '"http://127.0.0.1:9/"\nbogus = 1\n',
    ):
        refusals = log_file.read_text().count("reload failed")
        config.write_text(good + bad)
        api.proc.send_signal(signal.SIGHUP)
        wait_for(
            "the refusal", lambda n=refusals: log_file.read_text().count("reload failed") > n, 30
        )
        assert "bogus: unknown key" in log_file.read_text().splitlines()[-1]
        assert children(api.proc.pid) == new
    assert requests.get(f"{api.url}/healthcheck", timeout=10).text == "OK"


def test_an_upload_is_counted_in_the_metrics_of_any_worker(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--workers", "2")
    workers_ready(api, 2)
    data = os.urandom(3 << 20)
    r = requests.post(f"{api.url}/v1/images", headers=IMAGE, data=data, timeout=60)
    assert r.status_code == 201, r.text
    image_id = r.json()["image"]["id"]
    assert requests.get(f"{api.url}/v1/images/{image_id}", timeout=60).content == data
    bad = requests.post(
        f"{api.url}/v1/images",
        headers={**IMAGE, "x-image-meta-checksum": "0" * 32},
        data=b"not what the checksum says",
        timeout=60,
    )
    assert bad.status_code == 400, bad.text
    v2 = requests.post(
        f"{api.url}/v2/images",
        json={"name": "m", "disk_format": "raw", "container_format": "bare"},
        timeout=30,
    ).json()
    put = requests.put(
        f"{api.url}/v2/images/{v2['id']}/file",
        data=b"v2 data",
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert put.status_code == 204, put.text
    assert requests.get(f"{api.url}/v2/images/{v2['id']}/file", timeout=30).content == b"v2 data"
    for _ in range(4):  # whichever worker answers sees every worker's counts
        text = requests.get(f"{api.url}/metrics", timeout=10).text
        assert metric(text, "tank_upload_duration_seconds_count", api="v1") == 1
        assert metric(text, "tank_upload_duration_seconds_count", api="v2") == 1
        assert metric(text, "tank_download_duration_seconds_count", api="v1") == 1
        assert metric(text, "tank_download_duration_seconds_count", api="v2") == 1
        assert metric(text, "tank_upload_failures_total", api="v1", cause="ChecksumMismatch") == 1
        route = "/v1/images/{image_id}"
        assert metric(text, "tank_http_sent_bytes_total", route=route) == len(data)
        received = metric(text, "tank_http_received_bytes_total", route="/v1/images")
        assert received == len(data) + len(b"not what the checksum says")
        assert (
            metric(
                text, "tank_http_requests_total", method="POST", route="/v2/images", status="201"
            )
            == 1
        )
        assert metric(
            text, "tank_http_requests_total", method="PUT", route="/v2/images/{image_id}/file",
            status="204",
        ) == 1  # fmt: skip
        for operation in ("open_writer", "write", "commit", "read"):
            count = metric(
                text, "tank_store_call_duration_seconds_count", store="file", operation=operation
            )
            assert count >= 1, operation
        assert image_id not in text and v2["id"] not in text  # templates, not paths


def test_metrics_can_be_turned_off(start_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "tank.toml"
    config.write_text("[api]\nmetrics = false\n")
    api = start_api("--config", str(config))
    r = requests.get(f"{api.url}/metrics", timeout=10)
    assert r.status_code == 404 and "metrics are off" in r.json()["error"]["message"]
    assert not (api.data_dir / "run").exists() or not any((api.data_dir / "run").iterdir())


def test_the_metrics_directory_is_emptied_at_start_and_removed_at_exit(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--workers", "1")
    run_dir = api.data_dir / "run" / f"metrics-{api.port}"
    assert run_dir.is_dir() and any(run_dir.iterdir())
    api.proc.terminate()
    assert api.proc.wait(30) == 0
    assert not run_dir.exists()


def test_workers_0_serves_in_one_process(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--workers", "0")
    assert children(api.proc.pid) == set()
    r = requests.get(f"{api.url}/healthcheck?detail", timeout=30)
    assert r.json()["pid"] == api.proc.pid
    text = requests.get(f"{api.url}/metrics", timeout=10).text
    labels = {"method": "GET", "route": "/healthcheck", "status": "200"}
    assert metric(text, "tank_http_requests_total", **labels) == 1
    image_id = str(uuid.uuid4())
    assert requests.get(f"{api.url}/v2/images/{image_id}", timeout=10).status_code == 404


def test_workers_0_sighup_reopens_the_log_and_says_it_does_not_reload(
    start_api, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    log_file = tmp_path / "api.log"
    config = tmp_path / "tank.toml"
    config.write_text(f'[api]\nlog_file = "{log_file}"\nlog_level = "INFO"\n')
    api = start_api("--workers", "0", "--config", str(config))
    api.log_path = log_file
    rotated = tmp_path / "api.log.1"
    log_file.rename(rotated)  # as logrotate does
    config.write_text(f'[api]\nlog_file = "{log_file}"\nlog_level = "INFO"\nthreads = 3\n')
    api.proc.send_signal(signal.SIGHUP)
    wait_for("the warning", lambda: log_file.exists() and "not reloaded" in log_file.read_text())
    text = log_file.read_text()  # the new file: reopened under its name
    assert "SIGHUP: log reopened" in text
    assert (
        "SIGHUP: configuration not reloaded: with --workers 0 tank-api reads it at start "
        "only (log settings aside); restart it, or run it with --workers >= 1 to reload "
        "on SIGHUP"
    ) in text
    assert "not valid" not in text
    assert requests.get(f"{api.url}/healthcheck", timeout=10).text == "OK"
    assert "SIGHUP" not in rotated.read_text()
    # a bad configuration: said why; the log is still reopened, the server keeps serving
    log_file.rename(rotated)
    config.write_text(
        f'[api]\nlog_file = "{log_file}"\n[stores.file]\ndatadir = "{tmp_path}/i"\nbogus = 1\n'
    )
    api.proc.send_signal(signal.SIGHUP)
    wait_for("the warning", lambda: log_file.exists() and "not reloaded" in log_file.read_text())
    text = log_file.read_text()
    assert "SIGHUP: log reopened" in text
    assert (
        "SIGHUP: the configuration is not valid, still running on the one read at start: " in text
    )
    assert "bogus: unknown key" in text
    assert children(api.proc.pid) == set()
    r = requests.get(f"{api.url}/healthcheck?detail", timeout=30)
    assert r.json()["pid"] == api.proc.pid
    api.proc.send_signal(signal.SIGTERM)
    assert api.proc.wait(60) == 0


def test_systemd_hears_ready_reloading_and_stopping(start_api, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Type=notify: READY=1 once every worker serves, RELOADING=1 and READY=1 around a
    SIGHUP, STOPPING=1 at SIGTERM; on $NOTIFY_SOCKET, as systemd sets it."""
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(90)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        api = start_api("--workers", "2")

        def heard() -> str:
            return listener.recv(4096).decode()

        assert heard() == "READY=1"
        assert len(children(api.proc.pid)) == 2
        api.proc.send_signal(signal.SIGHUP)
        assert heard() == "RELOADING=1"
        assert heard() == "READY=1"
        api.proc.send_signal(signal.SIGTERM)
        assert heard() == "STOPPING=1"
        assert api.proc.wait(60) == 0
