"""Fixtures for the RBD store tests, against the one-node Ceph of ``ceph.sh``.

``eval "$(bash ../shared/services/ceph.sh env)"`` sets ``CEPH_CONF`` and
``TANK_TEST_RBD_POOL``; ``ceph.sh python-link VENV`` makes ``rados``/``rbd`` importable.
Without the variables the integration tests skip. The checks below inspect the pool
through their own ``rados`` connection, not through the store under test.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest


def _import_installed_package() -> None:
    """Let ``tank_store_rbd`` be the installed package, not this distribution's folder.

    Under ``--import-mode=importlib`` pytest imports this file as
    ``tank_store_rbd.tests.conftest`` and first registers the folder ``tank_store_rbd/``
    as a namespace package of that name, which hides ``src/tank_store_rbd``.
    """
    import importlib
    import sys

    placeholder = sys.modules.get("tank_store_rbd")
    if placeholder is not None and getattr(placeholder, "__file__", None) is None:
        del sys.modules["tank_store_rbd"]
        importlib.import_module("tank_store_rbd")


_import_installed_package()

from tank.testing import require_env  # noqa: E402
from tank_store_rbd import RBDBackend  # noqa: E402

MiB = 1 << 20


class RecordingRBDBackend(RBDBackend):
    """The store, remembering every image name it was asked to create (for cleanup)."""

    def __init__(self, config: RBDBackend.Config, *, name: str | None = None) -> None:
        super().__init__(config, name=name)
        self.created: set[str] = set()

    def open_writer(self, image_id: str, size: int | None):  # type: ignore[no-untyped-def]
        self.created.add(image_id)  # before creating: a leftover partial image is seen too
        return super().open_writer(image_id, size)


@attrs.define
class Ceph:
    """An independent view of the test pool."""

    rados: Any
    rbd: Any
    ioctx: Any
    fsid: str
    pool: str
    conf: str

    def images(self) -> set[str]:
        return set(self.rbd.RBD().list(self.ioctx))

    def image(self, name: str, **kwargs: Any) -> Any:
        return self.rbd.Image(self.ioctx, name, **kwargs)

    def purge(self, name: str) -> None:
        """Remove ``name`` with its snapshots, whatever state a test left it in."""
        with contextlib.suppress(self.rbd.ImageNotFound):
            with self.image(name) as image:
                for snap in list(image.list_snaps()):
                    if image.is_protected_snap(snap["name"]):
                        image.unprotect_snap(snap["name"])
                    image.remove_snap(snap["name"])
            self.rbd.RBD().remove(self.ioctx, name)


@pytest.fixture(scope="session")
def ceph() -> Iterator[Ceph]:
    env = require_env("CEPH_CONF", "TANK_TEST_RBD_POOL")
    import rados
    import rbd

    cluster = rados.Rados(conffile=env["CEPH_CONF"], rados_id="admin")
    cluster.conf_set("client_mount_timeout", "10")
    cluster.connect()
    ioctx = cluster.open_ioctx(env["TANK_TEST_RBD_POOL"])
    try:
        yield Ceph(
            rados=rados,
            rbd=rbd,
            ioctx=ioctx,
            fsid=cluster.get_fsid(),
            pool=env["TANK_TEST_RBD_POOL"],
            conf=env["CEPH_CONF"],
        )
    finally:
        ioctx.close()
        cluster.shutdown()


@pytest.fixture(scope="session")
def leftovers(ceph: Ceph) -> Iterator[set[str]]:
    """Names of images tests made; removed together when the session ends, because
    removing a snapshot waits for a new OSD map (about a second here)."""
    names: set[str] = set()
    yield names
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(ceph.purge, names))


@pytest.fixture
def make_backend(ceph: Ceph, leftovers: set[str]) -> Iterator[Any]:
    """Build stores on the test pool; their images are removed at the end of the session."""
    made: list[RecordingRBDBackend] = []

    def make(**overrides: Any) -> RecordingRBDBackend:
        settings: dict[str, Any] = {"pool": ceph.pool, "ceph_conf": ceph.conf}
        settings.update(overrides)
        backend = RecordingRBDBackend(RBDBackend.Config(**settings), name="rbd-test")
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()
        leftovers |= backend.created


@pytest.fixture
def backend(make_backend: Any) -> RecordingRBDBackend:
    return make_backend()  # type: ignore[no-any-return]


def new_name() -> str:
    return f"tank-test-{uuid.uuid4()}"
