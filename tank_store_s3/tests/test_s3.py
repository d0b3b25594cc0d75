"""S3-specific behaviour on both real servers: multipart, cleanup, errors, legacy locations."""

from __future__ import annotations

import hashlib
import io
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tank import errors
from tank.testing import irregular_chunks, pattern, read_all
from tank_store_s3 import S3Backend

MiB = 1 << 20
PART = 5 * MiB  # the tests' part size (conftest.TEST_SETTINGS)


class Boom(Exception):
    pass


def failing_after(data: bytes, chunk: int = MiB) -> Iterator[bytes]:
    for pos in range(0, len(data), chunk):
        yield data[pos : pos + chunk]
    raise Boom("client went away")


def etag(admin: Any, bucket: str, key: str) -> str:
    return str(admin.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')


def key_of(location: str) -> str:
    return location.rsplit("/", 1)[1]


# --- multipart and single PUT ------------------------------------------------------------


def test_known_size_image_of_several_parts(backend: S3Backend, admin: Any, bucket: str) -> None:
    data = pattern(3 * PART + 1234, seed=1)
    stored = backend.add(str(uuid.uuid4()), io.BytesIO(data), size=len(data))
    assert etag(admin, bucket, key_of(stored.location)).endswith("-4")  # four parts
    assert stored.checksums.md5 == hashlib.md5(data).hexdigest()
    assert read_all(backend, stored.location) == data
    assert read_all(backend, stored.location, PART - 3, 6) == data[PART - 3 : PART + 3]
    assert backend.get_size(stored.location) == len(data)


def test_unknown_length_image_goes_multipart(backend: S3Backend, admin: Any, bucket: str) -> None:
    data = pattern(2 * PART + 77, seed=2)
    stored = backend.add(str(uuid.uuid4()), irregular_chunks(data))
    assert etag(admin, bucket, key_of(stored.location)).endswith("-3")
    assert stored.size == len(data)
    assert read_all(backend, stored.location) == data


def test_small_images_go_up_in_one_put(backend: S3Backend, admin: Any, bucket: str) -> None:
    known = pattern(PART, seed=3)  # exactly large_object_size: still one PUT
    unknown = pattern(PART - 1, seed=4)  # unknown length, smaller than one part
    for data, size in ((known, len(known)), (unknown, None)):
        stored = backend.add(str(uuid.uuid4()), irregular_chunks(data), size=size)
        assert etag(admin, bucket, key_of(stored.location)) == hashlib.md5(data).hexdigest()
        assert read_all(backend, stored.location) == data


def test_parallel_part_uploads_stay_ordered(make_backend: Callable[..., S3Backend]) -> None:
    backend = make_backend(thread_pools=4)
    data = pattern(4 * PART + 5, seed=5)
    stored = backend.add(str(uuid.uuid4()), irregular_chunks(data, (PART + 1, 3, MiB)))
    assert hashlib.sha256(read_all(backend, stored.location)).hexdigest() == (
        stored.checksums.hash_value
    )


# --- nothing left behind -------------------------------------------------------------------


def test_client_going_away_mid_multipart_leaves_nothing(
    backend: S3Backend, admin: Any, bucket: str
) -> None:
    with pytest.raises(Boom):
        backend.add(str(uuid.uuid4()), failing_after(pattern(3 * PART + 10)))
    assert not admin.list_objects_v2(Bucket=bucket).get("Contents")
    assert not admin.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_checksum_mismatch_after_all_parts_leaves_nothing(
    backend: S3Backend, admin: Any, bucket: str
) -> None:
    data = pattern(2 * PART + 1, seed=6)
    with pytest.raises(errors.ChecksumMismatch):
        backend.add(str(uuid.uuid4()), iter([data]), size=len(data), checksum="0" * 32)
    assert not admin.list_objects_v2(Bucket=bucket).get("Contents")
    assert not admin.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_abort_after_parts_went_up(backend: S3Backend, admin: Any, bucket: str) -> None:
    writer = backend.open_writer(str(uuid.uuid4()), None)
    for _ in range(3):
        writer.write(pattern(PART, seed=7))
    assert admin.list_multipart_uploads(Bucket=bucket).get("Uploads")
    writer.abort()
    writer.abort()  # idempotent
    assert not admin.list_objects_v2(Bucket=bucket).get("Contents")
    assert not admin.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_swift_keeps_no_segments_after_abort(make_bucket: Callable[[str], Any]) -> None:
    """s3api keeps parts in a hidden ``<bucket>+segments`` container: it must be empty."""
    import json
    import urllib.error
    import urllib.request

    from tank.testing import require_env

    env = require_env("TANK_TEST_SWIFT_AUTH", "TANK_TEST_SWIFT_USER", "TANK_TEST_SWIFT_KEY")
    target = make_bucket("swift")
    backend = S3Backend(target.config(), name="s3")
    with pytest.raises(Boom):
        backend.add(str(uuid.uuid4()), failing_after(pattern(2 * PART + 10)))
    auth = urllib.request.Request(
        env["TANK_TEST_SWIFT_AUTH"],
        headers={
            "X-Auth-User": env["TANK_TEST_SWIFT_USER"],
            "X-Auth-Key": env["TANK_TEST_SWIFT_KEY"],
        },
    )
    with urllib.request.urlopen(auth, timeout=10) as response:
        url, token = response.headers["X-Storage-Url"], response.headers["X-Auth-Token"]
    listing = urllib.request.Request(
        f"{url}/{target.name}+segments?format=json", headers={"X-Auth-Token": token}
    )
    try:
        with urllib.request.urlopen(listing, timeout=10) as response:
            segments = json.load(response) if response.status == 200 else []
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        segments = []
    assert segments == []
    backend.close()


# --- duplicates ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, 2 * PART + 1], ids=["single-put", "multipart"])
def test_data_written_meanwhile_is_never_overwritten(
    backend: S3Backend, admin: Any, bucket: str, size: int
) -> None:
    image_id = str(uuid.uuid4())
    writer = backend.open_writer(image_id, size)
    writer.write(pattern(size, seed=8))
    admin.put_object(Bucket=bucket, Key=image_id, Body=b"someone else's")
    with pytest.raises(errors.Duplicate):
        writer.commit()
    writer.abort()  # what Backend.add does after a failed commit
    assert admin.get_object(Bucket=bucket, Key=image_id)["Body"].read() == b"someone else's"
    assert not admin.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_retried_put_that_landed_is_not_a_duplicate(
    backend: S3Backend, admin: Any, bucket: str
) -> None:
    """A PUT retried after a lost response meets its own object: that is success."""
    image_id, data = str(uuid.uuid4()), b"the same bytes"
    writer = backend.open_writer(image_id, len(data))
    admin.put_object(Bucket=bucket, Key=image_id, Body=data)  # "the first try"
    writer.write(data)
    assert writer.commit() == f"s3://{bucket}/{image_id}"


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["secret", "access"])
def test_bad_credentials_are_forbidden_with_a_clear_message(
    make_backend: Callable[..., S3Backend], admin: Any, bucket: str, which: str
) -> None:
    wrong = "Wr0ng-s3cret-" + uuid.uuid4().hex
    if which == "secret":
        backend = make_backend(secret_key=wrong)
    else:
        backend = make_backend(access_key="nobody-" + uuid.uuid4().hex[:8], secret_key=wrong)
    good = make_backend().add(str(uuid.uuid4()), iter([b"x"]))
    attempts: list[Callable[[], object]] = [
        lambda: backend.add(str(uuid.uuid4()), iter([b"data"])),
        lambda: read_all(backend, good.location),
        lambda: backend.get_size(good.location),
        lambda: backend.delete(good.location),
    ]
    for attempt in attempts:
        with pytest.raises(errors.Forbidden) as caught:
            attempt()
        message = str(caught.value)
        assert "access_key/secret_key" in message
        assert wrong not in message and wrong not in repr(caught.value)
    with pytest.raises(errors.BadStoreConfig) as caught:
        backend.check_writable()
    assert "access_key/secret_key" in str(caught.value) and wrong not in str(caught.value)
    assert wrong not in repr(backend.config)
    assert {o["Key"] for o in admin.list_objects_v2(Bucket=bucket)["Contents"]} == {
        good.location.rsplit("/", 1)[1]
    }


