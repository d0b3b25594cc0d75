#!/usr/bin/env python3
"""End-to-end check of the throwaway Swift started by swift.sh: Swift API and S3 API.

    tests/servers/swift.sh start
    eval "$(tests/servers/swift.sh env)"
    python3 -m venv /tmp/swift-verify-venv
    /tmp/swift-verify-venv/bin/pip install python-swiftclient boto3
    /tmp/swift-verify-venv/bin/python tests/servers/verify_swift.py

Reads the TANK_TEST_SWIFT_* variables (defaults = swift.sh's fixed test accounts),
prints PASS/FAIL per check and a closing 'N passed, N failed' line; exit 1 on any failure.
Everything it creates is deleted again.
"""

import hashlib
import io
import json
import os
import sys
import tempfile
import time
import traceback
import uuid

import boto3
import botocore.config
import botocore.exceptions
import swiftclient
from swiftclient.service import SwiftService, SwiftUploadObject

MiB = 1024 * 1024
# Never send loopback traffic through an HTTP proxy from the environment.
os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1,localhost"]))
os.environ["no_proxy"] = os.environ["NO_PROXY"]
AUTH = os.environ.get("TANK_TEST_SWIFT_AUTH", "http://127.0.0.1:8080/auth/v1.0")
USER = os.environ.get("TANK_TEST_SWIFT_USER", "test:tester")
KEY = os.environ.get("TANK_TEST_SWIFT_KEY", "testing")
NONADMIN_USER = os.environ.get("TANK_TEST_SWIFT_NONADMIN_USER", "test:tester3")
NONADMIN_KEY = os.environ.get("TANK_TEST_SWIFT_NONADMIN_KEY", "testing3")
USER2 = os.environ.get("TANK_TEST_SWIFT_USER2", "test2:tester2")
KEY2 = os.environ.get("TANK_TEST_SWIFT_KEY2", "testing2")
S3_ENDPOINT = os.environ.get("TANK_TEST_SWIFT_S3_ENDPOINT", "http://127.0.0.1:8080")
S3_ACCESS = os.environ.get("TANK_TEST_SWIFT_S3_ACCESS_KEY", "test:tester")
S3_SECRET = os.environ.get("TANK_TEST_SWIFT_S3_SECRET_KEY", "testing")
S3_REGION = os.environ.get("TANK_TEST_SWIFT_S3_REGION", "us-east-1")

RUN = uuid.uuid4().hex[:8]
results = []  # (name, ok)


def check(name):
    """Decorator: run the function now, record and print PASS/FAIL with its duration."""

    def run(fn):
        t0 = time.monotonic()
        try:
            detail = fn()
            results.append((name, True))
            print(f"PASS {name} ({time.monotonic() - t0:.2f}s){' - ' + detail if detail else ''}")
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            results.append((name, False))
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3, file=sys.stdout)
        return fn

    return run


def md5(data):
    return hashlib.md5(data).hexdigest()


def stream_md5(chunks):
    h, n = hashlib.md5(), 0
    for chunk in chunks:
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def conn_for(user, key):
    return swiftclient.Connection(
        authurl=AUTH, user=user, key=key, auth_version="1", retries=0, timeout=60
    )


# --------------------------------------------------------------------------- Swift API
conn = conn_for(USER, KEY)
CONT = f"verify-{RUN}"
SEG_CONT = f"{CONT}_segments"


@check("swift: v1 auth + /info lists slo, s3api, bulk, tempauth")
def _():
    url, token = conn.get_auth()
    assert url.endswith("/v1/AUTH_test") and token, (url, token)
    info = conn.get_capabilities()
    missing = {"slo", "s3api", "bulk_delete", "bulk_upload", "tempauth"} - set(info)
    assert not missing, f"/info lacks {missing}"
    return f"{url}, swift {info['swift']['version']}"


@check("swift: container + 5 MiB object put/head/get/delete")
def _():
    conn.put_container(CONT)
    data = os.urandom(5 * MiB)
    etag = conn.put_object(CONT, "small", data, content_type="application/octet-stream")
    assert etag == md5(data), etag
    head = conn.head_object(CONT, "small")
    assert int(head["content-length"]) == len(data) and head["etag"] == md5(data), head
    _, body = conn.get_object(CONT, "small")
    assert body == data
    conn.delete_object(CONT, "small")
    try:
        conn.head_object(CONT, "small")
        raise AssertionError("object still there after DELETE")
    except swiftclient.ClientException as e:
        assert e.http_status == 404, e


