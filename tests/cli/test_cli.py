"""The ``tank`` command against a real tank-api (click's runner, plus one real process).

Tests taking ``api_version`` run once per Images API version (TANK_API_VERSION set, as a
user would); v1-only verbs and options say ``--api v1``. v2, as Glance, takes data only
once both formats are set, so images with data are added with them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from .conftest import FORMATS, run

ApiServer = Any  # tests/cli/conftest.py: .url, .data_dir


def run_json(url: str, *args: str, input: bytes | None = None) -> Any:
    return json.loads(run(url, "--json", *args, input=input).stdout)


def error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_add_from_file_then_show_download_delete(
    api: ApiServer, tmp_path: Path, api_version: str
) -> None:
    data = os.urandom(2 * (1 << 20) + 5)
    src = tmp_path / "disk.img"
    src.write_bytes(data)
    added = run_json(
        api.url,
        "add",
        "name=cirros",
        "disk_format=raw",
        "container_format=bare",
        "property-os=linux",
        "--property",
        "arch=x86_64",
        "--file",
        str(src),
    )
    image_id = added["id"]
    assert added["status"] == "active"
    assert added["size"] == len(data)
    assert added["checksum"] == hashlib.md5(data).hexdigest()
    assert added["properties"] == {"os": "linux", "arch": "x86_64"}

    shown = run(api.url, "show", image_id).stdout
    assert "id:" in shown and image_id in shown
    assert "property-os:" in shown and "linux" in shown

    out = tmp_path / "copy.img"
    saved = run(api.url, "download", image_id, "-o", str(out))
    assert f"Saved image {image_id}" in saved.stdout
    assert out.read_bytes() == data
    assert run(api.url, "download", image_id).stdout_bytes == data

    unwritable = run(api.url, "download", image_id, "-o", str(tmp_path / "no" / "x"), code=1)
    assert str(tmp_path / "no" / "x") in error_line(unwritable)

    assert f"Deleted image {image_id}" in run(api.url, "delete", image_id).stdout
    if api_version == "v1":
        # As in Glance v1, an admin still sees the record of a deleted image; its data is gone.
        assert "deleted" in run(api.url, "show", image_id).stdout
    else:
        assert image_id in error_line(run(api.url, "show", image_id, code=1))
    missing = run(api.url, "download", image_id, code=1)
    assert image_id in error_line(missing)
    assert missing.stdout == ""


def test_add_from_stdin(api: ApiServer, api_version: str) -> None:
    data = os.urandom(300_000)
    added = run_json(api.url, "add", "name=piped", *FORMATS, input=data)
    assert added["size"] == len(data)
    assert added["checksum"] == hashlib.md5(data).hexdigest()
    explicit = run_json(api.url, "add", "name=dash", *FORMATS, "--file", "-", input=data)
    assert explicit["checksum"] == added["checksum"]


def test_add_without_data_is_queued_then_upload(
    api: ApiServer, tmp_path: Path, api_version: str
) -> None:
    added = run_json(api.url, "add", "name=queued", *FORMATS, input=b"")
    assert added["status"] == "queued"
    src = tmp_path / "later.img"
    src.write_bytes(b"late data")
    updated = run_json(api.url, "update", added["id"], "--file", str(src), "min_disk=1")
    assert (updated["status"], updated["size"], updated["min_disk"]) == ("active", 9, 1)
    again = run(api.url, "update", added["id"], "--file", str(src), code=1)
    assert "queued" in error_line(again)


def test_update_metadata_and_purge(api: ApiServer, api_version: str) -> None:
    image_id = run_json(api.url, "add", "name=meta", "property-a=1", "property-b=2", input=b"")[
        "id"
    ]
    updated = run_json(api.url, "update", image_id, "name=renamed", "property-c=3")
    assert updated["name"] == "renamed"
    assert updated["properties"] == {"a": "1", "b": "2", "c": "3"}
    purged = run_json(api.url, "update", image_id, "--purge-props", "property-c=4")
    assert purged["properties"] == {"c": "4"}
    assert "Updated image" in run(api.url, "update", image_id, "is_public=true").stdout


def test_usage_errors(api: ApiServer, api_version: str) -> None:
    typo = run(api.url, "add", "nmae=x", code=2)
    assert "unknown field 'nmae'" in typo.stderr and "property-nmae" in typo.stderr
    assert "not of the form" in run(api.url, "add", "name", code=2).stderr
    assert "--force" in run(api.url, "clear", code=2).stderr
    assert "nothing to update" in run(api.url, "update", str(uuid.uuid4()), code=2).stderr
    assert "unknown filter" in run(api.url, "index", "colour=red", code=2).stderr
    bad = run(api.url, "add", "disk_format=floppy", input=b"", code=1)
    assert "disk_format" in error_line(bad)


def test_index_and_details_paging(api: ApiServer, tag: str, api_version: str) -> None:
    ids = [
        run_json(
            api.url, "add", f"name=list-{i}", f"property-batch={tag}", *FORMATS,
            input=b"x" * (i + 1),
        )["id"]
        for i in range(5)
    ]  # fmt: skip
    args = (f"property-batch={tag}", "--sort-key", "name", "--sort-dir", "asc")
    rows = run_json(api.url, "index", *args)
    assert [r["id"] for r in rows] == ids
    assert set(rows[0]) == {
        "id",
        "name",
        "status",
        "disk_format",
        "container_format",
        "size",
        "checksum",
    }
    page = run_json(api.url, "details", *args, "--limit", "2", "--marker", ids[1])
    assert [r["id"] for r in page] == ids[2:4]
    assert page[0]["properties"] == {"batch": tag}
    table = run(api.url, "index", *args).stdout.splitlines()
    assert table[0].split()[:2] == ["ID", "Name"]
    assert [line.split()[0] for line in table[2:]] == ids
    text = run(api.url, "details", *args, "--limit", "1").stdout
    assert ids[0] in text and f"property-batch: {tag}" in " ".join(text.split())


def test_members_v1(api: ApiServer) -> None:
    v1 = ("--api", "v1")
    image_id = run_json(api.url, *v1, "add", "name=shared", input=b"")["id"]
    member = f"tenant-{uuid.uuid4().hex[:8]}"
    run(api.url, *v1, "member-add", image_id, member, "--can-share")
    listed = run_json(api.url, *v1, "image-members", image_id)
    assert listed == [{"image_id": image_id, "member": member, "can_share": True}]
    shared = run_json(api.url, *v1, "member-images", member)
    assert [r["image_id"] for r in shared] == [image_id]
    replaced = run_json(api.url, *v1, "members-replace", image_id, "t1", "t2")
    assert [(r["member"], r["can_share"]) for r in replaced] == [("t1", False), ("t2", False)]
    run(api.url, *v1, "member-delete", image_id, "t1")
    assert "t2" in run(api.url, *v1, "image-members", image_id).stdout
    assert "t1" in error_line(run(api.url, *v1, "member-delete", image_id, "t1", code=1))


def test_members_v2(api: ApiServer) -> None:
    image_id = run_json(api.url, "add", "name=shared", input=b"")["id"]
    member = f"tenant-{uuid.uuid4().hex[:8]}"
    added = run_json(api.url, "member-add", image_id, member)
    assert added == {"image_id": image_id, "member": member, "status": "pending"}
    assert run_json(api.url, "image-members", image_id) == [added]
    accepted = run_json(api.url, "member", "accept", image_id, member)
    assert accepted["status"] == "accepted"
    assert run_json(api.url, "image-members", image_id)[0]["status"] == "accepted"
    assert "rejected" in run(api.url, "member", "reject", image_id, member).stdout
    replaced = run_json(api.url, "members-replace", image_id, member, "t2")
    assert sorted((r["member"], r["status"]) for r in replaced) == sorted(
        [(member, "rejected"), ("t2", "pending")]
    )
    run(api.url, "member-delete", image_id, "t2")
    assert "t2" in error_line(run(api.url, "member-delete", image_id, "t2", code=1))
    refused = error_line(run(api.url, "member-add", image_id, "t3", "--can-share", code=1))
    assert "can_share" in refused and "--api v1" in refused
    assert "--api v1" in error_line(run(api.url, "member-images", member, code=1))
    assert "MEMBER" in run(api.url, "member", "accept", image_id, code=2).stderr


def test_clear_force(start_api: Callable[[], ApiServer], api_version: str) -> None:
    server = start_api()
    for i in range(3):
        run(server.url, "add", f"name=c{i}", *FORMATS, input=b"data")
    run(
        server.url,
        "update",
        run_json(server.url, "add", "name=pub", input=b"")["id"],
        "is_public=true",
    )
    cleared = run_json(server.url, "clear", "--force")
    assert len(cleared["deleted"]) == 4 and cleared["failed"] == []
    assert run_json(server.url, "index") == []


def test_server_down(dead_url: str, api_version: str) -> None:
    result = run(dead_url, "index", code=1)
    line = error_line(result)
    assert dead_url in line and "tank-api" in line and "refused" in line


def test_stores_and_plugins_need_no_server(dead_url: str) -> None:
    stores = run_json(dead_url, "stores")
    fs = next(s for s in stores if s["type"] == "file")
    assert fs["schemes"] == ["file"]
    assert set(fs["capabilities"]) == {"read", "write", "delete", "list"}
    assert fs["plugin"] == "fs" and fs["distribution"] == "tank-store-fs"
    assert fs["version"]
    assert "file" in run(dead_url, "stores").stdout
    plugins = run_json(dead_url, "plugins")
    assert {"name": "fs", "distribution": "tank-store-fs"}.items() <= next(
        p for p in plugins if p["name"] == "fs"
    ).items()


def test_console_script_pipes(api: ApiServer, tank_script: str, api_version: str) -> None:
    """The installed ``tank`` program, as a shell user runs it: data through pipes."""
    tank = tank_script
    data = os.urandom(1 << 20)
    env = {**os.environ, "TANK_URL": api.url}
    added = subprocess.run(
        [tank, "--json", "add", "name=pipe", *FORMATS],
        input=data,
        capture_output=True,
        env=env,
        check=True,
    )
    image = json.loads(added.stdout)
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    got = subprocess.run(
        [tank, "download", image["id"]], capture_output=True, env=env, check=True
    ).stdout
    assert got == data
    missing = subprocess.run(
        [tank, "show", str(uuid.uuid4())], capture_output=True, env=env, text=True
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: ") and missing.stderr.count("\n") == 1


def identity(tenant: str, roles: str = "member") -> list[str]:
    """The headers a trusted front proxy sets for a tenant's member."""
    return ["-H", "X-Identity-Status: Confirmed", "-H", f"X-Tenant-Id: {tenant}",
            "-H", f"X-Roles: {roles}"]  # fmt: skip


