"""The ``tank-registry`` command: what it refuses, and a clean stop."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tank.testing.api_server import find_script


def tank_registry(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    exe = find_script("tank-registry")
    if exe is None:
        pytest.skip("tank-registry is not installed (pip install -e tank_core)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("section", ['url = "http://127.0.0.1:9191"', 'kind = "http"'])
def test_refuses_to_serve_a_remote_registry(tmp_path: Path, section: str) -> None:
    config = tmp_path / "tank.toml"
    config.write_text(f"[registry]\n{section}\n")
    run = tank_registry("--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert run.returncode != 0
    assert f"{config} [registry]: names a remote registry" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = tank_registry("--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert run.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "Traceback" not in run.stderr


def test_sigterm_stops_it_cleanly(start_registry) -> None:  # type: ignore[no-untyped-def]
    """It exits while a client still holds an idle keep-alive connection open: it does
    not wait for its clients to hang up (this one hangs up only after the exit)."""
    server = start_registry()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle:
        idle.sendall(b"GET /images HTTP/1.1\r\nHost: registry\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0  # bounds the wait; the event is the exit
        while idle.recv(65536):  # the rest of the answer, then EOF: the server closed
            pass
    log = server.log.read_text()
    assert "tank-registry stopped" in log and "Traceback" not in log
