"""Real S3 servers for the s3 store's tests: Ceph RGW and Swift's s3api.

``eval "$(bash tests/servers/ceph.sh env)"`` and ``... swift.sh env`` set
``TANK_TEST_RGW_S3_*`` and ``TANK_TEST_SWIFT_S3_*`` (ENDPOINT, ACCESS_KEY, SECRET_KEY;
optional REGION). Tests of a server whose variables are missing skip and name them.
Every test gets its own uniquely named bucket, emptied and deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from tank.testing import require_env
from tank_store_s3 import S3Backend

MiB = 1 << 20
SERVER_NAMES = ("rgw", "swift")
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
#: Small parts (5 MiB is the smallest both servers accept) keep multipart tests fast.
TEST_SETTINGS: dict[str, Any] = {
    "large_object_size": 5 * MiB,
    "large_object_chunk_size": 5 * MiB,
    "thread_pools": 3,
    "max_attempts": 2,
}


@attrs.frozen
class Server:
    name: str
    endpoint: str
    access_key: str
    secret_key: str = attrs.field(repr=False)
    region: str

    def config(self, bucket: str, **overrides: Any) -> S3Backend.Config:
        settings: dict[str, Any] = {
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
            "addressing_style": "path",
            "bucket": bucket,
            **TEST_SETTINGS,
        }
        settings.update(overrides)
        return S3Backend.Config(**settings)


def server_from_env(name: str) -> Server:
    """The test server ``rgw`` or ``swift``; skips naming the missing variables."""
    prefix = f"TANK_TEST_{name.upper()}_S3_"
    env = require_env(prefix + "ENDPOINT", prefix + "ACCESS_KEY", prefix + "SECRET_KEY")
    return Server(
        name=name,
        endpoint=env[prefix + "ENDPOINT"],
        access_key=env[prefix + "ACCESS_KEY"],
        secret_key=env[prefix + "SECRET_KEY"],
        region=os.environ.get(prefix + "REGION") or "us-east-1",
    )


def admin_client(server: Server) -> Any:
    """A plain boto3 client, to set up and inspect buckets behind the store's back."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def leftovers(client: Any, bucket: str) -> set[str]:
    """Every object key in ``bucket``, plus ``upload:<key>`` per unfinished multipart upload."""
    found = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update(obj["Key"] for obj in page.get("Contents", []))
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    found.update(f"upload:{upload['Key']}" for upload in uploads)
    return found


def delete_bucket(client: Any, bucket: str) -> None:
    """Abort unfinished uploads, delete every object, then the bucket (if it exists)."""
    from botocore.exceptions import ClientError

    try:
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise


def unique_bucket() -> str:
    return f"tank-test-{uuid.uuid4().hex[:16]}"


@attrs.frozen
class S3Bucket:
    """A test bucket on one server, with a plain boto3 client to inspect it."""

    server: Server
    name: str
    admin: Any

    def config(self, **overrides: Any) -> S3Backend.Config:
        return self.server.config(self.name, **overrides)

    def leftovers(self) -> set[str]:
        return leftovers(self.admin, self.name)


@pytest.fixture
def make_bucket() -> Iterator[Callable[[str], S3Bucket]]:
    """``make_bucket("rgw" | "swift")``: a fresh bucket there, deleted afterwards."""
    made: list[S3Bucket] = []

    def make(server_name: str) -> S3Bucket:
        server = server_from_env(server_name)
        made.append(S3Bucket(server, unique_bucket(), admin_client(server)))
        made[-1].admin.create_bucket(Bucket=made[-1].name)
        return made[-1]

    yield make
    for bucket in made:
        delete_bucket(bucket.admin, bucket.name)


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to loopback directly, whatever proxy the machine has configured."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(params=SERVER_NAMES)
def server(request: pytest.FixtureRequest) -> Server:
    return server_from_env(request.param)


@pytest.fixture
def admin(server: Server) -> Any:
    return admin_client(server)


@pytest.fixture
def bucket(server: Server, admin: Any) -> Iterator[str]:
    """A fresh bucket on ``server``, deleted with everything in it afterwards."""
    name = unique_bucket()
    admin.create_bucket(Bucket=name)
    yield name
    delete_bucket(admin, name)


@pytest.fixture
def unused_bucket(server: Server, admin: Any) -> Iterator[str]:
    """A bucket name that does not exist yet; deleted afterwards if a test created it."""
    name = unique_bucket()
    yield name
    delete_bucket(admin, name)


@pytest.fixture
def make_backend(server: Server, bucket: str) -> Iterator[Callable[..., S3Backend]]:
    """``make_backend(**config overrides)``: an S3Backend on ``bucket``, closed afterwards."""
    made: list[S3Backend] = []

    def make(**overrides: Any) -> S3Backend:
        backend = S3Backend(server.config(bucket, **overrides), name="s3")
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def backend(make_backend: Callable[..., S3Backend]) -> S3Backend:
    return make_backend()
