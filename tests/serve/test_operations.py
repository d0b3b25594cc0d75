"""What an operator relies on around the API: the healthcheck (and its disable file),
request ids on every answer, the access log (and what it must never say), --version on
every command, and tank-api refusing to start when it could not serve."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from tank.testing.api_server import find_script

from .conftest import access_line

REQUEST_ID = re.compile(
    r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
ADMIN = {"X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Project-Id": "ops"}
MEMBER = {"X-Identity-Status": "Confirmed", "X-Roles": "member", "X-Project-Id": "alice"}
IMAGE = {"x-image-meta-disk_format": "raw", "x-image-meta-container_format": "bare"}


def test_healthcheck_answers_ok_and_503_while_the_disable_file_exists(
    start_api, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    disable = tmp_path / "healthcheck_disable"
    config = tmp_path / "tank.toml"
    config.write_text(f'[api]\nhealthcheck_disable_file = "{disable}"\n')
    api = start_api("--auth", "--config", str(config))
    r = requests.get(f"{api.url}/healthcheck", timeout=10)  # no identity: before auth
    assert (r.status_code, r.text) == (200, "OK")
    assert r.headers["Content-Type"].startswith("text/plain")
    assert requests.head(f"{api.url}/healthcheck", timeout=10).status_code == 200
    disable.write_text("")
    r = requests.get(f"{api.url}/healthcheck", timeout=10)
    assert (r.status_code, r.text) == (503, "DISABLED BY FILE")
    detail = requests.get(f"{api.url}/healthcheck?detail", headers=ADMIN, timeout=30)
    assert detail.status_code == 503 and detail.json()["status"] == "DISABLED BY FILE"
    disable.unlink()
    assert requests.get(f"{api.url}/healthcheck", timeout=10).text == "OK"
    assert requests.get(f"{api.url}/v1/images", timeout=10).status_code == 401  # the rest: auth


def test_detailed_healthcheck_is_for_admins_and_probes_registry_and_stores(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--auth")
    anonymous = requests.get(f"{api.url}/healthcheck?detail", timeout=10)
    assert anonymous.status_code == 401
    member = requests.get(f"{api.url}/healthcheck?detail", headers=MEMBER, timeout=10)
    assert member.status_code == 403 and "for admins" in member.json()["error"]["message"]
    r = requests.get(f"{api.url}/healthcheck?detail", headers=ADMIN, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["status"] == "OK"
    assert body["registry"]["ok"] is True and body["registry"]["seconds"] >= 0
    assert body["stores"]["file"]["ok"] is True and body["stores"]["file"]["seconds"] >= 0


def test_detailed_healthcheck_reports_a_store_that_stopped_working(
    start_api, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    images = tmp_path / "images"
    config = tmp_path / "tank.toml"
    config.write_text(f'[stores.file]\ndatadir = "{images}"\n')
    api = start_api("--config", str(config))
    shutil.rmtree(images)
    images.write_text("no longer a directory")
    r = requests.get(f"{api.url}/healthcheck?detail", timeout=30)
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "FAILED" and body["registry"]["ok"] is True
    assert body["stores"]["file"]["ok"] is False and str(images) in body["stores"]["file"]["error"]
    assert requests.get(f"{api.url}/healthcheck", timeout=10).text == "OK"  # the plain one: up


def test_every_answer_has_a_request_id_of_its_own(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--auth")
    caller_id = f"req-{uuid.uuid4()}"
    answers = [
        requests.get(f"{api.url}/healthcheck", timeout=10),
        requests.get(f"{api.url}/", timeout=10),  # versions: 300
        requests.get(f"{api.url}/v1/images", timeout=10),  # 401
        requests.get(f"{api.url}/v2/images", headers=MEMBER, timeout=10),  # 200
        requests.get(f"{api.url}/no/such/thing", headers=MEMBER, timeout=10),  # 404
        requests.get(f"{api.url}/v2/images/{uuid.uuid4()}", headers=MEMBER, timeout=10),  # 404
        requests.delete(f"{api.url}/v2/images", headers=MEMBER, timeout=10),  # 405
        requests.post(f"{api.url}/v2/images", data="{", headers=MEMBER, timeout=10),  # 400
        requests.head(f"{api.url}/v1/images/{uuid.uuid4()}", headers=MEMBER, timeout=10),
        requests.get(
            f"{api.url}/v2/images",
            headers={**MEMBER, "X-Openstack-Request-Id": caller_id},
            timeout=10,
        ),
    ]
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 300, 401, 200, 404, 404, 405, 400, 404, 200]
    ids = [r.headers.get("X-Openstack-Request-Id", "") for r in answers]
    assert all(REQUEST_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids) and caller_id not in ids  # ours, never the caller's
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/images HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        head = sock.recv(4096).decode("latin-1")  # answered by the server itself
    assert head.startswith("HTTP/1.1 400")
    found = re.search(r"X-Openstack-Request-Id: (\S+)\r\n", head)
    assert found and REQUEST_ID.match(found.group(1))
    line = access_line(api, ids[-1])
    assert line.endswith(f" global={caller_id}")  # the caller's id, logged beside ours


def test_access_log_line_says_who_did_what_and_never_a_credential(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--auth")
    token = "gAAAAA-secret-token-" + uuid.uuid4().hex
    headers = {
        **IMAGE,
        "X-Identity-Status": "Confirmed",
        "X-Roles": "member",
        "X-Project-Id": "tenant-a",
        "X-User-Id": "user-7",
        "X-Auth-Token": token,
        "Authorization": f"Bearer {token}",
        "x-image-meta-location": "http://user:hunter2@example.com/image",
    }
    r = requests.post(f"{api.url}/v1/images?password=hunter2", headers=headers, timeout=10)
    request_id = r.headers["X-Openstack-Request-Id"]
    data = b"x" * 1000
    del headers["x-image-meta-location"]
    up = requests.post(f"{api.url}/v1/images", headers=headers, data=data, timeout=30)
    get = requests.get(f"{api.url}/v1/images?limit=3&name=hunter2", headers=headers, timeout=10)
    get_line = access_line(api, get.headers["X-Openstack-Request-Id"])
    line = access_line(api, request_id)
    up_line = access_line(api, up.headers["X-Openstack-Request-Id"])
    log = api.log_path.read_text()
    assert token not in log and "hunter2" not in log and "Bearer" not in log
    assert re.search(
        rf"tank\.api\.access {request_id} 127\.0\.0\.1 tenant-a user-7 "
        rf'"POST /v1/images" {r.status_code} \d+ \d+\.\d{{3}}s in=0$',
        line,
    ), line
    assert '"POST /v1/images" 201 ' in up_line and up_line.endswith(f" in={len(data)}")
    assert get.status_code == 200 and f'"GET /v1/images" 200 {len(get.content)} ' in get_line


def test_json_log_lines_carry_the_access_fields(start_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log_file = tmp_path / "api.json"
    api = start_api("--auth", "--log-format", "json", "--log-file", str(log_file))
    r = requests.get(
        f"{api.url}/v2/images?limit=3", headers={**MEMBER, "X-User-Id": "u1"}, timeout=10
    )
    request_id = r.headers["X-Openstack-Request-Id"]
    access_line(api, request_id, log_file)
    lines = [json.loads(x) for x in log_file.read_text().splitlines()]  # every line is JSON
    (entry,) = [x for x in lines if x.get("request_id") == request_id]
    assert entry["logger"] == "tank.api.access" and entry["level"] == "INFO"
    assert entry["client"] == "127.0.0.1" and entry["tenant"] == "alice" and entry["user"] == "u1"
    assert entry["method"] == "GET" and entry["path"] == "/v2/images"
    assert entry["status"] == 200 and entry["bytes_out"] == len(r.content)
    assert entry["bytes_in"] == 0 and entry["seconds"] >= 0 and entry["pid"] > 0
    assert any("serving" in x["message"] for x in lines)


@pytest.mark.parametrize("command", ["tank", "tank-api", "tank-manage", "tank-registry"])
def test_every_command_has_version(command: str) -> None:
    exe = find_script(command)
    if exe is None:
        pytest.skip(f"{command} is not installed in this environment")
    from tank.cli.options import core_version

    done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{command} (tank-core) {core_version()}\n"


def _refused(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = find_script("tank-api")
    if exe is None:
        pytest.skip("tank-api is not installed in this environment")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("TANK_")}
    return subprocess.run(
        [exe, "--port", "0", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    last = done.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("Error: ") and "Traceback" not in done.stderr, done.stderr
    return last


def test_refuses_to_start_with_an_unusable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = _refused(tmp_path, "--data-dir", str(blocker / "data"))
    assert _error_line(done) == f"Error: data dir {blocker / 'data'} is not usable: Not a directory"


def test_refuses_to_start_when_the_registry_does_not_answer(tmp_path: Path, free_port: int) -> None:
    done = _refused(
        tmp_path,
        "--data-dir",
        str(tmp_path / "d"),
        "--registry-url",
        f"http://127.0.0.1:{free_port}",
    )
    line = _error_line(done)
    assert line.startswith("Error: the registry does not answer: ") and str(free_port) in line


def test_refuses_to_start_without_its_default_store(tmp_path: Path) -> None:
    config = tmp_path / "tank.toml"
    config.write_text('default_store = "nope"\n')
    done = _refused(tmp_path, "--data-dir", str(tmp_path / "d"), "--config", str(config))
    line = _error_line(done)
    assert "default_store 'nope' is not configured" in line


def test_refuses_to_start_when_the_default_store_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "tank.toml"
    config.write_text(f'[stores.file]\ndatadir = "{blocker / "images"}"\n')
    for workers in ("0", "2"):
        done = _refused(
            tmp_path,
            "--data-dir",
            str(tmp_path / "d"),
            "--config",
            str(config),
            "--workers",
            workers,
        )
        line = _error_line(done)
        assert line.startswith("Error: default store 'file' cannot be written: "), line
        assert str(blocker / "images") in line


def test_warns_when_listening_beyond_loopback_with_auth_off(start_api) -> None:  # type: ignore[no-untyped-def]
    api = start_api("--host", "0.0.0.0")
    assert "with auth off: every caller is an admin" in api.log()
    assert requests.get(f"{api.url}/healthcheck", timeout=10).text == "OK"
    secured = start_api("--host", "0.0.0.0", "--auth")
    assert "every caller is an admin" not in secured.log()


def test_proxy_headers_are_believed_only_when_configured(start_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    forwarded = {
        "X-Forwarded-For": "203.0.113.7, 10.0.0.9",  # the proxy added the last one
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "images.example.com",
    }
    plain = start_api()
    r = requests.get(f"{plain.url}/", headers=forwarded, timeout=10)
    assert r.json()["versions"][0]["links"][0]["href"].startswith("http://127.0.0.1:")
    line = access_line(plain, r.headers["X-Openstack-Request-Id"])
    assert " 127.0.0.1 - - " in line
    config = tmp_path / "tank.toml"
    config.write_text("[api]\ntrust_proxy_headers = true\n")
    proxied = start_api("--config", str(config))
    r = requests.get(f"{proxied.url}/", headers=forwarded, timeout=10)
    assert r.json()["versions"][0]["links"][0]["href"] == "https://images.example.com/v2/"
    line = access_line(proxied, r.headers["X-Openstack-Request-Id"])
    assert " 10.0.0.9 - - " in line and "203.0.113.7" not in line
