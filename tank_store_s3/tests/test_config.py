"""Config keys, error mapping and plugin registration (no server needed)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
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


KNOWN_KEYS = (
    "access_key, addressing_style, bucket, ca_bundle, connect_timeout, create_bucket_on_put, "
    "endpoint, large_object_chunk_size, large_object_size, max_attempts, read_timeout, "
    "region, secret_key, thread_pools, verify_tls"
)


@pytest.mark.parametrize(
    "section,message",
    [
        (
            {"large_object_chunk_size": 1 << 20},
            " large_object_chunk_size: must be from 5242880 to 5368709120",
        ),
        ({"thread_pools": 0}, " thread_pools: must be > 0"),
        ({"large_object_size": -1}, " large_object_size: must be >= 0"),
        (
            {"addressing_style": "sideways"},
            " addressing_style: must be one of: auto, path, virtual",
        ),
        ({"endpoint": "ftp://host"}, " endpoint: must be an http:// or https:// URL with a host"),
        (
            {"endpoint": "http://ak:secret@host"},
            " endpoint: must not contain credentials; give them in their own keys",
        ),
        (
            {"access_key": "ak"},
            ": access_key and secret_key must be set together "
            "(or neither, to use botocore's credential chain)",
        ),
        (
            {"bucket": "no spaces allowed"},
            " bucket: must be a valid S3 bucket name: 3 to 255 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit",
        ),
        (
            {"buckett": "typo"},
            f" buckett: unknown key (did you mean bucket? known keys: {KNOWN_KEYS})",
        ),
        ({"connect_timeout": "5"}, " connect_timeout: expected a number, got a string"),
        ({"max_attempts": True}, " max_attempts: expected an integer, got a boolean"),
        ({"verify_tls": 1}, " verify_tls: expected a boolean, got an integer"),
        ({"region": ["eu"]}, " region: expected a string, got an array"),
    ],
)
def test_bad_settings_name_their_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        build(**section)
    assert str(caught.value) == WHERE + message


@pytest.mark.parametrize(
    "table,message",
    [
        (
            'endpoint = { env = "S3_SECRET" }',
            " endpoint: must be an http:// or https:// URL with a host",
        ),
        ('bucket = { env = "S3_SECRET" }', " bucket: must be a valid S3 bucket name"),
        (
            'thread_pools = { env = "S3_SECRET" }',
            " thread_pools: expected an integer, got a string"
            " (from environment variable S3_SECRET)",
        ),
        (
            'access_key = "ak"\nsecret_key = { env = "S3_SECRET" }\nthread_pools = 0',
            " thread_pools: must be > 0",
        ),
        ('secret_key = { env = "S3_SECRET" }', ": access_key and secret_key must be set together"),
        ('region = { env = "S3_SECRET" }\nregion_name = 1', " region_name: unknown key"),
    ],
)
def test_secrets_from_the_environment_stay_out_of_messages(
    tmp_path: Path, table: str, message: str
) -> None:
    path = tmp_path / "tank.toml"
    bucket = "" if table.startswith("bucket") else 'bucket = "tank-images"\n'
    path.write_text(f"[stores.s3]\n{bucket}{table}\n")
    secret = "ftp://ak:hunter2@s3.example"
    cfg = config.load(path, data_dir=tmp_path, environ={"S3_SECRET": secret})
    with pytest.raises(errors.ConfigError) as caught:
        config.build(S3Backend.Config, cfg.stores["s3"], where=cfg.where("stores.s3"))
    assert str(caught.value).startswith(f"{path} [stores.s3]{message}")
    assert "hunter2" not in str(caught.value)


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


def test_the_client_needs_botocore_only() -> None:
    """boto3 (resources, s3transfer) is never imported: ~3 MiB per tank-api process."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tank_store_s3.backend import S3Backend\n"
        "from tank_store_s3.client import make_client\n"
        "make_client(S3Backend.Config(bucket='images', endpoint='http://127.0.0.1:9'))\n"
        "assert 'boto3' not in sys.modules, 'boto3 was imported'\n"
        "assert 's3transfer' not in sys.modules, 's3transfer was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
