"""Orphans in the s3 store (issue 15), on each real server (Ceph RGW, Swift's s3api):
the store lists the objects and unfinished multipart uploads of image-id keys in its
bucket, nothing else; the orphan scan against a real (SQLite) registry reports exactly
those no image references, respects the grace period and removes only them."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from tank.model import Status
from tank.scrubber.orphans import Outcome
from tank.store import ItemKind
from tank.testing import pattern, read_all
from tank.testing.orphans import findings, new_id, record, sqlite_registry
from tank_store_s3 import S3Backend

from .conftest import leftovers

MiB = 1 << 20
PART = 5 * MiB


def kill_mid_upload(backend: S3Backend, image_id: str) -> None:
    """What a tank-api killed mid-upload leaves: a multipart upload with a part sent."""
    writer = backend.open_writer(image_id, None)
    writer.write(pattern(PART, seed=3))
    writer._shutdown_pool()  # type: ignore[attr-defined]  # the part lands; then the "kill"


def test_listing_is_tanks_keys_only(backend: S3Backend, admin: Any, bucket: str) -> None:
    image_id, partial_id = new_id(), new_id()
    location = backend.add(image_id, iter([b"data"])).location
    kill_mid_upload(backend, partial_id)
    admin.put_object(Bucket=bucket, Key="backups/etc.tar", Body=b"someone else's")
    admin.put_object(Bucket=bucket, Key=f"{new_id()}.txt", Body=b"not an image id")
    foreign = admin.create_multipart_upload(Bucket=bucket, Key="backups/big.tar")

    items = list(backend.stored())

    assert [(i.kind, i.location, i.image_id, i.size) for i in items] == [
        (ItemKind.DATA, location, image_id, 4),
        (ItemKind.MULTIPART_UPLOAD, None, partial_id, PART),
    ]
    upload = items[1]
    assert upload.name.startswith(f"s3://{bucket}/{partial_id} (upload ")
    for item in items:
        assert item.modified is not None
        assert abs((dt.datetime.now(dt.UTC) - item.modified).total_seconds()) < 300
    admin.abort_multipart_upload(Bucket=bucket, Key="backups/big.tar", UploadId=foreign["UploadId"])


def test_listing_without_the_bucket(server: Any, unused_bucket: str) -> None:
    backend = S3Backend(server.config(unused_bucket), name="s3")
    assert list(backend.stored()) == []
    backend.close()


def test_orphans_are_what_no_image_references(
    backend: S3Backend, admin: Any, bucket: str, server: Any, tmp_path: Path
) -> None:
    registry = sqlite_registry(tmp_path / "data")
    kept = {}
    for status in (Status.ACTIVE, Status.DELETED, Status.PENDING_DELETE):
        image_id = new_id()
        kept[status] = backend.add(image_id, iter([status.value.encode()])).location
        record(registry, [kept[status]], image_id=image_id, status=status)
    # a legacy Glance location of this endpoint, with credentials, still names its data
    legacy_id = new_id()
    kept[Status.KILLED] = backend.add(legacy_id, iter([b"legacy"])).location
    host = server.endpoint.partition("://")[2]
    glance = f"s3+http://{server.access_key}:{server.secret_key}@{host}/{bucket}/{legacy_id}"
    record(registry, [glance], image_id=legacy_id)
    # orphans: data of an image without locations, data of no image, a dead upload
    queued_id, lost_id, dead_id = new_id(), new_id(), new_id()
    record(registry, image_id=queued_id, status=Status.QUEUED)
    queued = backend.add(queued_id, iter([b"never recorded"])).location
    lost = backend.add(lost_id, iter([pattern(PART + 1, seed=1)]), size=PART + 1).location
    kill_mid_upload(backend, dead_id)
    # an upload in progress: its image is saving
    saving_id = new_id()
    record(registry, image_id=saving_id, status=Status.SAVING)
    kill_mid_upload(backend, saving_id)
    admin.put_object(Bucket=bucket, Key="backups/etc.tar", Body=b"someone else's")
    dead = f"s3://{bucket}/{dead_id} (upload "

    found, tally = findings(registry, backend, grace=3600)
    assert found == {}  # everything is younger than an hour
    assert (tally.listed, tally.young) == (8, 3)

    # Swift's s3api rounds LastModified up to the next second, so an object written a
    # moment ago can look written in the future, younger than a grace of 0 s (as it should:
    # it could be an upload committing now). Scan once those seconds have passed.
    time.sleep(1.1)
    found, tally = findings(registry, backend, grace=0)
    assert set(found) == {Outcome.ORPHAN}
    assert {n.partition(" (upload ")[0] for n in found[Outcome.ORPHAN]} == {
        queued,
        lost,
        f"s3://{bucket}/{dead_id}",
    }
    assert any(n.startswith(dead) for n in found[Outcome.ORPHAN])
    assert (tally.listed, tally.referenced, tally.in_progress) == (8, 4, 1)

    found, _ = findings(registry, backend, grace=0, delete=True)
    assert set(found) == {Outcome.REMOVED} and len(found[Outcome.REMOVED]) == 3
    assert leftovers(admin, bucket) == {
        *(loc.rpartition("/")[2] for loc in kept.values()),
        f"upload:{saving_id}",
        "backups/etc.tar",
    }
    for status, location in kept.items():
        expected = b"legacy" if status is Status.KILLED else status.value.encode()
        assert read_all(backend, location) == expected
    assert findings(registry, backend, grace=0)[0] == {}
    assert server.secret_key not in str(found)
