"""The Images API v2 end to end: a real ``tank-api`` (``--auth``, two fs stores) driven by
openstacksdk and python-glanceclient as their users call them, and by raw HTTP.

With ``--auth`` tank-api trusts the identity headers Keystone's auth_token middleware
sets. The clients reach it the way a deployment without Keystone does: keystoneauth's
``none`` auth plugin (a fixed endpoint, no token) in a session that adds those headers to
every request. One server serves each test module (``tank_v2``); tests keep apart by
unique names, tags and properties, and by their own tenants where they count images.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import glanceclient
import openstack.connection
import pytest
import requests
from keystoneauth1 import loading, session

from tank.testing.api_server import ApiServer, stop_checked
from tank.testing.identity import Caller, tenant

#: Two fs stores, so that copy-image has somewhere to copy to; ``fast`` is the default.
CONFIG = """\
default_store = "fast"

[stores.fast]
type = "file"
datadir = "{root}/fast"

[stores.slow]
type = "file"
datadir = "{root}/slow"
"""


def start_tank(root: Path, extra_config: str = "") -> ApiServer:
    """A tank-api with ``--auth`` and the two stores, its config file under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "tank.toml"
    config.write_text(CONFIG.format(root=root) + extra_config)
    return ApiServer(root / "data", root / "tank-api.log", ["--auth", "--config", str(config)])


@pytest.fixture(scope="module")
def tank_v2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The module's tank-api: ``--auth``, stores ``fast`` (default) and ``slow``."""
    server = start_tank(tmp_path_factory.mktemp("tank-v2"))
    yield server
    stop_checked(server)


@pytest.fixture(scope="module")
def alice() -> Caller:
    """Tenant A: a project member."""
    return tenant()


@pytest.fixture(scope="module")
def bob() -> Caller:
    """Tenant B: a member of another project."""
    return tenant()


@pytest.fixture(scope="module")
def admin() -> Caller:
    return tenant("admin")


def keystone_session(endpoint: str, caller: Caller) -> session.Session:
    """What a user without Keystone builds: the ``none`` auth plugin on a fixed endpoint,
    the identity headers on every request."""
    auth = loading.get_plugin_loader("none").load_from_options(endpoint=endpoint)
    return session.Session(auth=auth, additional_headers=caller.headers())


def sdk(endpoint: str, caller: Caller) -> openstack.connection.Connection:
    """An openstacksdk connection configured as for a standalone service: ``auth_type``
    ``none`` with the endpoint in ``auth``, which openstacksdk takes as the endpoint of
    every service and discovers the API version from (``GET`` on it)."""
    return openstack.connection.Connection(
        session=keystone_session(endpoint, caller),
        auth_type="none",
        auth={"endpoint": endpoint},
    )


@pytest.fixture(scope="module")
def sdk_a(tank_v2: ApiServer, alice: Caller) -> openstack.connection.Connection:
    """Tenant A's openstacksdk, given the bare ``http://host:port`` (discovery: ``GET /``)."""
    return sdk(tank_v2.url, alice)


@pytest.fixture(scope="module")
def sdk_b(tank_v2: ApiServer, bob: Caller) -> openstack.connection.Connection:
    """Tenant B's openstacksdk, given ``http://host:port/v2``."""
    return sdk(tank_v2.url + "/v2", bob)


@pytest.fixture(scope="module")
def sdk_admin(tank_v2: ApiServer, admin: Caller) -> openstack.connection.Connection:
    return sdk(tank_v2.url, admin)


def glance(endpoint: str, caller: Caller) -> Any:
    """A python-glanceclient v2 over a keystoneauth session."""
    return glanceclient.Client("2", session=keystone_session(endpoint, caller))


@pytest.fixture(scope="module")
def glance_a(tank_v2: ApiServer, alice: Caller) -> Any:
    return glance(tank_v2.url, alice)


@pytest.fixture(scope="module")
def glance_b(tank_v2: ApiServer, bob: Caller) -> Any:
    return glance(tank_v2.url, bob)


@pytest.fixture(scope="module")
def glance_admin(tank_v2: ApiServer, admin: Caller) -> Any:
    """Not ``glanceclient.Client("2", endpoint=..., identity_headers=...)``: that client
    percent-encodes header values, so ``X-Roles: admin,member`` arrives as
    ``admin%2Cmember`` (Glance would not see an admin either)."""
    return glance(tank_v2.url, admin)


class Http:
    """Raw HTTP to the v2 API as one caller: what the tests check beside the clients."""

    def __init__(self, server: ApiServer, caller: Caller | None) -> None:
        self.url = server.url
        self.session = requests.Session()
        if caller is not None:
            self.session.headers.update(caller.headers())

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)

    def image(self, image_id: str) -> dict[str, Any]:
        resp = self("GET", f"/v2/images/{image_id}")
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return dict(resp.json())

    def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        resp = self("POST", "/v2/images", json=body)
        assert resp.status_code == 201, (resp.status_code, resp.text)
        return dict(resp.json())

    def wait(self, image_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Poll the image until ``done(image)``; fail with its last state after 30 s."""
        deadline = time.monotonic() + 30
        while True:
            image = self.image(image_id)
            if done(image):
                return image
            if time.monotonic() > deadline:
                pytest.fail(f"image {image_id} never got there: {image}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def http_a(tank_v2: ApiServer, alice: Caller) -> Http:
    return Http(tank_v2, alice)


@pytest.fixture(scope="module")
def http_b(tank_v2: ApiServer, bob: Caller) -> Http:
    return Http(tank_v2, bob)


@pytest.fixture(scope="module")
def http_admin(tank_v2: ApiServer, admin: Caller) -> Http:
    return Http(tank_v2, admin)


@pytest.fixture
def name() -> str:
    """A unique image name, so that a test finds only its own images."""
    return f"v2-{uuid.uuid4().hex[:12]}"


def stored_files(server: ApiServer, store: str) -> list[Path]:
    """The image files an fs store of ``start_tank`` holds."""
    root = server.data_dir.parent / store
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
