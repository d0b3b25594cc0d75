"""deploy/nginx-tank-api.conf for real: nginx terminating TLS (a self-signed certificate
made here) in front of a tank-api with two workers; an image goes up with curl (which
sends ``Expect: 100-continue``) and comes back, streamed both ways."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tank.testing.api_server import ApiServer
from tank.testing.ports import free_port

from .conftest import access_line

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "nginx-tank-api.conf"

pytestmark = [
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed"),
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]


def nginx_config(root: Path, listen: int, upstream: int) -> Path:
    """The example as shipped, with only its addresses, certificate and log paths
    replaced, in a minimal nginx.conf of its own."""
    example = EXAMPLE.read_text()
    replaced = {
        "listen 443 ssl;": f"listen 127.0.0.1:{listen} ssl;",
        "server 127.0.0.1:9292;": f"server 127.0.0.1:{upstream};",
        "/etc/ssl/certs/images.example.com.pem": str(root / "cert.pem"),
        "/etc/ssl/private/images.example.com.key": str(root / "key.pem"),
        "/var/log/nginx/tank-api.access.log": str(root / "access.log"),
    }
    for old, new in replaced.items():
        assert old in example, f"the example no longer has {old!r}"
        example = example.replace(old, new)
    (root / "tank-api.conf").write_text(example)
    temp = root / "temp"
    temp.mkdir()
    conf = root / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}worker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
        f"  fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n"
        f"  scgi_temp_path {temp}/scgi;\n"
        f"  include {root}/tank-api.conf;\n"
        "}\n"
    )
    return conf


@pytest.fixture
def front(start_api, tmp_path: Path) -> Iterator[tuple[str, Path, ApiServer, Path]]:  # type: ignore[no-untyped-def]
    config = tmp_path / "tank.toml"
    config.write_text("[api]\ntrust_proxy_headers = true\n")
    api = start_api("--workers", "2", "--config", str(config))
    root = tmp_path / "nginx"
    root.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = free_port()
    conf = nginx_config(root, port, api.port)
    test = subprocess.run(
        ["nginx", "-t", "-p", str(root), "-c", str(conf)], capture_output=True, text=True
    )
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen(
        ["nginx", "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    url = f"https://localhost:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{url}/healthcheck", verify=root / "cert.pem", timeout=2)
            break
        except requests.RequestException:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"nginx did not start: {proc.stderr.read()!r}") from None  # type: ignore[union-attr]
            time.sleep(0.1)
    try:
        yield url, root / "cert.pem", api, root
    finally:
        proc.terminate()
        proc.wait(10)


def curl(*args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        ["curl", "-sS", "-v", "-w", "\n%{http_code}", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body, _, code = done.stdout.rpartition("\n")
    return int(code), body, done.stderr


def test_an_image_goes_up_and_down_through_nginx_with_tls(front, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, cert, api, root = front
    r = requests.get(f"{url}/healthcheck", verify=cert, timeout=10)
    assert (r.status_code, r.text) == (200, "OK") and r.headers["X-Openstack-Request-Id"]
    versions = requests.get(f"{url}/", verify=cert, timeout=10).json()["versions"]
    assert versions[0]["links"][0]["href"] == f"{url}/v2/"  # the client's scheme and host
    assert requests.get(f"{url}/metrics", verify=cert, timeout=10).status_code == 403

    size = 48 << 20
    image = tmp_path / "image.raw"
    with open(image, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(size >> 20):
            f.write(block[i:] + block[:i])
    md5 = hashlib.md5(image.read_bytes()).hexdigest()
    created = requests.post(
        f"{url}/v2/images",
        json={"name": "through-nginx", "disk_format": "raw", "container_format": "bare"},
        verify=cert,
        timeout=30,
    ).json()
    code, _, trace = curl(
        "--cacert", str(cert), "-X", "PUT", "-T", str(image),
        "-H", "Content-Type: application/octet-stream", "-H", "Expect: 100-continue",
        f"{url}/v2/images/{created['id']}/file",
    )  # fmt: skip
    assert code == 204, trace[-2000:]
    assert "HTTP/1.1 100 Continue" in trace
    code, body, _ = curl("--cacert", str(cert), f"{url}/v2/images/{created['id']}")
    shown = json.loads(body)
    assert (shown["status"], shown["checksum"], shown["size"]) == ("active", md5, size)

    digest = hashlib.md5()
    with requests.get(
        f"{url}/v2/images/{created['id']}/file", verify=cert, stream=True, timeout=60
    ) as down:
        assert down.status_code == 200
        for chunk in down.iter_content(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == md5
    # streamed: nginx kept no copy of the body on its disk, and warned of none
    assert not any(p.is_file() for p in (root / "temp").rglob("*"))
    assert "buffered to a temporary file" not in (root / "error.log").read_text()
    put = access_line(api, f'"PUT /v2/images/{created["id"]}/file" 204')
    assert put.endswith(f" in={size}") and " 127.0.0.1 " in put
    assert "req_id=req-" in (root / "access.log").read_text()  # correlated in nginx's log