BIG = os.urandom(50 * MiB + 12345)  # not a multiple of the segment size on purpose
BIG_MD5 = md5(BIG)


@check("swift: 50 MiB SLO upload (SwiftService, 10 MiB segments), read back, delete")
def _():
    opts = {"auth": AUTH, "user": USER, "key": KEY, "auth_version": "1.0"}
    with tempfile.NamedTemporaryFile() as f, SwiftService(options=opts) as svc:
        f.write(BIG)
        f.flush()
        for r in svc.upload(
            CONT,
            [SwiftUploadObject(f.name, object_name="big-slo")],
            options={"segment_size": 10 * MiB, "use_slo": True},
        ):
            assert r["success"], r.get("error")
        head = conn.head_object(CONT, "big-slo")
        assert head.get("x-static-large-object") == "True", head
        assert int(head["content-length"]) == len(BIG), head
        segs = conn.get_container(SEG_CONT)[1]
        assert len(segs) == 6, [s["name"] for s in segs]
        _, body = conn.get_object(CONT, "big-slo", resp_chunk_size=MiB)
        assert stream_md5(body) == (BIG_MD5, len(BIG)), "SLO content differs"
        # a range across a segment boundary
        lo, hi = 10 * MiB - 100, 10 * MiB + 99
        _, part = conn.get_object(CONT, "big-slo", headers={"Range": f"bytes={lo}-{hi}"})
        assert part == BIG[lo : hi + 1], "ranged GET differs"
        for r in svc.delete(CONT, ["big-slo"]):  # deletes the segments too
            assert r["success"], r.get("error")
    left = conn.get_container(SEG_CONT)[1]
    assert not left, f"segments left: {[s['name'] for s in left]}"
    return "6 segments, md5 + range ok, segments deleted"


@check("swift: 50 MiB DLO (X-Object-Manifest) + manual SLO manifest over same segments")
def _():
    prefix, manifest = "dlo/big/", []
    for i in range(0, len(BIG), 10 * MiB):
        seg = BIG[i : i + 10 * MiB]
        name = f"{prefix}{i // (10 * MiB):08d}"
        etag = conn.put_object(SEG_CONT, name, seg)
        assert etag == md5(seg)
        manifest.append({"path": f"/{SEG_CONT}/{name}", "etag": etag, "size_bytes": len(seg)})
    conn.put_object(CONT, "big-dlo", b"", headers={"X-Object-Manifest": f"{SEG_CONT}/{prefix}"})
    head = conn.head_object(CONT, "big-dlo")
    assert head.get("x-object-manifest") == f"{SEG_CONT}/{prefix}", head
    _, body = conn.get_object(CONT, "big-dlo", resp_chunk_size=MiB)
    assert stream_md5(body) == (BIG_MD5, len(BIG)), "DLO content differs"
    conn.put_object(
        CONT, "big-slo-manual", json.dumps(manifest), query_string="multipart-manifest=put"
    )
    _, body = conn.get_object(CONT, "big-slo-manual", resp_chunk_size=MiB)
    assert stream_md5(body) == (BIG_MD5, len(BIG)), "manual SLO content differs"
    conn.delete_object(CONT, "big-dlo")  # DLO manifest only; segments stay
    # deleting an SLO with multipart-manifest=delete removes its segments as well
    conn.delete_object(CONT, "big-slo-manual", query_string="multipart-manifest=delete")
    left = conn.get_container(SEG_CONT)[1]
    assert not left, f"segments left: {[s['name'] for s in left]}"
    return f"{len(manifest)} segments, md5 ok, segments deleted"


@check("swift: non-admin user test:tester3 needs an ACL; second account test2")
def _():
    conn.put_object(CONT, "acl-probe", b"hi")
    other = conn_for(NONADMIN_USER, NONADMIN_KEY)
    url, _ = other.get_auth()
    assert url.endswith("/v1/AUTH_test"), url
    try:
        other.get_object(CONT, "acl-probe")
        raise AssertionError("non-admin could read without ACL")
    except swiftclient.ClientException as e:
        assert e.http_status == 403, e
    conn.post_container(CONT, {"X-Container-Read": NONADMIN_USER})
    assert other.get_object(CONT, "acl-probe")[1] == b"hi"
    conn.delete_object(CONT, "acl-probe")
    url2, _ = conn_for(USER2, KEY2).get_auth()
    assert url2.endswith("/v1/AUTH_test2"), url2