def test_unreachable_endpoint_is_unavailable_naming_it(free_port: int) -> None:
    config = S3Backend.Config(
        endpoint=f"http://127.0.0.1:{free_port}",
        access_key="key",
        secret_key="s3cret-never-shown",
        bucket="tank-images",
        max_attempts=2,
        connect_timeout=2,
    )
    backend = S3Backend(config, name="s3")
    with pytest.raises(errors.StoreUnavailable) as caught:
        backend.get_size("s3://tank-images/some-image")
    with pytest.raises(errors.StoreUnavailable) as added:
        backend.add(str(uuid.uuid4()), iter([b"data"]))
    for error in (caught.value, added.value):
        assert f"127.0.0.1:{free_port}" in str(error)
        assert "s3cret-never-shown" not in str(error)
    backend.check_writable()  # down is not misconfigured: warns, writes stay enabled
    assert backend.write_disabled is None


def test_missing_bucket(server: Any, unused_bucket: str) -> None:
    backend = S3Backend(server.config(unused_bucket), name="s3")
    with pytest.raises(errors.BadStoreConfig, match="create_bucket_on_put"):
        backend.check_writable()
    with pytest.raises(errors.BadStoreConfig, match="create_bucket_on_put"):
        backend.add(str(uuid.uuid4()), iter([b"data"]))
    with pytest.raises(errors.NotFound):
        backend.get_size(f"s3://{unused_bucket}/anything")
    backend.close()


