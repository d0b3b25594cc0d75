"""Fixtures: a chase store on a fresh container of each real server (Swift, Ceph RGW).

Servers come from ``tests/servers/swift.sh env`` (TANK_TEST_SWIFT_*) and
``tests/servers/ceph.sh env`` (TANK_TEST_RGW_SWIFT_*); tests skip, naming the missing
variables, when a server is not configured.
"""

from __future__ import annotations

import concurrent.futures
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from tank.testing import require_env
from tank_store_chase import ChaseBackend

KiB = 1 << 10
MiB = 1 << 20

SERVERS = {
    "swift": ("TANK_TEST_SWIFT_AUTH", "TANK_TEST_SWIFT_USER", "TANK_TEST_SWIFT_KEY"),
    "rgw": ("TANK_TEST_RGW_SWIFT_AUTH", "TANK_TEST_RGW_SWIFT_USER", "TANK_TEST_RGW_SWIFT_KEY"),
}


@attrs.frozen
class Server:
    name: str
    auth: str
    user: str
    key: str

    def connection(self) -> Any:
        """A plain swiftclient connection, to look at the server behind the store's back."""
        from swiftclient.client import Connection

        return Connection(self.auth, self.user, self.key, retries=1, starting_backoff=0.2)


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Server:
    env = require_env(*SERVERS[request.param])
    return Server(request.param, *env.values())


def objects(conn: Any, container: str) -> set[str]:
    """Names in ``container`` (empty if it does not exist)."""
    from swiftclient.client import ClientException

    try:
        _, listing = conn.get_container(container, full_listing=True)
    except ClientException as exc:
        if exc.http_status == 404:
            return set()
        raise
    return {o["name"] for o in listing}


def wipe(server: Server, prefix: str) -> None:
    """Delete every container whose name starts with ``prefix``, with its objects."""
    from swiftclient.client import ClientException

    local = threading.local()

    def delete(container: str, obj: str) -> None:
        if not hasattr(local, "conn"):
            local.conn = server.connection()
        try:
            local.conn.delete_object(container, obj)
        except ClientException as exc:
            if exc.http_status != 404:
                raise

    conn = server.connection()
    _, containers = conn.get_account(prefix=prefix, full_listing=True)
    for container in containers:
        name = container["name"]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda obj, name=name: delete(name, obj), objects(conn, name)))
        conn.delete_container(name)


MakeBackend = Callable[..., ChaseBackend]


@pytest.fixture
def make_backend(server: Server) -> Iterator[MakeBackend]:
    """``make_backend(**config)``: a store on a container no other test uses."""
    prefix = f"tank-test-{uuid.uuid4().hex[:10]}"
    made: list[ChaseBackend] = []

    def make(**overrides: Any) -> ChaseBackend:
        settings: dict[str, Any] = {
            "auth_address": server.auth,
            "user": server.user,
            "key": server.key,
            "container": prefix,
            "large_object_size": MiB,
            "large_object_chunk_size": MiB,
            "retries": 1,
        }
        settings.update(overrides)
        backend = ChaseBackend(ChaseBackend.Config(**settings), name="chase")
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
    wipe(server, prefix)


@pytest.fixture
def backend(make_backend: MakeBackend) -> ChaseBackend:
    return make_backend()


class View:
    """Looks at the server directly, bypassing the store under test."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn = server.connection()

    def objects(self, container: str) -> set[str]:
        return objects(self.conn, container)

    def stored(self, backend: ChaseBackend) -> set[str]:
        """Every object of the store's container and of its segments container."""
        container = backend.config.container
        return {f"{container}/{o}" for o in self.objects(container)} | {
            f"{container}_segments/{o}" for o in self.objects(container + "_segments")
        }


@pytest.fixture
def view(server: Server) -> View:
    return View(server)
