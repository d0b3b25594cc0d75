"""Locations: Tank's ``s3://bucket/key`` and Glance's legacy forms, whose secrets never show."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tank import errors
from tank_store_s3 import S3Backend
from tank_store_s3.location import S3Location

SECRET = "wJalr/XUtnFEMI+K7MDENG/bPxRfiCY"  # AWS secrets may contain '/' and '+'
PIECES = SECRET.split("/")


@pytest.mark.parametrize(
    "uri,bucket,key",
    [
        ("s3://tank-images/0b1e0f6c-1d2e-4c3b-9a8f", "tank-images", "0b1e0f6c-1d2e-4c3b-9a8f"),
        ("s3://b.with.dots/dir/sub/image.qcow2", "b.with.dots", "dir/sub/image.qcow2"),
        ("s3://bucket/a%20b", "bucket", "a b"),
        ("S3://bucket/k@y", "bucket", "k@y"),
    ],
)
def test_tank_locations(uri: str, bucket: str, key: str) -> None:
    loc = S3Location.parse(uri)
    assert (loc.bucket, loc.key, loc.endpoint) == (bucket, key, None)
    assert S3Location.parse(loc.to_uri()) == loc


@pytest.mark.parametrize(
    "uri,endpoint",
    [
        (f"s3://AKIAEXAMPLE:{SECRET}@s3.amazonaws.com/glance/img-1", "http://s3.amazonaws.com"),
        (
            f"s3+https://AKIAEXAMPLE:{SECRET}@RGW.example.com:8443/glance/img-1",
            "https://rgw.example.com:8443",
        ),
        ("s3+http://127.0.0.1:7480/glance/img-1", "http://127.0.0.1:7480"),
        (f"s3+http://AKIAEXAMPLE:{SECRET}@host/prefix/glance/img-1", "http://host/prefix"),
    ],
)
def test_legacy_glance_locations(uri: str, endpoint: str) -> None:
    loc = S3Location.parse(uri)
    assert (loc.bucket, loc.key, loc.endpoint) == ("glance", "img-1", endpoint)
    for shown in (loc.to_uri(), loc.redacted(), str(loc), repr(loc)):
        assert "AKIAEXAMPLE" not in shown
        assert not any(piece in shown for piece in PIECES)
    assert S3Location.parse(loc.to_uri()) == loc


@pytest.mark.parametrize(
    "uri",
    [
        "s3://",
        "s3://bucket",
        "s3://bucket/",
        "s3://bad bucket/key",
        "s3+https://host/only-bucket",
        f"s3+https://AKIAEXAMPLE:{SECRET}@host-only",
        f"s3://AKIAEXAMPLE:{SECRET}@",
        "s3://bucket/key\nwith-newline",
        "swift://bucket/key",
        "",
    ],
)
def test_bad_locations_never_echo_secrets(uri: str) -> None:
    with pytest.raises(errors.BadLocation) as caught:
        S3Location.parse(uri)
    assert not any(piece in str(caught.value) for piece in PIECES)


@pytest.fixture
def offline_backend() -> Callable[..., S3Backend]:
    """A backend that is never asked to reach its endpoint."""

    def make(**settings: object) -> S3Backend:
        config = {"bucket": "tank-images", "access_key": "ak", "secret_key": "sk", **settings}
        return S3Backend(S3Backend.Config(**config), name="s3")  # type: ignore[arg-type]

    return make


def test_legacy_location_for_another_endpoint_is_refused(
    offline_backend: Callable[..., S3Backend],
) -> None:
    backend = offline_backend(endpoint="http://127.0.0.1:7480")
    uri = f"s3+https://AKIAEXAMPLE:{SECRET}@other.example.com/glance/{uuid.uuid4()}"
    for attempt in (lambda: backend.get(uri), lambda: backend.get_size(uri)):
        with pytest.raises(errors.BadLocation) as caught:
            attempt()
        assert "other.example.com" in str(caught.value)
        assert not any(piece in str(caught.value) for piece in PIECES)
        assert caught.value.location is not None and PIECES[0] not in caught.value.location


def test_legacy_location_endpoint_match(offline_backend: Callable[..., S3Backend]) -> None:
    backend = offline_backend(endpoint="https://rgw.example.com")
    assert backend.locate("s3+https://ak:sk@RGW.example.com:443/b/k").key == "k"
    with pytest.raises(errors.BadLocation):
        backend.locate("s3+https://ak:sk@rgw.example.com:8443/b/k")
    aws = offline_backend()  # no endpoint: AWS S3 hosts only
    assert aws.locate("s3://ak:sk@s3.amazonaws.com/b/k").bucket == "b"
    with pytest.raises(errors.BadLocation):
        aws.locate("s3://ak:sk@s3.evil.example/b/k")


def test_several_s3_stores_route_legacy_locations_by_endpoint() -> None:
    from tank.stores import StoreSet
    from tank_store_s3.backend import S3Backend

    def store(name: str, endpoint: str) -> S3Backend:
        config = S3Backend.Config(endpoint=endpoint, bucket="bkt", access_key="a", secret_key="s")
        return S3Backend(config, name=name)

    east, west = store("east", "http://east.example:8080"), store("west", "https://west.example")
    stores = StoreSet({"east": east, "west": west}, default="east")
    assert stores.for_location("s3+https://AK:se/cret@west.example/bkt/k") is west
    assert stores.for_location("s3+http://east.example:8080/bkt/k") is east
    assert stores.for_location("s3://bkt/k") is east
