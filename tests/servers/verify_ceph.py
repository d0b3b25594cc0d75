"""Checks a cluster started by ceph.sh: RBD through the rados/rbd bindings, S3 (boto3) and
Swift (python-swiftclient) through the RADOS Gateway.

    eval "$(tests/servers/ceph.sh env)"; tests/servers/ceph.sh python-link VENV
    VENV/bin/python tests/servers/verify_ceph.py
"""

import hashlib
import io
import os
import sys

import boto3
import rados
import rbd
import swiftclient
from boto3.s3.transfer import TransferConfig

passed, failed = 0, 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print("ok  ", name)
    except Exception as e:  # noqa: BLE001 - report every failure
        failed += 1
        print("FAIL", name, type(e).__name__, e)


def rbd_roundtrip():
    with rados.Rados(conffile=os.environ["CEPH_CONF"]) as cluster:
        with cluster.open_ioctx(os.environ["TANK_TEST_RBD_POOL"]) as ioctx:
            rbd.RBD().create(
                ioctx, "verify", 64 << 20, old_format=False, features=rbd.RBD_FEATURE_LAYERING
            )
            chunk = os.urandom(8 << 20)
            with rbd.Image(ioctx, "verify") as image:
                for i in range(8):
                    image.write(chunk, i * len(chunk))
                assert image.read(3 * len(chunk), len(chunk)) == chunk
                image.create_snap("snap")
                image.protect_snap("snap")
                image.unprotect_snap("snap")
                image.remove_snap("snap")
            rbd.RBD().remove(ioctx, "verify")
            assert "verify" not in rbd.RBD().list(ioctx)


def s3_roundtrip():
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["TANK_TEST_RGW_S3_ENDPOINT"],
        aws_access_key_id=os.environ["TANK_TEST_RGW_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["TANK_TEST_RGW_S3_SECRET_KEY"],
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="verify-bucket")
    data = os.urandom(40 << 20)
    cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
    s3.upload_fileobj(io.BytesIO(data), "verify-bucket", "big", Config=cfg)
    body = s3.get_object(Bucket="verify-bucket", Key="big")["Body"].read()
    assert hashlib.md5(body).digest() == hashlib.md5(data).digest()
    s3.delete_object(Bucket="verify-bucket", Key="big")
    s3.delete_bucket(Bucket="verify-bucket")


def swift_roundtrip():
    conn = swiftclient.Connection(
        os.environ["TANK_TEST_RGW_SWIFT_AUTH"],
        os.environ["TANK_TEST_RGW_SWIFT_USER"],
        os.environ["TANK_TEST_RGW_SWIFT_KEY"],
    )
    conn.put_container("verify-container")
    data = os.urandom(5 << 20)
    conn.put_object("verify-container", "obj", data)
    assert conn.get_object("verify-container", "obj")[1] == data
    conn.delete_object("verify-container", "obj")
    conn.delete_container("verify-container")


check("rbd: create, write 64 MiB, read, snapshot+protect, remove", rbd_roundtrip)
check("rgw s3: bucket, 40 MiB multipart, get, delete", s3_roundtrip)
check("rgw swift: container, 5 MiB put/get, delete", swift_roundtrip)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
