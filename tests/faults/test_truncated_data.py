"""Stored data that is not what the registry records, with a real tank-api (issue 15: "a
truncated stored file is served as a complete download"): never a clean short answer;
the fs store fails before the headers (it knows the file's size) and logs an integrity
fault."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import requests

from tank.testing.api_server import ApiServer


def upload(api: ApiServer, name: str, data: bytes) -> str:
    resp = requests.post(
        f"{api.url}/v1/images",
        data=data,
        timeout=10,
        headers={"Content-Type": "application/octet-stream", "x-image-meta-name": name},
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["image"]["id"])


@pytest.mark.parametrize("api_version", ["v1", "v2"])
def test_a_truncated_stored_file_is_never_served_as_a_whole_image(
    start_api: Callable[..., ApiServer], api_version: str
) -> None:
    """It was served 200 with a short Content-Length and a Content-Range built from the
    short file."""
    api = start_api()
    data = os.urandom(3 << 20)
    image_id = upload(api, "cut", data)
    os.truncate(api.data_dir / "images" / image_id, 1 << 20)
    url = f"{api.url}/v1/images/{image_id}"
    if api_version == "v2":
        url = f"{api.url}/v2/images/{image_id}/file"
    for headers in ({}, {"Range": "bytes=0-99"}, {"Range": "bytes=-100"}):
        got = requests.get(url, headers=headers, timeout=10)
        assert got.status_code == 500, (headers, got.status_code)
        assert "integrity fault" in got.json()["error"]["message"]
    head = requests.head(f"{api.url}/v1/images/{image_id}", timeout=10)
    assert head.headers["x-image-meta-size"] == str(3 << 20)  # the record is untouched
    assert "integrity fault: image " + image_id in api.log()
