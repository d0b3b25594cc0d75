"""Interoperable import against a real tank-api: stage + glance-direct, web-download,
copy-image, the import steps on real images, and what failures leave (nothing)."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

Tank = Any  # the conftest's Tank (conftest modules are not importable)

DATA = bytes(range(256)) * 8192 + b"tail"  # 2 MiB and a bit: several chunks


def digests(data: bytes) -> tuple[str, str]:
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()


def assert_holds(tank: Tank, image: dict[str, Any], data: bytes) -> None:
    """The image is active with ``data``: what is downloaded, and what it claims."""
    md5, sha256 = digests(data)
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == md5
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha256", sha256)
    body = tank.download(image["id"])
    assert digests(body) == (md5, sha256)


def error_of(resp: requests.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    return str(resp.json()["error"]["message"])


def test_discovery_shows_the_configured_methods(start_tank: Any) -> None:
    tank = start_tank('methods = ["web-download", "copy-image"]')
    info = requests.get(f"{tank.url}/v2/info/import", timeout=10).json()
    assert info["import-methods"]["value"] == ["web-download", "copy-image"]
    created = requests.post(f"{tank.url}/v2/images", json={"name": "x"}, timeout=10).headers[
        "OpenStack-image-import-methods"
    ]
    assert created == "web-download,copy-image"
    image = tank.create()
    refused = tank.import_(image["id"], {"method": {"name": "glance-direct"}})
    assert "web-download, copy-image" in error_of(refused, 400)
    assert tank.stage(image["id"], b"abc").status_code == 404  # glance-direct is off


def test_stage_then_glance_direct(tank: Tank) -> None:
    image = tank.create(name="direct")
    staged = tank.stage(image["id"], DATA)
    assert staged.status_code == 204, staged.text
    shown = tank.show(image["id"])
    assert shown["status"] == "uploading"
    assert "os_glance_stage_host" not in shown  # hidden, as in Glance
    assert requests.get(f"{tank.url}/v2/images/{image['id']}/file", timeout=10).status_code == 204
    body = {"method": {"name": "glance-direct"}, "stores": ["file", "second"]}
    accepted = tank.import_(image["id"], body)
    assert accepted.status_code == 202, accepted.text
    done = tank.settled(image["id"])
    assert_holds(tank, done, DATA)
    assert done["stores"] == "file,second"
    assert "os_glance_failed_import" not in done
    assert "os_glance_importing_to_stores" not in done
    assert tank.staged() == []
    assert tank.files("file") == tank.files("second") == [image["id"]]


def test_stage_failures_leave_the_image_queued_with_nothing_staged(tank: Tank) -> None:
    image = tank.create()
    wrong = tank.stage(image["id"], DATA, **{"x-openstack-image-size": str(len(DATA) + 1)})
    assert "x-openstack-image-size" in error_of(wrong, 400)
    shown = tank.show(image["id"])
    assert shown["status"] == "queued" and shown["size"] is None
    assert tank.staged() == []
    media = requests.put(
        f"{tank.url}/v2/images/{image['id']}/stage",
        data=b"x",
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert media.status_code == 415
    assert tank.stage(image["id"], b"good").status_code == 204
    assert "uploading" in error_of(tank.stage(image["id"], b"again"), 409)


def test_web_download_into_two_stores(tank: Tank, web: Any) -> None:
    web.files["/image.raw"] = DATA
    image = tank.create(name="web")
    body = {"method": {"name": "web-download", "uri": web.url("/image.raw")}}
    accepted = tank.import_(image["id"], {**body, "stores": ["file", "second"]})
    assert accepted.status_code == 202, accepted.text
    done = tank.settled(image["id"])
    assert_holds(tank, done, DATA)
    assert done["stores"] == "file,second"
    assert tank.files("file") == tank.files("second") == [image["id"]]
    assert tank.staged() == []


def test_copy_image_into_another_store(tank: Tank, web: Any) -> None:
    image = tank.create(name="copied")
    assert tank.stage(image["id"], DATA).status_code == 204
    assert tank.import_(image["id"], {"method": {"name": "glance-direct"}}).status_code == 202
    assert tank.settled(image["id"])["stores"] == "file"
    copy = {"method": {"name": "copy-image"}, "stores": ["second"]}
    assert tank.import_(image["id"], copy).status_code == 202
    done = tank.wait(image["id"], lambda i: i.get("stores") == "file,second")
    done = tank.settled(image["id"])
    assert_holds(tank, done, DATA)
    assert tank.files("second") == [image["id"]]
    assert tank.staged() == []
    # the data is read from the new copy when the first one is lost
    (tank.store_dirs["file"] / image["id"]).unlink()
    assert digests(tank.download(image["id"])) == digests(DATA)
    again = tank.import_(image["id"], copy)
    assert "already in store 'second'" in error_of(again, 400)
    # all_stores skips the stores it is in: nothing left to do is still a 202
    everywhere = tank.import_(image["id"], {"method": {"name": "copy-image"}, "all_stores": True})
    assert everywhere.status_code == 202


def test_copy_image_is_for_admins(start_tank: Any) -> None:
    tank = start_tank("", "--auth")
    owner = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "t1", "X-Roles": "member"}
    admin = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "ops", "X-Roles": "admin"}
    tank.headers = admin
    image = tank.create(headers=owner, name="mine")
    assert tank.stage(image["id"], DATA, **owner).status_code == 204
    direct = tank.import_(image["id"], {"method": {"name": "glance-direct"}}, **owner)
    assert direct.status_code == 202, direct.text
    tank.wait(image["id"], lambda i: i["status"] == "active")
    copy = {"method": {"name": "copy-image"}, "stores": ["second"]}
    assert "admin" in error_of(tank.import_(image["id"], copy, **owner), 403)
    assert tank.import_(image["id"], copy, **admin).status_code == 202
    tank.wait(image["id"], lambda i: i.get("stores") == "file,second", timeout=60)
    # others cannot stage into or import someone else's image
    other = {"X-Identity-Status": "Confirmed", "X-Tenant-Id": "t2", "X-Roles": "member"}
    queued = tank.create(headers=owner, name="queued", visibility="community")
    assert tank.stage(queued["id"], b"x", **other).status_code == 403


def test_decompress_and_convert_on_import(start_tank: Any, tmp_path: Path) -> None:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img (Debian qemu-utils) is not installed")
    tank = start_tank('steps = ["decompress", "convert"]\nconvert_to = "raw"')
    raw = tmp_path / "disk.raw"
    disk = bytearray(4 << 20)
    disk[0 : len(DATA)] = DATA
    disk[3 << 20 : (3 << 20) + 5] = b"later"
    raw.write_bytes(bytes(disk))
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)], check=True
    )
    packed = gzip.compress(qcow2.read_bytes())
    assert not packed.startswith(b"QFI")
    image = tank.create(name="packed", disk_format="qcow2")
    assert tank.stage(image["id"], packed).status_code == 204
    assert tank.import_(image["id"], {"method": {"name": "glance-direct"}}).status_code == 202
    done = tank.settled(image["id"])
    assert done["disk_format"] == "raw"
    assert done["virtual_size"] == len(disk)
    assert_holds(tank, done, bytes(disk))
    assert tank.staged() == []


def test_a_failing_step_leaves_the_image_as_it_was(start_tank: Any, web: Any) -> None:
    tank = start_tank('steps = ["decompress"]')
    web.files["/broken.gz"] = gzip.compress(DATA)[:-100]  # cut short
    image = tank.create(name="broken")
    body = {"method": {"name": "web-download", "uri": web.url("/broken.gz")}}
    assert tank.import_(image["id"], body).status_code == 202
    failed = tank.settled(image["id"])
    assert failed["status"] == "queued"
    assert failed["os_glance_failed_import"] == "file"
    assert "gzip data is damaged" in failed["os_glance_failed_import_reason"]
    assert failed["size"] is None and failed["checksum"] is None
    assert tank.files("file") == [] and tank.staged() == []
    # it can be imported again, and then the failure is forgotten
    web.files["/good.gz"] = gzip.compress(DATA)
    body = {"method": {"name": "web-download", "uri": web.url("/good.gz")}}
    assert tank.import_(image["id"], body).status_code == 202
    done = tank.settled(image["id"])
    assert_holds(tank, done, DATA)
    assert "os_glance_failed_import" not in done
    assert "os_glance_failed_import_reason" not in done


def test_a_failed_download_leaves_nothing(tank: Tank, web: Any) -> None:
    image = tank.create(name="missing")
    body = {"method": {"name": "web-download", "uri": web.url("/nothing-here")}}
    assert tank.import_(image["id"], body).status_code == 202
    failed = tank.settled(image["id"])
    assert failed["status"] == "queued"
    assert failed["os_glance_failed_import"] == "file"
    assert "HTTP 404" in failed["os_glance_failed_import_reason"]
    assert tank.files("file") == [] and tank.staged() == []


def test_one_store_failing_fails_all_unless_told_otherwise(tank: Tank, web: Any) -> None:
    web.files["/image.raw"] = DATA
    image = tank.create(name="partial")
    # a file already named after the image makes store "second" refuse to write
    tank.store_dirs["second"].mkdir(parents=True, exist_ok=True)
    (tank.store_dirs["second"] / image["id"]).write_bytes(b"squatter")
    body = {
        "method": {"name": "web-download", "uri": web.url("/image.raw")},
        "stores": ["file", "second"],
    }
    assert tank.import_(image["id"], body).status_code == 202
    failed = tank.settled(image["id"])
    assert failed["status"] == "queued"
    assert failed["os_glance_failed_import"] == "file,second"
    assert tank.files("file") == []  # the copy that worked was deleted
    assert (tank.store_dirs["second"] / image["id"]).read_bytes() == b"squatter"
    assert tank.staged() == []
    accepted = tank.import_(image["id"], {**body, "all_stores_must_succeed": False})
    assert accepted.status_code == 202
    done = tank.settled(image["id"])
    assert_holds(tank, done, DATA)
    assert done["stores"] == "file"
    assert done["os_glance_failed_import"] == "second"


@pytest.mark.parametrize(
    "body,status,fragment",
    [
        ({"method": {"name": "glance-direct"}}, 409, "stage its data first"),
        ({"method": {"name": "copy-image"}, "stores": ["second"]}, 409, "needs an image"),
        ({"method": {"name": "no-such"}}, 400, "glance-direct, web-download, copy-image"),
        ({"method": {"name": "web-download"}}, 400, "method.uri"),
        ({"method": {"name": "web-download", "uri": "file:///etc/passwd"}}, 400, "http://"),
        ({"method": {"name": "web-download", "uri": "http://x/", "n": 1}, "stores": ["nope"]},
         409, "unknown store 'nope'"),
        ({"method": {"name": "web-download", "uri": "http://x/"}, "stores": ["file"],
          "all_stores": True}, 400, "all_stores"),
        ({"method": {"name": "web-download", "uri": "http://x/"}, "stores": []}, 400, "stores"),
        ({"method": {"name": "web-download", "uri": "http://x/"}, "all_stores_must_succeed": 1},
         400, "boolean"),
        ({"method": "web-download"}, 400, "'method' object"),
        ([], 400, "JSON object"),
    ],
)  # fmt: skip
def test_wrong_requests(tank: Tank, body: Any, status: int, fragment: str) -> None:
    image = tank.create()
    assert fragment in error_of(tank.import_(image["id"], body), status)
    shown = tank.show(image["id"])
    assert shown["status"] == "queued"
    assert not [k for k in shown if k.startswith("os_glance")]


def test_wrong_status_and_missing_images(tank: Tank, web: Any) -> None:
    web.files["/image.raw"] = DATA
    active = tank.create()
    assert tank.stage(active["id"], DATA).status_code == 204
    uploading = {"method": {"name": "web-download", "uri": web.url("/image.raw")}}
    assert "needs an image that is queued" in error_of(tank.import_(active["id"], uploading), 409)
    assert tank.import_(active["id"], {"method": {"name": "glance-direct"}}).status_code == 202
    tank.settled(active["id"])
    assert "active" in error_of(tank.import_(active["id"], uploading), 409)
    assert "queued" in error_of(tank.stage(active["id"], DATA), 409)
    no_format = tank.create(disk_format=None, container_format=None)
    assert "_format" in error_of(tank.import_(no_format["id"], uploading), 409)
    missing = "00000000-0000-4000-8000-000000000000"
    assert tank.import_(missing, uploading).status_code == 404
    assert tank.stage(missing, b"x").status_code == 404


def test_private_addresses_are_refused_unless_allowed(start_tank: Any, web: Any) -> None:
    tank = start_tank("allow_private_networks = false")
    web.files["/image.raw"] = DATA
    image = tank.create(name="ssrf")
    literal = {"method": {"name": "web-download", "uri": web.url("/image.raw")}}
    assert "allow_private_networks" in error_of(tank.import_(image["id"], literal), 400)
    assert tank.show(image["id"])["status"] == "queued"
    # a name is resolved when fetched: refused then, and recorded
    port = web.server_address[1]
    named = {"method": {"name": "web-download", "uri": f"http://localhost:{port}/image.raw"}}
    assert tank.import_(image["id"], named).status_code == 202
    failed = tank.settled(image["id"])
    assert failed["status"] == "queued"
    assert "private networks is disabled" in failed["os_glance_failed_import_reason"]
    assert tank.files("file") == [] and tank.staged() == []


def test_the_configured_multihash_is_used(start_tank: Any, web: Any) -> None:
    tank = start_tank('[api]\nhashing_algorithm = "sha512"')
    web.files["/image.raw"] = DATA
    for method in ("glance-direct", "web-download"):
        image = tank.create(name=method)
        body: dict[str, Any] = {"method": {"name": method}, "stores": ["file", "second"]}
        if method == "glance-direct":
            assert tank.stage(image["id"], DATA).status_code == 204
        else:
            body["method"]["uri"] = web.url("/image.raw")
        assert tank.import_(image["id"], body).status_code == 202
        done = tank.settled(image["id"])
        assert done["status"] == "active", done
        assert done["os_hash_algo"] == "sha512"
        assert done["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
        assert done["stores"] == "file,second"
