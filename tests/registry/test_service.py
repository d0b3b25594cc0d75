"""ImageService with its registry over HTTP and the filesystem store: images round-trip,
and an upload whose registry fails at the end leaves no data behind."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from tank import errors
from tank.config import load
from tank.model import Context, Image, ListQuery, Status
from tank.plugins import make_plugin_manager
from tank.registry import Registry
from tank.registry_http.client import HttpRegistry
from tank.registry_http.server import make_registry_app
from tank.service import ImageService

ADMIN = Context.admin()
META = {"name": "over-http", "disk_format": "raw", "container_format": "bare"}


def service_for(url: str, data_dir: Path, **registry: Any) -> ImageService:
    config = attrs.evolve(
        load(data_dir=data_dir, environ={}), registry={"url": url, "backoff": 0, **registry}
    )
    return ImageService.from_config(config, make_plugin_manager())


def stored_files(data_dir: Path) -> list[str]:
    """Every file of the fs store, temporary ones included."""
    images = data_dir / "images"
    return sorted(p.name for p in images.iterdir()) if images.exists() else []


def test_full_flow_over_a_remote_registry(registry_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(3 * (1 << 20) + 7)
    with service_for(registry_server.url, tmp_path) as service:
        assert isinstance(service.registry, HttpRegistry)
        image = service.create(
            {**META, "properties": {"run": tmp_path.name}}, data=io.BytesIO(data), context=ADMIN
        )
        assert image.status is Status.ACTIVE and image.size == len(data)
        assert image.checksum == hashlib.md5(data).hexdigest()
        assert (image.os_hash_algo, image.os_hash_value) == (
            "sha256",
            hashlib.sha256(data).hexdigest(),
        )
        _, stream = service.download(image.id, context=ADMIN)
        with stream:
            assert b"".join(stream) == data
        updated = service.update(image.id, {"min_ram": 512}, context=ADMIN)
        assert updated.min_ram == 512 and updated.checksum == image.checksum
        found = service.list(ListQuery(filters={"property-run": tmp_path.name}), context=ADMIN)
        assert [i.id for i in found] == [image.id]
        assert stored_files(tmp_path) == [image.id]
        queued = service.create(META, context=ADMIN)
        assert service.upload(queued.id, iter([b"abc"]), context=ADMIN).size == 3
        for done in (image, queued):
            assert service.delete(done.id, context=ADMIN).status is Status.DELETED
        assert stored_files(tmp_path) == []
        with pytest.raises(errors.NotFound):
            service.download(image.id, context=ADMIN)


def test_two_uploads_with_one_id_exactly_one_wins(registry_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tank.testing.registry_contract import run_concurrently

    image_id = str(uuid.uuid4())
    with service_for(registry_server.url, tmp_path) as service:
        results = run_concurrently(
            2,
            lambda i: service.create(
                {**META, "id": image_id}, data=iter([b"racer%d" % i]), context=ADMIN
            ),
        )
        winners = [r for r in results if isinstance(r, Image)]
        assert len(winners) == 1, results
        assert [type(r) for r in results if r is not winners[0]] == [errors.Duplicate]
        _, stream = service.download(image_id, context=ADMIN)
        with stream:
            assert b"".join(stream) == b"racer%d" % results.index(winners[0])
        assert stored_files(tmp_path) == [image_id]


def test_registry_killed_during_an_upload(
    start_registry: Callable[..., Any], tmp_path: Path
) -> None:
    """The data was stored, but the registry cannot record it: the data is deleted."""
    process = start_registry()
    with service_for(process.url, tmp_path / "api") as service:

        def data() -> Iterator[bytes]:
            yield b"x" * (1 << 20)
            process.stop(kill=True)
            yield b"y" * (1 << 20)

        with pytest.raises(errors.StoreUnavailable, match=f"registry at {process.url}"):
            service.create(META, data=data(), context=ADMIN)
    assert stored_files(tmp_path / "api") == []


class FailingFinalUpdate(Registry):
    """A registry that cannot activate images (its database went away at that moment),
    served by make_registry_app like any other."""

    kind = "failing"

    def __init__(self, inner: Registry) -> None:
        self.inner = inner

    def update(self, image_id: str, changes: Mapping[str, Any], **kw: Any) -> Image:
        if changes.get("status") == Status.ACTIVE:
            raise errors.StoreUnavailable("the database went away")
        return self.inner.update(image_id, changes, **kw)

    def create(self, image: Image) -> Image:
        return self.inner.create(image)

    def get(self, image_id: str, **kw: Any) -> Image:
        return self.inner.get(image_id, **kw)

    def delete(self, image_id: str, **kw: Any) -> Image:
        return self.inner.delete(image_id, **kw)

    def list(self, query: ListQuery, **kw: Any) -> Any:
        return self.inner.list(query, **kw)

    def list_members(self, image_id: str, **kw: Any) -> Any:
        return self.inner.list_members(image_id, **kw)

    def set_member_status(self, image_id: str, member: str, status: Any, **kw: Any) -> Any:
        return self.inner.set_member_status(image_id, member, status, **kw)

    def add_member(self, image_id: str, member: str, **kw: Any) -> Any:
        return self.inner.add_member(image_id, member, **kw)

    def remove_member(self, image_id: str, member: str, **kw: Any) -> None:
        self.inner.remove_member(image_id, member, **kw)

    def replace_members(self, image_id: str, members: Any, **kw: Any) -> Any:
        return self.inner.replace_members(image_id, members, **kw)

    def shared_with(self, member: str, **kw: Any) -> Any:
        return self.inner.shared_with(member, **kw)


def test_upload_whose_final_registry_update_fails_is_killed_and_its_data_deleted(
    local_registry: Registry, serve: Callable[[Any], str], tmp_path: Path
) -> None:
    url = serve(make_registry_app(FailingFinalUpdate(local_registry)))
    with service_for(url, tmp_path) as service:
        with pytest.raises(errors.StoreUnavailable) as caught:
            service.create(META, data=io.BytesIO(b"z" * 100_000), context=ADMIN)
        assert str(caught.value) == f"registry at {url}: the database went away"
        (image,) = local_registry.list(ListQuery(), context=ADMIN)
        assert image.status is Status.KILLED and image.location is None
        assert service.get(image.id, context=ADMIN).status is Status.KILLED
    assert stored_files(tmp_path) == []
