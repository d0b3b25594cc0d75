"""Config keys, error mapping and plugin registration (no server needed)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from tank import config, errors
from tank.plugins import make_plugin_manager
from tank_store_s3 import S3Backend
from tank_store_s3.client import translate

WHERE = "tank.toml [stores.s3]"


def build(**section: Any) -> Any:
    return config.build(S3Backend.Config, {"bucket": "tank-images", **section}, where=WHERE)


def test_defaults() -> None:
    cfg = build()
    assert cfg.endpoint is None and cfg.access_key is None and cfg.secret_key is None
    assert cfg.create_bucket_on_put is False
    assert cfg.large_object_chunk_size >= 5 << 20
    assert cfg.thread_pools >= 1 and cfg.max_attempts >= 1


@pytest.mark.parametrize(
    "section,key",
    [
        ({"large_object_chunk_size": 1 << 20}, "large_object_chunk_size"),
        ({"thread_pools": 0}, "thread_pools"),
        ({"addressing_style": "sideways"}, "addressing_style"),
        ({"endpoint": "ftp://host"}, "endpoint"),
        ({"endpoint": "http://ak:secret@host"}, "endpoint"),
        ({"access_key": "ak"}, "access_key"),
        ({"bucket": "no spaces allowed"}, "bucket"),
        ({"buckett": "typo"}, "buckett"),
        ({"connect_timeout": "5"}, "connect_timeout"),
    ],
)
def test_bad_settings_name_their_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        build(**section)
    assert WHERE in str(caught.value) and key in str(caught.value)
    assert "secret" not in str(caught.value).replace("secret_key", "")


def test_secret_key_is_not_in_repr() -> None:
    cfg = build(access_key="ak", secret_key="very-secret-value")
    assert "very-secret-value" not in repr(cfg)
    assert "very-secret-value" not in repr(S3Backend(cfg, name="s3"))


def test_registered_through_the_tank_entry_point() -> None:
    (entry_point,) = importlib.metadata.entry_points(group="tank", name="s3")
    plugins = make_plugin_manager(plugins=[("s3", entry_point.load())], autoload=False)
    assert plugins.store_types()["s3"] is S3Backend


def client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    "exc,expected",
    [
        (client_error("NoSuchKey", 404), errors.NotFound),
        (client_error("NoSuchBucket", 404), errors.NotFound),
        (client_error("404", 404), errors.NotFound),
        (client_error("SignatureDoesNotMatch", 403), errors.Forbidden),
        (client_error("InvalidAccessKeyId", 403), errors.Forbidden),
        (client_error("AccessDenied", 403), errors.Forbidden),
        (client_error("403", 403), errors.Forbidden),
        (client_error("PreconditionFailed", 412), errors.Duplicate),
        (client_error("QuotaExceeded", 403), errors.StorageFull),
        (client_error("SlowDown", 503), errors.StoreUnavailable),
        (client_error("InternalError", 500), errors.StoreUnavailable),
        (client_error("Weird", 400), errors.StoreError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1/b"), errors.StoreUnavailable),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1/b"), errors.StoreUnavailable),
    ],
)
def test_error_mapping(exc: Exception, expected: type[errors.TankError]) -> None:
    backend = S3Backend(build(access_key="ak", secret_key="s3cr3t"), name="s3")
    translated = translate(exc, backend, "reading", "s3://tank-images/x")
    assert type(translated) is expected
    assert "s3cr3t" not in str(translated) and "s3://tank-images/x" in str(translated)
    if expected is errors.Forbidden:
        assert "access_key/secret_key" in str(translated)


def test_library_messages_are_scrubbed_of_the_secret() -> None:
    backend = S3Backend(build(access_key="ak", secret_key="s3cr3t"), name="s3")
    exc = client_error("Weird", 400)
    exc.args = ("the server echoed s3cr3t back",)
    assert "s3cr3t" not in str(translate(exc, backend, "reading", "s3://tank-images/x"))


@pytest.mark.parametrize(
    "endpoint, signed",
    [("http://127.0.0.1:7480", True), ("https://s3.example.com", False), (None, False)],
)
def test_payload_is_signed_only_without_tls(endpoint: str | None, signed: bool) -> None:
    """Over HTTPS the body goes as UNSIGNED-PAYLOAD (TLS protects it; signing costs a
    SHA-256 pass over every byte); over plain HTTP the signature is its only guard."""
    import hashlib

    from botocore.awsrequest import AWSResponse

    from tank_store_s3.client import make_client

    section = {"bucket": "images", "access_key": "a", "secret_key": "s", "region": "us-east-1"}
    if endpoint:
        section["endpoint"] = endpoint
    client = make_client(build(**section))
    seen: list[str] = []

    class Raw:  # the answer botocore gets instead of going to the network
        def stream(self, **kwargs: Any) -> Any:
            yield b""

    def capture(request: Any, **kwargs: Any) -> AWSResponse:
        seen.append(request.headers["X-Amz-Content-SHA256"].decode())
        return AWSResponse(request.url, 200, {"ETag": '"x"'}, Raw())

    client.meta.events.register("before-send.s3.UploadPart", capture)
    body = b"part data" * 1000
    client.upload_part(Bucket="images", Key="k", UploadId="u", PartNumber=1, Body=body)
    expected = hashlib.sha256(body).hexdigest() if signed else "UNSIGNED-PAYLOAD"
    assert seen == [expected]
