"""A tank-api killed (SIGKILL) in the middle of an import leaves nothing half-done: a
tank-api started on the same data fails the import once its lease has expired."""

from __future__ import annotations

import time
from typing import Any

import requests

from tank.testing.api_server import ApiServer


def test_an_import_killed_midway_ends_failed_and_clean(start_tank: Any, web: Any) -> None:
    tank = start_tank()
    image = tank.create(name="interrupted")
    body = {"method": {"name": "web-download", "uri": web.url("/slow")}}
    assert tank.import_(image["id"], body).status_code == 202
    assert web.sending.wait(30), "tank-api never started the download"
    tank.wait(image["id"], lambda i: any(tank.staging.iterdir()))  # data on its way
    in_flight = tank.show(image["id"])
    assert in_flight["status"] == "importing"
    assert in_flight["os_glance_importing_to_stores"] == "file"
    task = in_flight["os_glance_import_task"]

    tank.server.proc.kill()  # SIGKILL: no clean-up of any kind
    tank.server.proc.wait(10)
    web.release.set()
    assert tank.staged() != []  # what the dead process left

    restarted = ApiServer(
        tank.server.data_dir,
        tank.root / "tank-api-restarted.log",
        ["--config", str(tank.root / "tank.toml")],
    )
    try:
        tank.server, tank.url = restarted, restarted.url
        failed = tank.wait(image["id"], lambda i: i["status"] == "queued", timeout=60)
        assert failed["os_glance_failed_import"] == "file"
        assert "stopped" in failed["os_glance_failed_import_reason"]
        for key in ("os_glance_import_task", "os_glance_importing_to_stores"):
            assert key not in failed
        assert tank.staged() == []
        assert tank.files("file") == []
        assert f"interrupted import {task} found" in restarted.log()
        # and it can be imported again
        web.files["/image.raw"] = b"fine" * 1000
        body = {"method": {"name": "web-download", "uri": web.url("/image.raw")}}
        assert tank.import_(image["id"], body).status_code == 202
        assert tank.settled(image["id"])["status"] == "active"
    finally:
        restarted.stop()


def test_a_running_import_is_not_taken_over(start_tank: Any, web: Any) -> None:
    """Another tank-api (here: the same one, restarted sweeps aside) never fails an
    import whose heartbeat goes on: the import stays in flight across several leases."""
    tank = start_tank()
    image = tank.create(name="slow but alive")
    body = {"method": {"name": "web-download", "uri": web.url("/slow")}}
    assert tank.import_(image["id"], body).status_code == 202
    assert web.sending.wait(30)
    # a second tank-api on the same registry and staging area sweeps every second
    other = ApiServer(
        tank.server.data_dir,
        tank.root / "tank-api-other.log",
        ["--config", str(tank.root / "tank.toml")],
    )
    try:
        beats = set()
        for _ in range(600):  # four heartbeats: two leases of 2 s
            shown = tank.show(image["id"])
            assert shown["status"] == "importing", shown
            beats.add(shown["os_glance_import_heartbeat"])
            if len(beats) == 4:
                break
            time.sleep(0.1)
        assert len(beats) == 4
        web.release.set()
        done = tank.settled(image["id"])
        assert done["status"] == "active" and done["size"] == 4 * 256 * 1024
        assert "os_glance_failed_import" not in done
    finally:
        other.stop()


def test_a_stopped_tank_api_fails_its_imports_cleanly_before_it_exits(
    start_tank: Any, web: Any
) -> None:
    tank = start_tank("workers = 1")
    image = tank.create(name="stopped")
    body = {"method": {"name": "web-download", "uri": web.url("/slow")}}
    assert tank.import_(image["id"], body).status_code == 202
    assert web.sending.wait(30)
    waiting = tank.create(name="waiting its turn")  # the one worker is busy
    assert tank.import_(waiting["id"], body).status_code == 202
    assert tank.show(waiting["id"])["status"] == "importing"
    tank.server.proc.terminate()  # SIGTERM while the download waits for data
    assert tank.server.proc.wait(30) == 0  # a deadline, not a speed measurement
    assert tank.staged() == [] and tank.files("file") == []
    restarted = ApiServer(
        tank.server.data_dir,
        tank.root / "tank-api-restarted.log",
        ["--config", str(tank.root / "tank.toml")],
    )
    try:
        tank.server, tank.url = restarted, restarted.url
        failed = tank.show(image["id"])  # at once: no lease had to expire
        assert failed["status"] == "queued"
        assert failed["os_glance_failed_import"] == "file"
        assert "stopped during the import" in failed["os_glance_failed_import_reason"]
        assert "os_glance_import_task" not in failed
        never = tank.show(waiting["id"])
        assert never["status"] == "queued"
        assert "before the import started" in never["os_glance_failed_import_reason"]
    finally:
        restarted.stop()


def test_deleting_an_image_stops_its_import_and_frees_the_worker(start_tank: Any, web: Any) -> None:
    """Found by the outside probe: a deleted image's web-download from a slow server kept
    its worker (up to web_download_deadline) and its staging file, and other users'
    imports waited behind it."""
    # the stalled download would hold the only worker for 10 minutes on its own
    tank = start_tank("workers = 1\nweb_download_timeout = 600")
    image = tank.create(name="deleted mid-download")
    body = {"method": {"name": "web-download", "uri": web.url("/slow")}}
    assert tank.import_(image["id"], body).status_code == 202
    assert web.sending.wait(30)
    tank.wait(image["id"], lambda i: any(tank.staging.iterdir()))
    deleted = requests.delete(f"{tank.url}/v2/images/{image['id']}", timeout=30)
    assert deleted.status_code == 204
    web.files["/next.raw"] = b"next" * 1000
    following = tank.create(name="next in line")
    nxt = {"method": {"name": "web-download", "uri": web.url("/next.raw")}}
    assert tank.import_(following["id"], nxt).status_code == 202
    assert tank.settled(following["id"])["status"] == "active"  # the worker was freed
    assert not web.release.is_set()  # the slow server never finished sending
    assert tank.staged() == []
    assert len(tank.files("file")) == 1  # the next image's data only


def test_an_image_deleted_through_another_process_stops_its_import(
    start_tank: Any, web: Any
) -> None:
    """With several tank-api workers the DELETE may reach another process than the one
    importing: the importing one notices at its next heartbeat (here: the image deleted
    straight in the registry, as another process would)."""
    from tank.model import Context
    from tank_registry_sql.registry import SqlRegistry

    tank = start_tank("web_download_timeout = 600")
    image = tank.create(name="deleted elsewhere")
    body = {"method": {"name": "web-download", "uri": web.url("/slow")}}
    assert tank.import_(image["id"], body).status_code == 202
    assert web.sending.wait(30)
    tank.wait(image["id"], lambda i: any(tank.staging.iterdir()))
    registry = SqlRegistry(SqlRegistry.Config(), data_dir=tank.server.data_dir)
    try:
        registry.delete(image["id"], context=Context.admin())
    finally:
        registry.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (tank.staged() or not _said_stopping(tank)):
        time.sleep(0.1)
    assert _said_stopping(tank), tank.server.log()
    assert tank.staged() == [] and tank.files("file") == []
    assert not web.release.is_set()  # the slow server never finished sending


def _said_stopping(tank: Any) -> bool:
    return "deleted during its import: stopping the import" in tank.server.log()
