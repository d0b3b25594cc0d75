"""What a new user tripped over in the ``tank`` command, each fixed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from .conftest import FORMATS, run

ApiServer = Any  # tests/cli/conftest.py: .url, .data_dir


def test_json_after_the_subcommand(api: ApiServer, api_version: str) -> None:
    added = json.loads(run(api.url, "add", "name=late-json", *FORMATS, "--json", input=b"x").stdout)
    shown = json.loads(run(api.url, "show", added["id"], "--json").stdout)
    assert shown["id"] == added["id"] and shown["status"] == "active"


def test_errors_are_json_in_json_mode(api: ApiServer, api_version: str) -> None:
    missing = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    result = run(api.url, "--json", "show", missing, code=1)
    assert result.stdout == ""
    said = json.loads(result.stderr)
    assert said == {
        "error": {"kind": "error", "message": f"image {missing} not found", "status": 404}
    }
    unknown = run(api.url, "--json", "no-such-verb", code=2)
    assert json.loads(unknown.stderr)["error"]["kind"] == "usage"
    usage = run(api.url, "index", "--limit", "0", "--json", code=2)
    assert json.loads(usage.stderr)["error"]["kind"] == "usage"
    assert "--limit" in json.loads(usage.stderr)["error"]["message"]


def test_one_wording_for_a_missing_image(api: ApiServer, api_version: str) -> None:
    missing = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    for verb in ("show", "download", "delete"):
        result = run(api.url, verb, missing, code=1)
        assert f"image {missing} not found" in result.stderr, (verb, result.stderr)


def test_lookup_by_name(api: ApiServer, api_version: str, tmp_path: Path) -> None:
    name = f"by-name-{os.urandom(4).hex()}"
    added = json.loads(run(api.url, "--json", "add", f"name={name}", *FORMATS, input=b"abc").stdout)
    out = tmp_path / "got"
    run(api.url, "download", name, "-o", str(out))
    assert out.read_bytes() == b"abc"
    assert json.loads(run(api.url, "--json", "show", name).stdout)["id"] == added["id"]
    other = json.loads(run(api.url, "--json", "add", f"name={name}", *FORMATS, input=b"d").stdout)
    ambiguous = run(api.url, "show", name, code=1).stderr
    assert f"2 images are named {name!r}" in ambiguous
    assert added["id"] in ambiguous and other["id"] in ambiguous
    run(api.url, "delete", added["id"])
    assert json.loads(run(api.url, "--json", "show", name).stdout)["id"] == other["id"]


def test_unknown_name_v2(api: ApiServer) -> None:
    result = run(api.url, "--api", "v2", "show", "no-such-name-at-all", code=1)
    assert "no image has the id or name 'no-such-name-at-all'" in result.stderr


def test_range_errors_name_the_field(api: ApiServer, api_version: str) -> None:
    result = run(api.url, "add", "name=r", "size=-1", *FORMATS, input=b"x", code=1)
    assert "size: must be >= 0, got -1" in result.stderr


def test_checksum_checked_before_the_upload(api: ApiServer, api_version: str) -> None:
    name = f"bad-sum-{os.urandom(4).hex()}"
    result = run(api.url, "add", f"name={name}", "--checksum", "xyz", *FORMATS, input=b"x", code=2)
    assert "'xyz' is not an MD5 checksum" in result.stderr
    listed = json.loads(run(api.url, "--json", "index", f"name={name}").stdout)
    assert listed == []  # nothing was created, nothing uploaded
    result = run(api.url, "add", f"name={name}", "checksum=12", *FORMATS, input=b"x", code=2)
    assert "'12' is not an MD5 checksum" in result.stderr


def test_index_has_a_status_column(api: ApiServer, api_version: str) -> None:
    name = f"queued-{os.urandom(4).hex()}"
    run(api.url, "add", f"name={name}", *FORMATS, input=b"")
    lines = run(api.url, "index", f"name={name}").stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "Name", "Status"]
    assert lines[2].split()[2] == "queued"


def test_https_url_against_plain_http(api: ApiServer, tank_script: str) -> None:
    url = api.url.replace("http://", "https://")
    result = subprocess.run(
        [tank_script, "--url", url, "--timeout", "20", "index"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "if the server speaks plain HTTP there, use an http:// URL" in result.stderr
    assert "Is tank-api running" not in result.stderr


def test_piped_upload_shows_bytes_and_rate(api: ApiServer, tank_script: str) -> None:
    result = subprocess.run(
        [tank_script, "--url", api.url, "--progress", "add", "name=piped", *FORMATS],
        input=b"y" * 300_000,  # through a pipe: the size is not known in advance
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert b"Uploading: 293.0 KiB, " in result.stderr and b"/s" in result.stderr
