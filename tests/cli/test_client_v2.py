"""What only the v2 client does, against a real tank-api: tags, visibility, member status,
deactivation, staging and the three import methods, discovery; and what v1 and v2 show
of the same image."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tank import errors
from tank.client import Client, ImportFailed, Unsupported
from tank.model import MemberStatus, Status, Visibility

from .conftest import ApiServer

FORMATS: dict[str, Any] = {"disk_format": "raw", "container_format": "bare"}


def identity(tenant: str, *roles: str) -> dict[str, str]:
    """The headers a trusted front proxy sets (tank-api --auth)."""
    return {
        "X-Identity-Status": "Confirmed",
        "X-Tenant-Id": tenant,
        "X-Roles": ",".join(roles or ("member",)),
    }


def import_config(tmp_path: Path, **extra: str) -> Path:
    """Two file stores (``fast`` the default, ``slow``) and every import method."""
    path = tmp_path / "tank.toml"
    lines = [
        'default_store = "fast"',
        "[stores.fast]",
        'type = "file"',
        f'datadir = "{tmp_path / "fast"}"',
        "[stores.slow]",
        'type = "file"',
        f'datadir = "{tmp_path / "slow"}"',
        "[import]",
        'methods = ["glance-direct", "web-download", "copy-image"]',
        *(f"{key} = {value}" for key, value in extra.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def v2(api: ApiServer) -> Iterator[Client]:
    with Client(api.url, api="v2") as client:
        yield client


def test_tags_visibility_and_hidden_images(v2: Client, tag: str) -> None:
    image = v2.create(
        name="tagged",
        tags=["b", tag, "a"],
        visibility="private",
        os_hidden=True,
        properties={"batch": tag},
    )
    assert image.tags == tuple(sorted(["a", "b", tag]))
    assert (image.visibility, image.os_hidden) == (Visibility.PRIVATE, True)
    v2.add_tag(image.id, "c")
    v2.remove_tag(image.id, "a")
    assert v2.get(image.id).tags == tuple(sorted(["b", "c", tag]))
    with pytest.raises(errors.NotFound):
        v2.remove_tag(image.id, "a")
    # hidden images are listed only when asked for
    assert [i.id for i in v2.list(filters={"tags": [tag]})] == []
    found = v2.list(filters={"tags": [tag, "c"], "os_hidden": True})
    assert [i.id for i in found] == [image.id]
    assert v2.list(filters={"tags": [tag, "a"], "os_hidden": True}) == []
    updated = v2.update(image.id, tags=["only"], os_hidden=False, visibility="shared")
    assert (updated.tags, updated.os_hidden, updated.visibility) == (
        ("only",),
        False,
        Visibility.SHARED,
    )


def test_v1_and_v2_show_the_same_image(api: ApiServer) -> None:
    data = os.urandom(20_000)
    with Client(api.url, api="v1") as v1, Client(api.url, api="v2") as v2:
        old = v1.create(io.BytesIO(data), name="from-v1", properties={"os": "linux"}, **FORMATS)
        seen = v2.get(old.id)
        assert seen.visibility is Visibility.SHARED  # v1's is_public=false
        assert (seen.size, seen.checksum, seen.os_hash_algo, seen.os_hash_value) == (
            len(data),
            hashlib.md5(data).hexdigest(),
            "sha256",
            hashlib.sha256(data).hexdigest(),
        )
        assert seen.properties == {"os": "linux"}
        assert v2.download(old.id).read_all() == data

        public = v2.create(io.BytesIO(data), name="from-v2", visibility="public", **FORMATS)
        assert v1.get(public.id).is_public
        assert v1.get(public.id).checksum == public.checksum
        assert v1.download(public.id).read_all() == data
        private = v2.create(name="private", visibility="private")
        assert not v1.get(private.id).is_public


def test_listing_in_lists_sort_keys_and_comparisons(v2: Client, tag: str) -> None:
    made = [
        v2.create(
            io.BytesIO(b"x" * (i % 2 + 1)), name=f"in-{i}", properties={"batch": tag}, **FORMATS
        )
        for i in range(4)
    ]
    mine = {"property-batch": tag}
    names = v2.list(filters={**mine, "name": ("in-1", "in-3")}, sort=[("name", "asc")])
    assert [i.name for i in names] == ["in-1", "in-3"]
    by_size_then_name = v2.list(filters=mine, sort=[("size", "desc"), ("name", "asc")])
    assert [i.name for i in by_size_then_name] == ["in-1", "in-3", "in-0", "in-2"]
    first = made[0].created_at.isoformat()
    assert len(v2.list(filters={**mine, "created_at": f"gte:{first}"})) == 4
    assert v2.list(filters={**mine, "created_at": f"lt:{first}"}) == []
    paged = list(v2.iter_images(filters=mine, sort=[("name", "asc")], page_size=1))
    assert [i.name for i in paged] == ["in-0", "in-1", "in-2", "in-3"]
    with pytest.raises(errors.Invalid):
        v2.list(filters={"size": "3"})


def test_upload_with_a_wrong_checksum_stores_nothing(v2: Client) -> None:
    """The body breaks off before its last byte: the server, once it sees that, puts the
    image back to queued without data, and the right data can be uploaded."""
    image = v2.create(name="checked", **FORMATS)
    with pytest.raises(errors.ChecksumMismatch):
        v2.upload(image.id, io.BytesIO(b"payload"), checksum=hashlib.md5(b"other").hexdigest())
    deadline = time.monotonic() + 60
    while True:
        try:
            done = v2.upload(
                image.id, io.BytesIO(b"payload"), checksum=hashlib.md5(b"payload").hexdigest()
            )
            break
        except errors.Conflict as exc:
            # the server may not have seen the broken body yet: never anything but saving
            assert "saving" in str(exc)
            assert time.monotonic() < deadline, "the image stayed in saving"
            time.sleep(0.05)
    assert (done.status, done.size) == (Status.ACTIVE, 7)
    assert v2.download(image.id).read_all() == b"payload"


def test_a_failed_upload_leaves_no_image_even_a_protected_one(v2: Client, tag: str) -> None:
    for protected in (False, True):
        with pytest.raises(errors.ChecksumMismatch):
            v2.create(
                io.BytesIO(b"payload"),
                checksum="0" * 32,
                protected=protected,
                properties={"batch": tag},
                **FORMATS,
            )
    left = v2.list(filters={"property-batch": tag, "visibility": "all"})
    assert left == []


def test_member_answers_decide_what_the_member_lists(
    start_api: Callable[..., ApiServer],
) -> None:
    server = start_api("--auth")
    with (
        Client(server.url, headers=identity("bob")) as bob,
        Client(server.url, headers=identity("alice")) as alice,
    ):
        image = bob.create(name="for-alice", visibility="shared")
        added = bob.add_member(image.id, "alice")
        assert added is not None and added.status is MemberStatus.PENDING
        assert image.id not in {i.id for i in alice.list()}  # v2: accepted ones only
        assert alice.get(image.id).id == image.id  # but visible to a member
        with pytest.raises(errors.Forbidden):
            bob.set_member_status(image.id, "alice", "accepted")
        assert alice.set_member_status(image.id, "alice", "accepted").status is (
            MemberStatus.ACCEPTED
        )
        assert image.id in {i.id for i in alice.list()}
        assert alice.member(image.id, "alice").status is MemberStatus.ACCEPTED
        alice.set_member_status(image.id, "alice", "rejected")
        assert image.id not in {i.id for i in alice.list()}
        rejected = alice.list(filters={"member_status": "rejected"})
        assert [i.id for i in rejected] == [image.id]
        assert [(m.member, m.status) for m in bob.members(image.id)] == [
            ("alice", MemberStatus.REJECTED)
        ]
        with pytest.raises(errors.Invalid):
            alice.set_member_status(image.id, "alice", "maybe")
        private = bob.create(name="not-shared", visibility="private")
        with pytest.raises(errors.Forbidden):
            bob.add_member(private.id, "alice")  # only shared images take members (Glance: 403)


def test_deactivated_data_is_refused_to_non_admins(start_api: Callable[..., ApiServer]) -> None:
    server = start_api("--auth")
    data = os.urandom(10_000)
    with (
        Client(server.url, headers=identity("bob")) as bob,
        Client(server.url, headers=identity("ops", "admin")) as admin,
    ):
        image = bob.create(io.BytesIO(data), name="to-deactivate", **FORMATS)
        admin.deactivate(image.id)
        assert bob.get(image.id).status is Status.DEACTIVATED
        with pytest.raises(errors.Forbidden):
            bob.download(image.id).read_all()
        assert admin.download(image.id).read_all() == data
        admin.reactivate(image.id)
        assert bob.get(image.id).status is Status.ACTIVE
        assert bob.download(image.id).read_all() == data


def test_stage_then_glance_direct_import(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    server = start_api("--config", str(import_config(tmp_path)))
    data = os.urandom(3 * (1 << 20) + 11)
    with Client(server.url) as v2:
        assert set(v2.import_methods()) == {"glance-direct", "web-download", "copy-image"}
        image = v2.create(name="staged", **FORMATS)
        staged = v2.stage(image.id, io.BytesIO(data))
        assert staged.status is Status.UPLOADING
        with pytest.raises(errors.NotFound):
            v2.download(image.id)  # staged data is not the image's yet
        v2.import_image(image.id, "glance-direct")
        done = v2.wait_for_import(image.id, timeout=120)
        assert done.status is Status.ACTIVE
        assert (done.size, done.checksum) == (len(data), hashlib.md5(data).hexdigest())
        assert done.os_hash_value == hashlib.sha256(data).hexdigest()
        assert v2.image_stores(image.id) == ("fast",)
        assert v2.download(image.id).read_all() == data
        with pytest.raises(errors.Conflict):
            v2.import_image(image.id, "glance-direct")  # nothing staged any more


class Serving(ThreadingHTTPServer):
    daemon_threads = True
    data = b""


class DataHandler(BaseHTTPRequestHandler):
    server: Serving

    def do_GET(self) -> None:
        if self.path == "/missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.data)))
        self.end_headers()
        self.wfile.write(self.server.data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[Serving]:
    server = Serving(("127.0.0.1", 0), DataHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_web_download_import(
    start_api: Callable[..., ApiServer], tmp_path: Path, web: Serving
) -> None:
    web.data = os.urandom(500_000)
    uri = f"http://127.0.0.1:{web.server_address[1]}/disk.img"
    config = import_config(tmp_path, allow_private_networks="true")
    server = start_api("--config", str(config))
    with Client(server.url) as v2:
        image = v2.create(name="fetched", **FORMATS)
        v2.import_image(image.id, "web-download", uri=uri)
        done = v2.wait_for_import(image.id, timeout=120)
        assert (done.status, done.checksum) == (Status.ACTIVE, hashlib.md5(web.data).hexdigest())
        assert v2.download(image.id).read_all() == web.data
        with pytest.raises(errors.ValidationError):
            v2.import_image(image.id, "web-download")  # no uri: refused before sending
        failing = v2.create(name="not-there", **FORMATS)
        v2.import_image(failing.id, "web-download", uri=uri.replace("/disk.img", "/missing"))
        with pytest.raises(ImportFailed) as info:
            v2.wait_for_import(failing.id, timeout=120)
        assert info.value.image_id == failing.id
        assert v2.get(failing.id).status is Status.QUEUED  # as before: it can be tried again
        with pytest.raises(errors.NotFound):
            v2.download(failing.id)


def test_web_download_from_loopback_is_refused_by_default(
    start_api: Callable[..., ApiServer], tmp_path: Path, web: Serving
) -> None:
    web.data = b"secret from the loopback"
    uri = f"http://127.0.0.1:{web.server_address[1]}/metadata"
    server = start_api("--config", str(import_config(tmp_path)))
    with Client(server.url) as v2:
        image = v2.create(name="ssrf", **FORMATS)
        try:
            v2.import_image(image.id, "web-download", uri=uri)
        except errors.Invalid:
            pass  # refused at once
        else:
            with pytest.raises(errors.TankError):
                v2.wait_for_import(image.id, timeout=120)
        assert v2.get(image.id).status is not Status.ACTIVE
        with pytest.raises(errors.NotFound):
            v2.download(image.id)


def test_copy_image_into_a_second_store(
    start_api: Callable[..., ApiServer], tmp_path: Path
) -> None:
    server = start_api("--config", str(import_config(tmp_path)))
    data = os.urandom(200_000)
    with Client(server.url) as v2:
        stores = {s.id: s for s in v2.stores_info()}
        assert set(stores) == {"fast", "slow"}
        assert stores["fast"].default and not stores["slow"].default
        image = v2.create(io.BytesIO(data), name="copied", **FORMATS)
        assert v2.image_stores(image.id) == ("fast",)
        v2.copy_image(image.id, ["slow"])
        v2.wait_for_import(image.id, stores=["slow"], timeout=120)
        assert v2.image_stores(image.id) == ("fast", "slow")
        assert (tmp_path / "slow").exists() and any((tmp_path / "slow").rglob("*"))
        assert v2.download(image.id).read_all() == data
        with pytest.raises(errors.Conflict):
            v2.copy_image(image.id, ["no-such-store"])  # Glance's api-ref: 409
        v2.remove_from_store(image.id, "fast")
        assert v2.image_stores(image.id) == ("slow",)
        assert v2.download(image.id).read_all() == data  # from the copy left
        with pytest.raises(errors.Forbidden):
            v2.remove_from_store(image.id, "slow")  # never the only copy (Glance: 403)
        with pytest.raises(errors.NotFound):
            v2.remove_from_store(image.id, "fast")  # no copy there any more


def test_a_service_hands_over_data_already_in_a_store(api: ApiServer, v2: Client) -> None:
    """``create(location=...)`` on v2 is the locations API: Tank reads the data back
    (the image is importing meanwhile) and activates it only if the checksum matches."""
    data = os.urandom(30_000)
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    for image_id in (good, bad):
        (api.data_dir / "images" / image_id).write_bytes(data)
    md5 = hashlib.md5(data).hexdigest()
    path = api.data_dir / "images"
    v2.create(id=good, location=f"file://{path / good}", checksum=md5, **FORMATS)
    done = v2.wait_for_import(good, timeout=120)
    assert (done.status, done.size, done.checksum) == (Status.ACTIVE, len(data), md5)
    assert v2.download(good).read_all() == data
    v2.create(id=bad, location=f"file://{path / bad}", checksum="0" * 32, **FORMATS)
    with pytest.raises(ImportFailed):
        v2.wait_for_import(bad, timeout=120)
    assert v2.get(bad).status is Status.QUEUED


def test_calls_of_the_other_version_send_nothing(dead_url: str) -> None:
    image_id = str(uuid.uuid4())
    with Client(dead_url, api="v1") as v1:
        for call in (
            lambda: v1.add_tag(image_id, "x"),
            lambda: v1.deactivate(image_id),
            lambda: v1.stage(image_id, io.BytesIO(b"x")),
            lambda: v1.import_image(image_id, "glance-direct"),
            lambda: v1.set_member_status(image_id, "m", "accepted"),
            lambda: v1.stores_info(),
        ):
            with pytest.raises(Unsupported, match="v2"):
                call()
        with pytest.raises(errors.ValidationError, match="v2"):
            v1.create(name="x", tags=["a"])
    with Client(dead_url) as v2:
        with pytest.raises(Unsupported, match="v1"):
            v2.shared_images("m")
        with pytest.raises(Unsupported):
            v2.add_member(image_id, "m", can_share=True)
