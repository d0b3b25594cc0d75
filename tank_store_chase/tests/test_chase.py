"""Chase-specific behaviour on real servers (Swift and Ceph RGW), plus offline checks.

Sizes are small (segments of 100 KiB) so several segments stay fast.
"""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tank import errors
from tank.config import build
from tank.errors import ConfigError
from tank.testing import generated_stream, irregular_chunks, pattern, read_all, require_env
from tank_store_chase import ChaseBackend
from tank_store_chase.location import SwiftLocation

KiB = 1 << 10
MiB = 1 << 20
SMALL = {"large_object_size": 256 * KiB, "large_object_chunk_size": 100 * KiB}


def new_id() -> str:
    return str(uuid.uuid4())


def head(view: Any, location: str) -> dict[str, str]:
    loc = SwiftLocation.parse(location)
    return view.conn.head_object(loc.container, loc.obj)


def invalidate_tokens(backend: ChaseBackend) -> int:
    """Make every token the store holds unusable, as if they had all expired."""
    conns = list(backend._swift.pool._all)
    for conn in conns:
        conn.token = "expired-token"
    return len(conns)


# --- large objects ----------------------------------------------------------------------


def test_segmented_known_size(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    data = pattern(MiB + 17, seed=1)
    stored = backend.add(new_id(), io.BytesIO(data), size=len(data))
    container = backend.config.container
    segments = view.objects(container + "_segments")
    assert len(segments) == 11  # ceil((1 MiB + 17) / 100 KiB)
    assert head(view, stored.location)["x-static-large-object"].lower() == "true"
    assert backend.get_size(stored.location) == len(data)
    assert read_all(backend, stored.location) == data
    boundary = 100 * KiB
    assert read_all(backend, stored.location, boundary - 3, 7) == data[boundary - 3 : boundary + 4]
    assert read_all(backend, stored.location, len(data) - 5) == data[-5:]
    backend.delete(stored.location)
    assert view.stored(backend) == set()


def test_unknown_length_is_segmented(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    data = pattern(700 * KiB + 3, seed=2)
    stored = backend.add(new_id(), irregular_chunks(data, (1, 65536, 150 * KiB, 7)))
    assert stored.checksums.md5 == hashlib.md5(data).hexdigest()
    assert len(view.objects(backend.config.container + "_segments")) == 8
    assert backend.get_size(stored.location) == len(data)
    assert read_all(backend, stored.location) == data
    backend.delete(stored.location)
    assert view.stored(backend) == set()


def test_small_unknown_length_is_one_object(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    data = pattern(50 * KiB, seed=3)
    stored = backend.add(new_id(), iter([data[:10], data[10:]]))
    assert view.stored(backend) == {f"{backend.config.container}/{stored.location.rsplit('/')[-1]}"}
    assert read_all(backend, stored.location) == data


@pytest.mark.parametrize("server_md5", [True, False])
def test_single_put_md5_comes_from_swift(make_backend, view, monkeypatch, server_md5) -> None:  # type: ignore[no-untyped-def]
    """One PUT: the MD5 is Swift's ETag, and Tank hashes only the multihash (unless told
    not to trust the server); segments and announced checksums get Tank's own MD5."""
    import tank.store

    computed: list[bool] = []

    class Spy(tank.store.StreamHasher):
        def __init__(self, **kwargs: Any) -> None:
            computed.append(kwargs.get("md5", True))
            super().__init__(**kwargs)

    monkeypatch.setattr(tank.store, "StreamHasher", Spy)
    backend = make_backend(**SMALL, server_md5=server_md5)
    data = pattern(200 * KiB + 1, seed=9)
    md5, sha = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    stored = backend.add(new_id(), irregular_chunks(data), size=len(data))
    assert (stored.checksums.md5, stored.checksums.hash_value) == (md5, sha)
    assert head(view, stored.location)["etag"].strip('"') == md5
    assert read_all(backend, stored.location) == data
    announced = backend.add(new_id(), iter([data]), size=len(data), checksum=md5)
    segmented = backend.add(new_id(), iter([data * 2]), size=2 * len(data))
    unknown = backend.add(new_id(), iter([data]))
    assert announced.checksums.md5 == md5 and unknown.checksums.md5 == md5
    assert segmented.checksums.md5 == hashlib.md5(data * 2).hexdigest()
    assert computed == [not server_md5, True, True, True]
    other = backend.add(new_id(), iter([data]), size=len(data), hash_algo="sha512")
    assert computed[-1] == (not server_md5)  # the multihash does not change who does MD5
    assert (other.checksums.md5, other.checksums.hash_algo) == (md5, "sha512")
    assert other.checksums.hash_value == hashlib.sha512(data).hexdigest()


def test_forced_dlo(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(large_object_manifest="dlo", **SMALL)
    data = pattern(450 * KiB, seed=4)
    stored = backend.add(new_id(), iter([data]), size=len(data))
    headers = head(view, stored.location)
    assert "x-static-large-object" not in headers
    assert headers["x-object-manifest"].startswith(backend.config.container + "_segments/")
    assert backend.get_size(stored.location) == len(data)
    assert read_all(backend, stored.location, 99 * KiB, 3 * KiB) == data[99 * KiB : 102 * KiB]
    backend.delete(stored.location)
    assert view.stored(backend) == set()


def test_too_many_segments_for_slo_falls_back_to_dlo(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    from tank_store_chase.connections import ClusterInfo

    backend = make_backend(**SMALL)
    backend._swift._info = ClusterInfo(slo=True, max_manifest_segments=3)
    data = pattern(450 * KiB, seed=10)
    stored = backend.add(new_id(), iter([data]))  # 5 segments of unknown total
    assert "x-object-manifest" in head(view, stored.location)
    assert read_all(backend, stored.location) == data


def test_quota_is_storage_full(make_backend, view, server) -> None:  # type: ignore[no-untyped-def]
    if server.name != "swift":
        pytest.skip("container quotas are Swift middleware")
    backend = make_backend(**SMALL)
    view.conn.put_container(backend.config.container, {"X-Container-Meta-Quota-Bytes": "1000"})
    with pytest.raises(errors.StorageFull):
        backend.add(new_id(), iter([b"q" * 5000]), size=5000)
    assert view.stored(backend) == set()


def test_user_without_access_disables_writes(make_backend, server) -> None:  # type: ignore[no-untyped-def]
    if server.name != "swift":
        pytest.skip("the Swift test server has a user without access")
    env = require_env("TANK_TEST_SWIFT_NONADMIN_USER", "TANK_TEST_SWIFT_NONADMIN_KEY")
    backend = make_backend(
        user=env["TANK_TEST_SWIFT_NONADMIN_USER"],
        key=env["TANK_TEST_SWIFT_NONADMIN_KEY"],
    )
    with pytest.raises(errors.BadStoreConfig, match="ACL"):
        backend.check_writable()


@pytest.mark.parametrize(
    "config,known",
    [
        ({"large_object_size": 64 * MiB}, True),  # one streamed PUT
        ({"large_object_size": MiB, "large_object_chunk_size": 24 * MiB}, False),  # 2 segments
    ],
    ids=["single-put", "segments"],
)
def test_memory_does_not_grow_with_object_or_segment_size(make_backend, config, known) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**config)
    size = 48 * MiB
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        stored = backend.add(new_id(), generated_stream(size), size=size if known else None)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # Pipes of 2 MiB per PUT (two PUTs in flight) plus the core's hashing queues.
    assert peak < 16 * MiB, f"a 48 MiB upload held {peak} bytes"
    assert backend.get_size(stored.location) == size


# --- nothing left behind -------------------------------------------------------------


class Boom(Exception):
    pass


def failing(data: bytes, fail_after: int) -> Iterator[bytes]:
    yield data[:fail_after]
    raise Boom("client went away")


@pytest.mark.parametrize("size_known", [True, False])
def test_failed_segmented_upload_leaves_nothing(make_backend, view, size_known) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    data = pattern(MiB, seed=5)
    with pytest.raises(Boom):
        backend.add(new_id(), failing(data, 450 * KiB), size=len(data) if size_known else None)
    assert view.stored(backend) == set()


def test_checksum_mismatch_leaves_nothing(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    for size in (200 * KiB, 600 * KiB):  # one held-back PUT; segments + no manifest
        data = pattern(size, seed=6)
        with pytest.raises(errors.ChecksumMismatch):
            backend.add(new_id(), iter([data]), size=size, checksum="0" * 32)
    assert view.stored(backend) == set()


def test_short_single_put_leaves_nothing(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    with pytest.raises(errors.SizeMismatch):
        backend.add(new_id(), iter([b"x" * 1000]), size=2000)
    assert view.stored(backend) == set()


def test_writer_abort_removes_segments(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    writer = backend.open_writer(new_id(), None)
    for _ in range(5):
        writer.write(b"s" * (64 * KiB))
    writer.abort()
    assert view.stored(backend) == set()


def test_concurrent_duplicate_commit(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    image_id = new_id()
    first, second = backend.open_writer(image_id, 400 * KiB), backend.open_writer(image_id, 10)
    first.write(b"1" * (400 * KiB))
    second.write(b"2" * 10)
    location = first.commit()
    with pytest.raises(errors.Duplicate):
        second.commit()
    second.abort()
    assert read_all(backend, location) == b"1" * (400 * KiB)
    assert len(view.objects(backend.config.container + "_segments")) == 4


# --- tokens and credentials ----------------------------------------------------------


def test_expired_token_between_operations(make_backend) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    data = pattern(300 * KiB, seed=7)
    location = backend.add(new_id(), iter([data]), size=len(data)).location
    for operation in (
        lambda: backend.get_size(location),
        lambda: read_all(backend, location, 5, 10),
        lambda: backend.add(new_id(), iter([b"tiny"])),
    ):
        assert invalidate_tokens(backend) >= 1
        operation()
    assert read_all(backend, location) == data
    invalidate_tokens(backend)
    backend.delete(location)


def test_expired_token_before_a_streamed_put(make_backend) -> None:  # type: ignore[no-untyped-def]
    """The PUT body cannot be replayed: the store re-authenticates before sending it."""
    backend = make_backend(**SMALL)
    writer = backend.open_writer(new_id(), 200 * KiB)
    invalidate_tokens(backend)  # the PUT will run on the connection open_writer used
    writer.write(b"a" * (100 * KiB))
    writer.write(b"b" * (100 * KiB))
    location = writer.commit()
    assert read_all(backend, location) == b"a" * (100 * KiB) + b"b" * (100 * KiB)


def wait_until_idle(backend: ChaseBackend) -> None:
    """Wait until no segment PUT holds a connection."""
    pool = backend._swift.pool
    deadline = time.monotonic() + 10
    while len(pool._idle) != len(pool._all):
        assert time.monotonic() < deadline, "segment PUTs did not finish"
        time.sleep(0.01)


def test_abandoned_reads_give_their_connection_back(make_backend) -> None:  # type: ignore[no-untyped-def]
    """Downloads read ahead in a thread; one closed after its first chunk (a client that
    went away) still releases its connection, and the store keeps serving."""
    backend = make_backend()
    data = pattern(9 * MiB + 5, seed=11)
    location = backend.add(new_id(), iter([data]), size=len(data)).location
    first = backend.read_chunk_size
    for _ in range(5):
        with backend.get(location) as result:
            assert next(iter(result)) == data[:first]
    wait_until_idle(backend)
    assert read_all(backend, location, MiB, 10) == data[MiB : MiB + 10]
    assert read_all(backend, location) == data


def test_token_expires_mid_upload(make_backend) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(**SMALL)
    data = pattern(900 * KiB, seed=8)
    writer = backend.open_writer(new_id(), None)
    for i in range(0, 300 * KiB, 50 * KiB):  # three whole segments
        writer.write(data[i : i + 50 * KiB])
    wait_until_idle(backend)
    expired = set(backend._swift.pool._all)
    invalidate_tokens(backend)
    for i in range(300 * KiB, len(data), 50 * KiB):
        writer.write(data[i : i + 50 * KiB])
    location = writer.commit()
    renewed = [conn for conn in expired if conn.token != "expired-token"]
    assert renewed, "no connection re-authenticated"
    assert read_all(backend, location) == data


def test_bad_credentials_are_forbidden(make_backend, server) -> None:  # type: ignore[no-untyped-def]
    good = make_backend()
    location = good.add(new_id(), iter([b"data"])).location
    secret = "wrong-" + uuid.uuid4().hex
    bad = make_backend(key=secret)
    for operation in (
        lambda: bad.get_size(location),
        lambda: read_all(bad, location),
        lambda: bad.add(new_id(), iter([b"x"])),
        lambda: bad.delete(location),
    ):
        with pytest.raises(errors.Forbidden) as info:
            operation()
        assert secret not in str(info.value)
        assert "credentials" in str(info.value)
    with pytest.raises(errors.BadStoreConfig) as info:
        bad.check_writable()
    assert secret not in str(info.value)
    assert good.get_size(location) == 4


# --- legacy locations -----------------------------------------------------------------


def test_legacy_location_reads_with_config_credentials(backend) -> None:  # type: ignore[no-untyped-def]
    data = pattern(5000, seed=9)
    location = backend.add(new_id(), iter([data])).location
    loc = SwiftLocation.parse(location)
    secret = "uri-" + uuid.uuid4().hex
    legacy = f"{loc.scheme}://acct:user:{secret}@{loc.auth}/{loc.container}/{loc.obj}"
    assert read_all(backend, legacy) == data
    assert backend.get_size(legacy) == len(data)
    missing = legacy.rsplit("/", 1)[0] + "/" + new_id()
    with pytest.raises(errors.NotFound) as info:
        backend.get_size(missing)
    assert secret not in str(info.value) and secret not in str(info.value.location)


def test_multiple_containers(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(multiple_containers_seed=2)
    image_id = new_id()
    stored = backend.add(image_id, iter([b"spread"]))
    loc = SwiftLocation.parse(stored.location)
    assert loc.container == f"{backend.config.container}_{image_id[:2]}"
    assert view.objects(loc.container) == {image_id}
    assert read_all(backend, stored.location) == b"spread"
    backend.delete(stored.location)
    assert view.objects(loc.container) == set()


# --- unreachable servers (no test server needed) ---------------------------------------------


def offline_backend(auth: str, **overrides: Any) -> ChaseBackend:
    settings = {"auth_address": auth, "user": "a:b", "key": "k"}
    settings.update(overrides)
    return ChaseBackend(ChaseBackend.Config(**settings), name="chase")


def test_unreachable_is_unavailable(free_port: int) -> None:
    auth = f"http://127.0.0.1:{free_port}/auth/v1.0"
    backend = offline_backend(auth)
    location = f"swift+http://127.0.0.1:{auth.split(':')[2]}/tank/{new_id()}"
    for operation in (
        lambda: backend.get_size(location),
        lambda: backend.add(new_id(), iter([b"x"])),
    ):
        with pytest.raises(errors.StoreUnavailable) as info:
            operation()
        assert f"cannot reach Swift at 127.0.0.1:{free_port}" in str(info.value)
    backend.check_writable()  # logs, does not disable writes for good
    assert backend.write_disabled is None


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections, never answers
        port = listener.getsockname()[1]
        backend = offline_backend(
            f"http://127.0.0.1:{port}/auth/v1.0", timeout=0.5, connect_timeout=0.5, retries=0
        )
        with pytest.raises(errors.StoreUnavailable) as info:
            backend.get_size(f"swift+http://127.0.0.1:{port}/auth/v1.0/tank/{new_id()}")
        assert "did not answer in time" in str(info.value)
        listener.settimeout(10)
        listener.accept()[0].close()  # the request did reach the server, which kept silent


# --- locations and config (offline) ------------------------------------------------------


@pytest.mark.parametrize(
    "uri,auth,container,obj",
    [
        (
            "swift+http://127.0.0.1:8080/auth/v1.0/tank/abc",
            "127.0.0.1:8080/auth/v1.0",
            "tank",
            "abc",
        ),
        ("swift+https://ks.example.com:5000/v3/c/o%2Fx", "ks.example.com:5000/v3", "c", "o/x"),
        (
            "swift://user:pass@auth.example.com/v1/glance/id1",
            "auth.example.com/v1",
            "glance",
            "id1",
        ),
        ("swift+http://acct:user:p%40ss@h:8080/c/o", "h:8080", "c", "o"),
        ("swift+https://u:se/cr@et@h/v2.0/c/o", "h/v2.0", "c", "o"),
    ],
)
def test_location_parse(uri: str, auth: str, container: str, obj: str) -> None:
    loc = SwiftLocation.parse(uri)
    assert (loc.auth, loc.container, loc.obj) == (auth, container, obj)
    assert SwiftLocation.parse(loc.to_uri()) == loc
    for secret in ("pass", "p%40ss", "se/cr@et"):
        assert secret not in loc.to_uri()
        assert secret not in loc.redacted()


@pytest.mark.parametrize(
    "uri",
    [
        "swift+http://u:secret@host/only-one",
        "swift://u:secret@http://host/v1/c/o",
        "swift+http://u:secret@host/c/o?x=1",
        "s3://u:secret@host/c/o",
        "swift+http://u:secret@host/c/",
    ],
)
def test_bad_locations_never_echo_secrets(uri: str) -> None:
    with pytest.raises(errors.BadLocation) as info:
        SwiftLocation.parse(uri)
    assert "secret" not in str(info.value)
    assert "secret" not in str(info.value.location)


def test_location_schemes() -> None:
    assert SwiftLocation.parse("swift://h/c/o").host_port == ("h", 443)
    assert SwiftLocation.parse("swift+http://H/c/o").host_port == ("h", 80)
    loc = SwiftLocation.for_object("https://ks:5000/v3/", "tank", "i d")
    assert loc.to_uri() == "swift+https://ks:5000/v3/tank/i%20d"


def test_backend_refuses_foreign_locations() -> None:
    backend = offline_backend("http://127.0.0.1:8080/auth/v1.0", container="tank")
    for location in (
        "swift+http://10.0.0.1:8080/auth/v1.0/tank/x",  # another cluster
        "swift+http://127.0.0.1:8080/auth/v1.0/other/x",  # another container
        "swift+http://127.0.0.1:8080/auth/v1.0/tank_segments/x",
    ):
        with pytest.raises(errors.BadLocation):
            backend.get_size(location)
    with pytest.raises(errors.UnknownScheme):
        backend.get("s3://bucket/x")


def test_config() -> None:
    where = "tank.toml [stores.chase]"
    section = {"auth_address": "https://ks/v3", "user": "u", "key": "s3cret-key"}
    cfg = build(ChaseBackend.Config, section, where=where)
    assert (cfg.container, cfg.large_object_size, cfg.auth_version) == ("tank", 5 << 30, 1)
    assert "s3cret-key" not in repr(cfg)
    with pytest.raises(ConfigError, match="project"):
        build(ChaseBackend.Config, {**section, "auth_version": 3}, where=where)
    with pytest.raises(ConfigError, match="credentials"):
        build(ChaseBackend.Config, {**section, "auth_address": "http://u:p@h/v1"}, where=where)
    with pytest.raises(ConfigError, match="large_object_manifest"):
        build(ChaseBackend.Config, {**section, "large_object_manifest": "x"}, where=where)
    with pytest.raises(ConfigError, match="bogus"):
        build(ChaseBackend.Config, {**section, "bogus": 1}, where=where)


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"timeout": 5, "connect_timeout": -1}, " connect_timeout: must be > 0"),
        ({"connect_timeout": 5, "timeout": 0}, " timeout: must be > 0"),
        ({"retries": -1}, " retries: must be >= 0"),
        ({"multiple_containers_seed": 33}, " multiple_containers_seed: must be from 0 to 32"),
        ({"auth_version": 2}, " auth_version: must be one of: 1, 3"),
        ({"auth_version": True}, " auth_version: expected an integer, got a boolean"),
        ({"insecure": 0}, " insecure: expected a boolean, got an integer"),
        ({"interface": "private"}, " interface: must be one of: public, internal, admin"),
        (
            {"auth_address": "http://u:s3cret-key@h/v1"},
            " auth_address: must not contain credentials; give them in their own keys",
        ),
        ({"auth_version": 3}, ": auth_version 3 needs project_name or project_id"),
    ],
)
def test_config_errors_blame_the_key(bad: dict[str, object], message: str) -> None:
    where = "tank.toml [stores.chase]"
    section = {"auth_address": "https://ks/v3", "user": "u", "key": "s3cret-key", **bad}
    with pytest.raises(ConfigError) as info:
        build(ChaseBackend.Config, section, where=where)
    assert str(info.value) == where + message


def test_keystone_v3_session() -> None:
    pytest.importorskip("keystoneauth1")
    backend = offline_backend(
        "https://ks.example.com:5000/v3", auth_version=3, user="glance", project_name="svc"
    )
    session = backend._swift.pool._keystone()
    auth = session.auth
    method = auth.auth_methods[0]
    assert auth.auth_url == "https://ks.example.com:5000/v3"
    assert (method.username, method.password, method.user_domain_id) == ("glance", "k", "default")
    assert (auth.project_name, auth.project_domain_id) == ("svc", "default")
    assert backend._swift.pool._keystone() is session  # one session for every connection


def test_plugin_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tank_store_chase.plugin\n"
        "assert 'swiftclient' not in sys.modules and 'requests' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pipe_bounds_memory() -> None:
    from tank_store_chase.upload import Pipe

    pipe = Pipe(limit=MiB)
    done = threading.Event()

    def produce() -> None:
        for _ in range(8):
            pipe.put(b"x" * (512 * KiB))
        pipe.close()
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert not done.wait(0.3)  # blocked: the pipe holds at most ~1 MiB
    assert pipe._queue.queued <= MiB
    total = 0
    while piece := pipe.read(100 * KiB):
        total += len(piece)
    assert total == 4 * MiB and done.wait(2)


def test_body_cuts_a_range_the_server_ignored() -> None:
    from tank_store_chase.client import _Body

    released: list[bool] = []

    class Answer:
        def __init__(self) -> None:
            self.chunks = iter([b"0123", b"4567", b"89"])

        def __next__(self) -> bytes:
            return next(self.chunks)

        def close(self) -> None:
            pass

    body = _Body(Answer(), release=released.append, translate=lambda e: e, skip=3, limit=4)  # type: ignore[arg-type,return-value]
    assert b"".join(body) == b"3456"
    assert released == [True]


# --- what an upload whose process died leaves (remove_partial) --------------------------


def test_remove_partial_removes_the_segments_a_killed_writer_left(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    """A tank-api killed mid-upload never aborts: the segments that reached Swift stay
    until ``remove_partial``; another image's object and segments stay."""
    backend = make_backend(**SMALL)
    image_id = new_id()
    other = backend.add(new_id(), iter([pattern(300 * KiB, seed=11)]))
    lookalike = backend.add(f"{image_id}0", iter([pattern(300 * KiB, seed=15)]))  # segmented
    kept = view.stored(backend)
    writer = backend.open_writer(image_id, None)
    writer.write(pattern(350 * KiB, seed=12))
    writer._finish_segments()  # the four segments land; then the "kill" (no abort)
    segments = f"{backend.config.container}_segments"
    assert len(view.stored(backend) - kept) == 4

    assert backend.remove_partial(image_id) == [
        f"4 segments of upload {segments}/{image_id}/{writer._upload_id}/"
    ]
    assert view.stored(backend) == kept
    assert backend.remove_partial(image_id) == []
    assert read_all(backend, other.location) == pattern(300 * KiB, seed=11)
    assert read_all(backend, lookalike.location) == pattern(300 * KiB, seed=15)


@pytest.mark.parametrize(
    ("manifest", "size", "segments"),
    [("auto", 450 * KiB, 5), ("dlo", 450 * KiB, 5), ("auto", 200 * KiB, 0)],
    ids=["slo-if-listed", "dlo", "one-object"],
)
def test_remove_partial_removes_data_committed_but_never_recorded(  # type: ignore[no-untyped-def]
    make_backend, view, manifest, size, segments
) -> None:
    """Killed between the store's commit and the registry's record: the object (or the
    manifest and its segments) is there and no image points at it."""
    backend = make_backend(large_object_manifest=manifest, **SMALL)
    other = backend.add(new_id(), iter([pattern(size, seed=13)]), size=size)
    kept = view.stored(backend)
    image_id = new_id()
    stored = backend.add(image_id, iter([pattern(size, seed=14)]), size=size)

    removed = backend.remove_partial(image_id)
    assert removed[0] == f"object {SwiftLocation.parse(stored.location).redacted()}"
    if segments:
        (described,) = removed[1:]
        assert described.startswith(f"{segments} segments of upload ")
        assert f"_segments/{image_id}/" in described
    else:
        assert removed[1:] == []
    assert view.stored(backend) == kept
    assert backend.remove_partial(image_id) == []
    assert read_all(backend, other.location) == pattern(size, seed=13)


def test_remove_partial_with_multiple_containers(make_backend, view) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(multiple_containers_seed=2)
    image_id = new_id()
    loc = SwiftLocation.parse(backend.add(image_id, iter([b"orphan"])).location)
    assert backend.remove_partial(image_id) == [f"object {loc.redacted()}"]
    assert view.objects(loc.container) == set()


def test_remove_partial_when_nothing_was_written(backend) -> None:  # type: ignore[no-untyped-def]
    assert backend.remove_partial(new_id()) == []
    assert backend.remove_partial("../not-an-object") == []
