"""The ``tank`` verbs only v2 has, and the ``--api`` switch, against a real tank-api."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tank.cli.main import cli
from tank.client import Client

from .conftest import FORMATS, run
from .test_cli import ApiServer, error_line, identity, run_json
from .test_client_v2 import import_config


def test_v2_is_the_default_and_v1_is_a_switch_away(
    api: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TANK_API_VERSION", raising=False)
    image_id = run_json(api.url, "add", "name=switch", "--tag", "t1", input=b"")["id"]
    assert run_json(api.url, "show", image_id)["tags"] == ["t1"]
    stored = run_json(api.url, "add", "name=stored", *FORMATS, input=b"data")["id"]
    assert run_json(api.url, "show", stored)["stores"] == ["file"]
    assert "stores" not in run_json(api.url, "--api", "v1", "show", stored)
    for v1 in (("--api", "v1"), ("--api", "1")):
        refused = error_line(run(api.url, *v1, "tag", "add", image_id, "t2", code=1))
        assert "--api v2" in refused
    monkeypatch.setenv("TANK_API_VERSION", "1")
    assert "--api v2" in error_line(run(api.url, "deactivate", image_id, code=1))
    assert run_json(api.url, "show", image_id)["id"] == image_id  # v1 HEAD works too
    assert run_json(api.url, "--api", "2.16", "show", image_id)["tags"] == ["t1"]
    bad = CliRunner().invoke(cli, ["--url", api.url, "--api", "v3", "index"])
    assert bad.exit_code == 2 and "v3" in bad.stderr


def test_tags_filters_and_sort(api: ApiServer, tag: str) -> None:
    ids = [
        run_json(
            api.url, "add", f"name=t-{i}", f"property-batch={tag}", "--tag", tag,
            *(["--tag", "odd"] if i % 2 else []), input=b"",
        )["id"]
        for i in range(4)
    ]  # fmt: skip
    odd = run_json(api.url, "index", f"tag={tag}", "tag=odd", "--sort", "name:asc")
    assert [r["id"] for r in odd] == [ids[1], ids[3]]
    shown = run_json(api.url, "tag", "add", ids[0], "odd", "x")
    assert shown["tags"] == sorted([tag, "odd", "x"])
    assert run_json(api.url, "tag", "remove", ids[0], "x")["tags"] == sorted([tag, "odd"])
    both = run_json(api.url, "index", f"tag={tag}", "tag=odd", "--sort", "name:desc")
    assert [r["id"] for r in both] == [ids[3], ids[1], ids[0]]
    named = run_json(api.url, "details", f"property-batch={tag}", "name=in:t-0,t-2")
    assert sorted(r["name"] for r in named) == ["t-0", "t-2"]
    assert "--sort" in run(api.url, "index", "--sort", "name", "--sort-key", "size", code=2).stderr
    assert "x" in error_line(run(api.url, "tag", "remove", ids[0], "x", code=1))


def test_visibility_and_hidden(api: ApiServer, tag: str) -> None:
    image = run_json(
        api.url, "add", "name=hidden", "visibility=community", "os_hidden=true",
        f"property-batch={tag}", input=b"",
    )  # fmt: skip
    assert (image["visibility"], image["os_hidden"]) == ("community", True)
    assert run_json(api.url, "index", f"property-batch={tag}") == []
    listed = run_json(api.url, "index", f"property-batch={tag}", "os_hidden=true")
    assert [r["id"] for r in listed] == [image["id"]]
    refused = run(api.url, "--api", "v1", "add", "name=x", "visibility=private", input=b"", code=1)
    assert "visibility" in error_line(refused)


def test_deactivate_and_reactivate(api: ApiServer, tmp_path: Path) -> None:
    data = os.urandom(4096)
    image_id = run_json(api.url, "add", "name=deact", *FORMATS, input=data)["id"]
    assert run_json(api.url, "deactivate", image_id)["status"] == "deactivated"
    assert run_json(api.url, "reactivate", image_id)["status"] == "active"
    assert run(api.url, "download", image_id).stdout_bytes == data


def test_stage_import_copy_and_info(start_api: Callable[..., ApiServer], tmp_path: Path) -> None:
    server = start_api("--config", str(import_config(tmp_path)))
    info = run_json(server.url, "info")
    assert set(info["import_methods"]) == {"glance-direct", "web-download", "copy-image"}
    assert {s["id"]: s["default"] for s in info["stores"]} == {"fast": True, "slow": False}
    data = os.urandom(1 << 20)
    src = tmp_path / "disk.img"
    src.write_bytes(data)
    image_id = run_json(server.url, "add", "name=imported", *FORMATS, input=b"")["id"]
    assert run_json(server.url, "stage", image_id, str(src))["status"] == "uploading"
    done = run_json(server.url, "import", image_id, "--wait", "--wait-timeout", "120")
    assert (done["status"], done["checksum"]) == ("active", hashlib.md5(data).hexdigest())
    assert done["stores"] == ["fast"]
    copied = run_json(server.url, "copy", image_id, "--store", "slow", "--wait")
    assert (copied["id"], copied["stores"]) == (image_id, ["fast", "slow"])
    assert run_json(server.url, "show", image_id)["stores"] == ["fast", "slow"]
    with Client(server.url) as client:
        assert client.image_stores(image_id) == ("fast", "slow")
    removed = run(server.url, "delete", image_id, "--store", "fast")
    assert "store fast" in removed.stdout
    assert run_json(server.url, "show", image_id)["stores"] == ["slow"]
    out = tmp_path / "out.img"
    run(server.url, "download", image_id, "-o", str(out))
    assert out.read_bytes() == data
    assert "--uri" in run(server.url, "import", image_id, "--method", "web-download", code=2).stderr
    assert "--store" in run(server.url, "copy", image_id, code=2).stderr


def test_tenants_with_auth(start_api: Callable[..., ApiServer]) -> None:
    """v2's sharing as a member lives it: a shared image shows up once accepted."""
    server = start_api("--auth")
    alice, bob = identity("alice"), identity("bob")
    mine = run_json(server.url, *alice, "add", "name=a", *FORMATS, input=b"a")["id"]
    shared = run_json(server.url, *bob, "add", "name=b-shared", input=b"")["id"]
    private = run_json(server.url, *bob, "add", "name=b-private", "visibility=private", input=b"")[
        "id"
    ]
    assert run_json(server.url, *bob, "member-add", shared, "alice")["status"] == "pending"
    assert {r["id"] for r in run_json(server.url, *alice, "index")} == {mine}
    pending = run_json(server.url, *alice, "index", "member_status=pending")
    assert {r["id"] for r in pending} == {mine, shared}  # her own images always, as Glance
    answered = run_json(server.url, *alice, "member", "accept", shared)  # as herself
    assert (answered["member"], answered["status"]) == ("alice", "accepted")
    assert {r["id"] for r in run_json(server.url, *alice, "index")} == {mine, shared}
    assert private in error_line(run(server.url, *alice, "show", private, code=1))
    refused = run(server.url, *bob, "member", "reject", shared, "alice", code=1)
    assert shared in error_line(refused) or "alice" in error_line(refused)
    cleared = run_json(server.url, *alice, "clear", "--force")
    assert cleared == {"deleted": [mine], "failed": []}
    left = {r["id"] for r in run_json(server.url, *bob, "index", "visibility=all")}
    assert left == {shared, private}
