"""The tank.testing store contract, against two real S3 servers: Ceph RGW and Swift s3api."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from tank.store import Backend
from tank.testing import BackendContract
from tank_store_s3 import S3Backend


class S3Contract(BackendContract):
    """Small parts (5 MiB) so that the contract's larger images go up in several parts."""

    server_name: ClassVar[str]
    bucket: Any

    @pytest.fixture
    def backend(self, make_bucket: Callable[[str], Any]) -> Iterator[Backend]:
        self.bucket = make_bucket(self.server_name)
        backend = S3Backend(self.bucket.config(), name="s3")
        yield backend
        backend.close()

    def list_stored(self, backend: Backend) -> set[str]:
        return self.bucket.leftovers()  # objects and unfinished multipart uploads

    def missing_location(self, backend: Backend) -> str:
        return f"s3://{self.bucket.name}/missing-{uuid.uuid4()}"


class TestRgwContract(S3Contract):
    server_name = "rgw"


class TestSwiftS3Contract(S3Contract):
    server_name = "swift"