@check("swift: delete containers")
def _():
    conn.delete_container(SEG_CONT)
    conn.delete_container(CONT)
    names = [c["name"] for c in conn.get_account()[1]]
    assert CONT not in names and SEG_CONT not in names, names


# --------------------------------------------------------------------------- S3 API
def s3_client(signature="s3v4"):
    return boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS,
        aws_secret_access_key=S3_SECRET,
        config=botocore.config.Config(
            signature_version=signature,
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
        ),
    )


s3 = s3_client()
BUCKET = f"verify-{RUN}"


@check("s3: which signatures authenticate (ListBuckets)")
def _():
    works = {}
    for sig in ("s3v4", "s3"):  # SigV4 and legacy SigV2
        try:
            s3_client(sig).list_buckets()
            works[sig] = "ok"
        except botocore.exceptions.ClientError as e:
            works[sig] = e.response["Error"]["Code"]
    assert works["s3v4"] == "ok", works
    return ", ".join(f"{k}: {v}" for k, v in works.items())


@check("s3: create bucket, put/get/head object (SigV4, default checksums)")
def _():
    s3.create_bucket(Bucket=BUCKET)
    data = os.urandom(1 * MiB + 7)
    s3.put_object(Bucket=BUCKET, Key="small", Body=data)
    got = s3.get_object(Bucket=BUCKET, Key="small")
    assert got["Body"].read() == data
    head = s3.head_object(Bucket=BUCKET, Key="small")
    assert head["ContentLength"] == len(data) and head["ETag"].strip('"') == md5(data), head
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == ["small"], keys
    # the same object through the Swift API (bucket = container)
    assert conn.get_object(BUCKET, "small")[1] == data


@check("s3: SigV2 put/get")
def _():
    v2 = s3_client("s3")
    v2.put_object(Bucket=BUCKET, Key="v2", Body=b"sigv2")
    assert v2.get_object(Bucket=BUCKET, Key="v2")["Body"].read() == b"sigv2"


DATA30 = os.urandom(30 * MiB)


@check("s3: 30 MiB multipart upload, 8 MiB parts (low-level API)")
def _():
    mpu = s3.create_multipart_upload(Bucket=BUCKET, Key="mpu")
    parts, n = [], 0
    for i in range(0, len(DATA30), 8 * MiB):
        n += 1
        r = s3.upload_part(
            Bucket=BUCKET,
            Key="mpu",
            UploadId=mpu["UploadId"],
            PartNumber=n,
            Body=DATA30[i : i + 8 * MiB],
        )
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert [u["UploadId"] for u in listed] == [mpu["UploadId"]], listed
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="mpu", UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts}
    )
    head = s3.head_object(Bucket=BUCKET, Key="mpu")
    assert head["ContentLength"] == len(DATA30) and head["ETag"].endswith(f'-{n}"'), head
    body = s3.get_object(Bucket=BUCKET, Key="mpu")["Body"]
    assert stream_md5(iter(lambda: body.read(MiB), b"")) == (md5(DATA30), len(DATA30))
    rng = s3.get_object(Bucket=BUCKET, Key="mpu", Range="bytes=8388600-8388615")["Body"].read()
    assert rng == DATA30[8388600:8388616]
    return f"{n} parts, ETag {head['ETag']}"


@check("s3: 30 MiB upload_fileobj/download_fileobj (TransferConfig 8 MiB parts)")
def _():
    from boto3.s3.transfer import TransferConfig

    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    s3.upload_fileobj(io.BytesIO(DATA30), BUCKET, "mpu-transfer", Config=cfg)
    out = io.BytesIO()
    s3.download_fileobj(BUCKET, "mpu-transfer", out, Config=cfg)
    assert md5(out.getvalue()) == md5(DATA30)


@check("s3: delete objects + bucket")
def _():
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    assert not r.get("Errors"), r["Errors"]
    s3.delete_bucket(Bucket=BUCKET)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert BUCKET not in names and f"{BUCKET}+segments" not in names, names
    return f"deleted {len(keys)} objects"


passed = sum(ok for _, ok in results)
failed = len(results) - passed
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
