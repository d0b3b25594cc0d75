"""Numbers too long for Python's int conversion (over 4,300 digits), with a real
tank-api (issue 15: "15 requests gave 500"): each is a 400 naming the field, in every
place a number is read; in a Range, a position that long is past the end of any image
(206 or 416, as RFC 9110 reads it)."""

from __future__ import annotations

import uuid

import pytest
import requests

from tank.testing.api_server import ApiServer

LONG = "9" * 5000


@pytest.fixture(scope="module")
def image(api: ApiServer) -> str:
    resp = requests.post(
        f"{api.url}/v1/images",
        data=b"abc",
        headers={"x-image-meta-name": "long", "Content-Type": "application/octet-stream"},
        timeout=5,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["image"]["id"])


def refused(resp: requests.Response, field: str) -> None:
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    assert field in resp.json()["error"]["message"]


@pytest.mark.parametrize("field", ["size", "min_ram", "min_disk"])
def test_v1_create_and_update_headers(api: ApiServer, image: str, field: str) -> None:
    headers = {f"x-image-meta-{field}": LONG, "x-image-meta-id": str(uuid.uuid4())}
    refused(requests.post(f"{api.url}/v1/images", headers=headers, timeout=5), field)
    update = {f"x-image-meta-{field}": LONG}
    refused(requests.put(f"{api.url}/v1/images/{image}", headers=update, timeout=5), field)


@pytest.mark.parametrize("field", ["limit", "size_min", "size_max"])
@pytest.mark.parametrize("path", ["/v1/images", "/v1/images/detail", "/v2/images"])
def test_listing_parameters(api: ApiServer, path: str, field: str) -> None:
    refused(requests.get(f"{api.url}{path}?{field}={LONG}", timeout=5), field)


@pytest.mark.parametrize("field", ["min_ram", "min_disk"])
def test_v2_create_and_patch(api: ApiServer, field: str) -> None:
    body = f'{{"name": "long", "{field}": {LONG}}}'
    resp = requests.post(
        f"{api.url}/v2/images",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    created = requests.post(f"{api.url}/v2/images", json={"name": "patched"}, timeout=5)
    patch = f'[{{"op": "replace", "path": "/{field}", "value": {LONG}}}]'
    resp = requests.patch(
        f"{api.url}/v2/images/{created.json()['id']}",
        data=patch,
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
        timeout=5,
    )
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])


@pytest.mark.parametrize(
    "range_,status,body",
    [
        (f"bytes={LONG}-", 416, None),
        (f"bytes={LONG}-{LONG}", 416, None),
        (f"bytes=0-{LONG}", 206, b"abc"),  # a last position past the end is the end
        (f"bytes=1-{LONG}", 206, b"bc"),
        (f"bytes=-{LONG}", 206, b"abc"),  # a suffix longer than the data is all of it
    ],
)
@pytest.mark.parametrize("path", ["/v1/images/{id}", "/v2/images/{id}/file"])
def test_ranges(
    api: ApiServer, image: str, path: str, range_: str, status: int, body: bytes | None
) -> None:
    """Range positions are read as RFC 9110 says (any position past the data is past its
    end), never converted whole."""
    resp = requests.get(api.url + path.format(id=image), headers={"Range": range_}, timeout=5)
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    if body is not None:
        assert resp.content == body
        assert resp.headers["Content-Range"] == f"bytes {3 - len(body)}-2/3"