def test_tenants_with_auth_v1(start_api: Callable[..., ApiServer]) -> None:
    server = start_api("--auth")
    alice, bob = ["--api", "v1", *identity("alice")], ["--api", "v1", *identity("bob")]
    mine = [run_json(server.url, *alice, "add", f"name=a{i}", input=b"a")["id"] for i in range(2)]
    private = run_json(server.url, *bob, "add", "name=b-private", input=b"b")["id"]
    # making an image public is for admins (Glance's publicize_image), on v1 too
    run(server.url, *bob, "add", "name=b-public", "is_public=true", input=b"b", code=1)
    bob_admin = ["--api", "v1", *identity("bob", "member,admin")]
    public = run_json(server.url, *bob_admin, "add", "name=b-public", "is_public=true", input=b"b")[
        "id"
    ]
    shared = run_json(server.url, *bob, "add", "name=b-shared", input=b"b")["id"]
    run(server.url, *bob, "member-add", shared, "alice")

    seen = {r["id"] for r in run_json(server.url, *alice, "index", "is_public=none")}
    assert seen == {*mine, public, shared}
    assert private in error_line(run(server.url, *alice, "show", private, code=1))
    assert [r["image_id"] for r in run_json(server.url, *alice, "member-images", "alice")] == [
        shared
    ]
    refused = run(server.url, *alice, "delete", public, code=1)
    assert public in error_line(refused)

    cleared = run_json(server.url, *alice, "clear", "--force")
    assert sorted(cleared["deleted"]) == sorted(mine) and cleared["failed"] == []
    left = {r["id"] for r in run_json(server.url, *bob, "index", "is_public=none")}
    assert left == {private, public, shared}
    assert "authentication required" in error_line(run(server.url, "index", code=1))
