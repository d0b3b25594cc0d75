"""The image cache end to end: a real ``tank-api`` (``--auth``) whose only store is a
chase store on a fresh container of the shared Swift server, with ``[cache]`` on.

Tests look behind Tank's back with swiftclient (removing or replacing an image's object)
to prove where a download was served from."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.testing import require_env
from tank.testing.api_server import ApiServer

SWIFT = ("TANK_TEST_SWIFT_AUTH", "TANK_TEST_SWIFT_USER", "TANK_TEST_SWIFT_KEY")


class Caller:
    """Who a request speaks for: the headers Keystone's auth_token middleware sets."""

    def __init__(self, roles: tuple[str, ...]) -> None:
        self.project = uuid.uuid4().hex
        self.roles = roles

    def headers(self) -> dict[str, str]:
        return {
            "X-Identity-Status": "Confirmed",
            "X-Project-Id": self.project,
            "X-User-Id": uuid.uuid4().hex,
            "X-Roles": ",".join(self.roles),
        }


def tenant(role: str = "member") -> Caller:
    return Caller(("admin", "member", "reader") if role == "admin" else ("member", "reader"))


class Http:
    """Raw HTTP to one tank-api as one caller."""

    def __init__(self, server: ApiServer, caller: Caller) -> None:
        self.url = server.url
        self.session = requests.Session()
        self.session.headers.update(caller.headers())

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        return self.session.request(method, self.url + path, **kwargs)

    def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        resp = self("POST", "/v2/images", json=body)
        assert resp.status_code == 201, (resp.status_code, resp.text)
        return dict(resp.json())


CONFIG = """\
[stores.swift]
type = "chase"
auth_address = "{auth}"
user = "{user}"
key = "{key}"
container = "{container}"

[cache]
enabled = true
max_size = {max_size}
prefetch_interval = {prefetch_interval}
"""


class CacheTank:
    """A running tank-api with the cache on, its Swift container and cache dir."""

    def __init__(self, root: Path, *, max_size: int = 1 << 30, prefetch: float = 300) -> None:
        env = require_env(*SWIFT)
        self.auth, self.user, self.key = env.values()
        self.container = f"tank-test-cache-{uuid.uuid4().hex[:10]}"
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "tank.toml"
        self.config.write_text(
            CONFIG.format(
                auth=self.auth,
                user=self.user,
                key=self.key,
                container=self.container,
                max_size=max_size,
                prefetch_interval=prefetch,
            )
        )
        self.data_dir = root / "data"
        self.cache_dir = self.data_dir / "cache"
        self.server = ApiServer(
            self.data_dir, root / "tank-api.log", ["--auth", "--config", str(self.config)]
        )
        self.url = self.server.url

    def swift(self) -> Any:
        from swiftclient.client import Connection

        return Connection(self.auth, self.user, self.key, retries=1)

    def objects_of(self, image_id: str) -> list[str]:
        _, listing = self.swift().get_container(self.container, full_listing=True)
        return [o["name"] for o in listing if image_id in o["name"]]

    def remove_from_swift(self, image_id: str) -> None:
        """Delete the image's data behind Tank's back."""
        conn = self.swift()
        names = self.objects_of(image_id)
        assert names, f"no object of image {image_id} in {self.container}"
        for name in names:
            conn.delete_object(self.container, name)

    def replace_in_swift(self, image_id: str, data: bytes) -> None:
        (name,) = self.objects_of(image_id)
        self.swift().put_object(self.container, name, data)

    def entry(self, image_id: str) -> Path:
        return self.cache_dir / "entries" / image_id

    def wait_cached(self, image_id: str, timeout: float = 15) -> Path:
        deadline = time.monotonic() + timeout
        while not self.entry(image_id).exists():
            if time.monotonic() > deadline:
                pytest.fail(f"image {image_id} was never cached:\n{self.server.log()}")
            time.sleep(0.05)
        return self.entry(image_id)

    def log(self) -> str:
        return self.server.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.server.stop()
        log = self.log()
        from swiftclient.client import ClientException

        try:
            conn = self.swift()
            _, listing = conn.get_container(self.container, full_listing=True)
            for o in listing:
                conn.delete_object(self.container, o["name"])
            conn.delete_container(self.container)
        except ClientException:  # the container may never have been created
            pass
        assert "unexpected error" not in log, "tank-api answered 500:\n" + log[-6000:]


@pytest.fixture(scope="module")
def cache_tank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheTank]:
    tank = CacheTank(tmp_path_factory.mktemp("tank-cache"), prefetch=0.5)
    yield tank
    tank.stop()


@pytest.fixture(scope="module")
def admin() -> Caller:
    return tenant("admin")


@pytest.fixture(scope="module")
def member() -> Caller:
    return tenant()


@pytest.fixture(scope="module")
def http(cache_tank: CacheTank, admin: Caller) -> Http:
    return Http(cache_tank.server, admin)


@pytest.fixture(scope="module")
def http_member(cache_tank: CacheTank, member: Caller) -> Http:
    return Http(cache_tank.server, member)


Upload = Callable[..., tuple[str, bytes]]


def upload_image(http: Http, size: int, **fields: Any) -> tuple[str, bytes]:
    """A new active image of ``size`` random bytes: its id and data."""
    data = os.urandom(size)
    image = http.create(name=f"cache-{uuid.uuid4().hex[:8]}", visibility="public", **fields)
    resp = http(
        "PUT",
        f"/v2/images/{image['id']}/file",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204, resp.text
    return image["id"], data


@pytest.fixture
def upload(http: Http) -> Upload:
    return lambda size=256 * 1024, **fields: upload_image(http, size, **fields)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