@pytest.mark.parametrize("when", ["check_writable", "first_write"])
def test_create_bucket_on_put(server: Any, admin: Any, unused_bucket: str, when: str) -> None:
    backend = S3Backend(server.config(unused_bucket, create_bucket_on_put=True), name="s3")
    if when == "check_writable":
        backend.check_writable()
        admin.head_bucket(Bucket=unused_bucket)
        backend.check_writable()  # and again, now that it exists
    stored = backend.add(str(uuid.uuid4()), iter([b"data"]))
    assert read_all(backend, stored.location) == b"data"
    backend.close()


# --- reads -----------------------------------------------------------------------------


def test_reads_other_buckets_on_the_endpoint(
    make_backend: Callable[..., S3Backend], make_bucket: Callable[[str], Any], server: Any
) -> None:
    other = make_bucket(server.name)
    other.admin.put_object(Bucket=other.name, Key="some/nested/key.img", Body=b"elsewhere")
    backend = make_backend()
    location = f"s3://{other.name}/some/nested/key.img"
    assert read_all(backend, location) == b"elsewhere"
    assert read_all(backend, location, 4, 100) == b"where"


def test_broken_download_resumes_where_it_broke(
    backend: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ResponseStreamingError

    import tank_store_s3.reader as reader

    data = pattern(3 * MiB + 5, seed=9)
    stored = backend.add(str(uuid.uuid4()), iter([data]), size=len(data))
    requests: list[str | None] = []
    real_get = reader.get_object

    class BreaksAfterOneMiB:
        def __init__(self, body: Any) -> None:
            self.body = body

        def iter_chunks(self, size: int) -> Iterator[bytes]:
            yield self.body.read(MiB)
            raise ResponseStreamingError(error="connection reset by peer")

        def close(self) -> None:
            self.body.close()

    def flaky_get(backend: S3Backend, loc: Any, wanted: str | None, etag: str | None = None):
        requests.append(wanted)
        response = real_get(backend, loc, wanted, etag)
        if len(requests) == 1:
            response["Body"] = BreaksAfterOneMiB(response["Body"])
        return response

    monkeypatch.setattr(reader, "get_object", flaky_get)
    assert read_all(backend, stored.location, 10) == data[10:]
    assert requests == ["bytes=10-", f"bytes={10 + MiB}-{len(data) - 1}"]


def test_legacy_glance_locations_are_read_with_the_store_credentials(
    backend: S3Backend, server: Any
) -> None:
    data = pattern(1000, seed=10)
    stored = backend.add(str(uuid.uuid4()), iter([data]))
    bucket, key = stored.location.removeprefix("s3://").split("/")
    host = server.endpoint.split("://", 1)[1]
    stale = "Stale/Secret+" + uuid.uuid4().hex  # credentials in a location are never used
    for uri in (
        f"s3+http://{server.access_key}:{stale}@{host}/{bucket}/{key}",
        f"s3://old-access-key:{stale}@{host}/{bucket}/{key}",
        f"s3+http://{host}/{bucket}/{key}",
    ):
        assert read_all(backend, uri) == data
        assert read_all(backend, uri, 990) == data[990:]
        assert backend.get_size(uri) == len(data)
    missing = f"s3+http://{server.access_key}:{stale}@{host}/{bucket}/missing-{uuid.uuid4()}"
    with pytest.raises(errors.NotFound) as caught:
        backend.get_size(missing)
    assert "Stale" not in str(caught.value) and stale not in str(caught.value)


def test_hanging_endpoint_times_out_as_unavailable() -> None:
    """A server that accepts connections but never answers: read_timeout, not a hang."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        config = S3Backend.Config(
            endpoint=f"http://127.0.0.1:{listener.getsockname()[1]}",
            access_key="key",
            secret_key="s3cret",
            bucket="tank-images",
            read_timeout=0.5,
            max_attempts=2,
        )
        backend = S3Backend(config, name="s3")
        with pytest.raises(errors.StoreUnavailable, match="timed out"):
            backend.get_size("s3://tank-images/some-image")
        listener.settimeout(10)
        listener.accept()[0].close()  # the request did reach the server, which kept silent


# --- what an upload whose process died leaves (remove_partial) --------------------------


def unfinished_uploads(admin: Any, bucket: str) -> list[str]:
    return sorted(u["Key"] for u in admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def test_remove_partial_aborts_the_uploads_a_killed_writer_left(
    backend: S3Backend, admin: Any, bucket: str
) -> None:
    """A tank-api killed mid-upload never aborts: its multipart upload (and its parts)
    stay until ``remove_partial``; another image's object, and an upload of a key that
    merely starts with the image id, stay."""
    image_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    kept = backend.add(other, iter([b"keep"]))
    lookalike = admin.create_multipart_upload(Bucket=bucket, Key=f"{image_id}0")
    writer = backend.open_writer(image_id, None)
    writer.write(pattern(2 * PART, seed=8))  # two parts sent
    writer._shutdown_pool()  # type: ignore[attr-defined]  # they land; then the "kill"
    writer = backend.open_writer(image_id, None)  # a second try, killed as well
    writer.write(pattern(PART, seed=9))
    writer._shutdown_pool()  # type: ignore[attr-defined]
    assert unfinished_uploads(admin, bucket) == sorted([image_id, image_id, f"{image_id}0"])

    removed = backend.remove_partial(image_id)
    assert len(removed) == 2
    assert all("multipart upload" in r and f"s3://{bucket}/{image_id}" in r for r in removed)
    assert unfinished_uploads(admin, bucket) == [f"{image_id}0"]
    assert backend.remove_partial(image_id) == []
    assert read_all(backend, kept.location) == b"keep"
    admin.abort_multipart_upload(Bucket=bucket, Key=f"{image_id}0", UploadId=lookalike["UploadId"])


@pytest.mark.parametrize("size", [100, 2 * PART + 1], ids=["single-put", "multipart"])
def test_remove_partial_deletes_an_object_committed_but_never_recorded(
    backend: S3Backend, admin: Any, bucket: str, size: int
) -> None:
    """Killed between the store's commit and the registry's record: the object is there
    under the image's key and no image points at it."""
    image_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    backend.add(image_id, iter([pattern(size, seed=10)]), size=size)
    kept = backend.add(other, iter([b"keep"]))
    assert backend.remove_partial(image_id) == [f"object s3://{bucket}/{image_id}"]
    assert backend.remove_partial(image_id) == []
    listed = admin.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [obj["Key"] for obj in listed] == [other]
    assert read_all(backend, kept.location) == b"keep"


def test_remove_partial_without_the_bucket(server: Any, unused_bucket: str) -> None:
    backend = S3Backend(server.config(unused_bucket), name="s3")
    assert backend.remove_partial(str(uuid.uuid4())) == []
    backend.close()
