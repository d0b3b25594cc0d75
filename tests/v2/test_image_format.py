"""Image format inspection on upload (issue #15, OSSA-2024-001): real disk images made by
qemu-img, uploaded through v1 (400, killed), v2 (415, queued again, as Glance) and
python-glanceclient, staged and imported; whatever is refused leaves no data in a store.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import glanceclient.exc
import pytest
import requests

from tank.testing.api_server import ApiServer

from .conftest import Caller, Http, glance, start_tank, stop_checked, stored_files
from .test_import import Source, settled

MIB = 1 << 20

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="qemu-img (Debian qemu-utils) is not installed"
)


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def iso9660() -> bytes:
    """An ISO 9660 image as far as any reader looks: 16 empty system-area sectors, a
    primary volume descriptor (``CD001``, 16 blocks of 2048 bytes), the terminator."""
    pvd = bytearray(2048)
    pvd[0:7] = b"\x01CD001\x01"
    pvd[80:88] = struct.pack("<I", 16) + struct.pack(">I", 16)  # volume space size
    pvd[128:132] = struct.pack("<H", 2048) + struct.pack(">H", 2048)  # block size
    end = bytearray(2048)
    end[0:7] = b"\xffCD001\x01"
    return bytes(32 * 1024) + bytes(pvd) + bytes(end) + bytes(12 * 2048)


def vmdk_pointing_at(sparse: bytes, target: str) -> bytes:
    """A monolithicSparse VMDK made by qemu-img whose embedded descriptor now names
    ``target`` as a flat extent (qemu-img 7 ignores it in a sparse file; a reader that
    did not would read ``target`` into the image, so it is refused all the same)."""
    sector, sectors = struct.unpack_from("<QQ", sparse, 28)  # where the descriptor is
    start, end = sector * 512, (sector + sectors) * 512
    descriptor = sparse[start : sparse.index(b"\x00", start)].decode()
    line = next(x for x in descriptor.splitlines() if x.startswith("RW "))
    changed = descriptor.replace(line, f'RW 2048 FLAT "{target}" 0').encode()
    return sparse[:start] + changed + bytes(end - start - len(changed)) + sparse[end:]


#: A text-only VMDK descriptor (qemu-img reads such a file) whose extent is a host file.
FLAT_DESCRIPTOR = b"""# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

RW 2048 FLAT "/etc/passwd" 0

ddb.virtualHWVersion = "4"
"""


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real images of each format (1 MiB virtual), and the dangerous ones."""
    tmp = tmp_path_factory.mktemp("disks")
    made: dict[str, bytes] = {}
    for name, fmt in [("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vhdx", "vhdx"),
                      ("vhd", "vpc"), ("vdi", "vdi")]:  # fmt: skip
        path = tmp / f"disk.{name}"
        qemu_img("create", "-q", "-f", fmt, str(path), "1M")
        made[name] = path.read_bytes()
    backed = tmp / "backed.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", str(backed), "1M")
    made["qcow2-backing-file"] = backed.read_bytes()
    data_file = tmp / "datafile.qcow2"
    option = f"data_file={tmp / 'ext.raw'}"
    qemu_img("create", "-q", "-f", "qcow2", "-o", option, str(data_file), "1M")
    made["qcow2-data-file"] = data_file.read_bytes()
    made["vmdk-extent-passwd"] = vmdk_pointing_at(made["vmdk"], "/etc/passwd")
    made["vmdk-flat-descriptor"] = FLAT_DESCRIPTOR
    made["iso"] = iso9660()
    made["raw"] = bytes(range(256)) * 4096 + b"tail"
    return made


def test_the_flat_descriptor_is_what_qemu_img_would_follow(
    disks: dict[str, bytes], tmp_path: Path
) -> None:
    """The test image is the real danger: qemu-img reads /etc/passwd as its extent."""
    path = tmp_path / "evil.vmdk"
    path.write_bytes(disks["vmdk-flat-descriptor"])
    info = subprocess.run(
        ["qemu-img", "info", "-f", "vmdk", "--output=json", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "/etc/passwd" in info.stdout + info.stderr


@pytest.fixture(scope="module")
def tank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = start_tank(
        tmp_path_factory.mktemp("tank-format"), "\n[import]\nallow_private_networks = true\n"
    )
    yield server
    stop_checked(server)


@pytest.fixture(scope="module")
def lax(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """Glance's escape hatch: mismatches allowed, safety checks still enforced."""
    server = start_tank(
        tmp_path_factory.mktemp("tank-lax"),
        "\n[image_format]\nrequire_image_format_match = false\n",
    )
    yield server
    stop_checked(server)


@pytest.fixture(scope="module")
def owner() -> Caller:
    return Caller(project="format-tests")


def v1_create(  # type: ignore[no-untyped-def]
    server: ApiServer, caller: Caller, data: bytes, disk: str, container: str = "bare", **more: str
):
    headers = {
        **caller.headers(),
        **more,
        "x-image-meta-name": "fmt",
        "x-image-meta-disk_format": disk,
        "x-image-meta-container_format": container,
        "Content-Type": "application/octet-stream",
    }
    return requests.post(f"{server.url}/v1/images", headers=headers, data=data, timeout=30)


def v1_status(server: ApiServer, caller: Caller, image_id: str) -> str:
    resp = requests.head(f"{server.url}/v1/images/{image_id}", headers=caller.headers(), timeout=10)
    return resp.headers["x-image-meta-status"]


def v2_upload(  # type: ignore[no-untyped-def]
    server: ApiServer, caller: Caller, data: bytes, disk: str, container: str = "bare"
):
    http = Http(server, caller)
    image = http.create(name="fmt", disk_format=disk, container_format=container)
    resp = http("PUT", f"/v2/images/{image['id']}/file", data=data,
                headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    return resp, http.image(image["id"])


def all_stored(server: ApiServer) -> list[Path]:
    return stored_files(server, "fast") + stored_files(server, "slow")


GOOD = [
    ("qcow2", "qcow2"),
    ("vmdk", "vmdk"),
    ("vhdx", "vhdx"),
    ("vhd", "vhd"),
    ("vdi", "vdi"),
    ("iso", "iso"),
    ("raw", "raw"),
]


@pytest.mark.parametrize("disk,fmt", GOOD)
def test_images_of_their_disk_format_are_accepted(
    tank: ApiServer, owner: Caller, disks: dict[str, bytes], disk: str, fmt: str
) -> None:
    resp = v1_create(tank, owner, disks[disk], fmt)
    assert resp.status_code == 201, resp.text
    assert resp.json()["image"]["status"] == "active"
    resp, image = v2_upload(tank, owner, disks[disk], fmt)
    assert resp.status_code == 204, resp.text
    assert image["status"] == "active" and image["size"] == len(disks[disk])
    if fmt not in ("iso", "raw"):
        assert image["virtual_size"] in (MIB, 1079296)  # vhd rounds up to its geometry
    elif fmt == "raw":
        assert image["virtual_size"] == len(disks["raw"])
    got = Http(tank, owner)("GET", f"/v2/images/{image['id']}/file")
    assert got.content == disks[disk]


#: (data, disk_format, what the message must say)
REFUSED = [
    ("qcow2", "vmdk", "image data is qcow2 but disk_format is vmdk"),
    ("raw", "qcow2", "image data is raw but disk_format is qcow2"),
    ("vmdk", "qcow2", "image data is vmdk but disk_format is qcow2"),
    ("vhd", "vhdx", "image data is vhd but disk_format is vhdx"),
    ("iso", "qcow2", "image data is iso but disk_format is qcow2"),
    ("raw", "iso", "image data is raw but disk_format is iso"),
    ("qcow2", "ploop", "image data is qcow2 but disk_format is ploop"),
    ("qcow2-backing-file", "qcow2", "Image has a backing file"),
    ("qcow2-backing-file", "raw", "Image has a backing file"),  # raw takes any data, but
    ("qcow2-data-file", "qcow2", "Image has data_file set"),  # not an unsafe one
    ("vmdk-extent-passwd", "vmdk", "Invalid extent filenames found"),
    ("vmdk-flat-descriptor", "vmdk", "Unsupported subformat"),
    ("vmdk-flat-descriptor", "raw", "Unsupported subformat"),
]


@pytest.mark.parametrize("disk,fmt,message", REFUSED)
def test_v1_refuses_with_400_kills_and_keeps_nothing(
    tank: ApiServer, owner: Caller, disks: dict[str, bytes], disk: str, fmt: str, message: str
) -> None:
    before = all_stored(tank)
    image_id = str(uuid.uuid4())
    resp = v1_create(tank, owner, disks[disk], fmt, **{"x-image-meta-id": image_id})
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]["message"]
    assert v1_status(tank, owner, image_id) == "killed"
    assert all_stored(tank) == before


@pytest.mark.parametrize("disk,fmt,message", REFUSED)
def test_v2_refuses_with_415_requeues_and_keeps_nothing(
    tank: ApiServer, owner: Caller, disks: dict[str, bytes], disk: str, fmt: str, message: str
) -> None:
    before = all_stored(tank)
    resp, image = v2_upload(tank, owner, disks[disk], fmt)
    assert resp.status_code == 415, resp.text
    assert message in resp.text
    assert image["status"] == "queued" and image["size"] is None
    assert all_stored(tank) == before


def test_the_image_can_be_uploaded_again_with_the_right_data(
    tank: ApiServer, owner: Caller, disks: dict[str, bytes]
) -> None:
    resp, image = v2_upload(tank, owner, disks["raw"], "qcow2")
    assert resp.status_code == 415
    http = Http(tank, owner)
    path = f"/v2/images/{image['id']}/file"
    octets = {"Content-Type": "application/octet-stream"}
    again = http("PUT", path, data=disks["qcow2"], headers=octets)
    assert again.status_code == 204, again.text
    assert http.image(image["id"])["status"] == "active"


@pytest.mark.parametrize(
    "disk,fmt,container",
    [
        ("raw", "ami", "ami"),  # ami/ari/aki: never bare (Tank's model), so not inspected
        ("qcow2", "ari", "ari"),
        ("raw", "ploop", "bare"),  # nothing recognised: fine for a format none can inspect
        ("qcow2", "raw", "bare"),  # raw takes any safe data (Glance's rule)
        ("iso", "raw", "bare"),
        ("raw", "qcow2", "ova"),  # what is inside an ova is not a bare disk image
    ],
)
def test_exempt_combinations_are_accepted(
    tank: ApiServer, owner: Caller, disks: dict[str, bytes], disk: str, fmt: str, container: str
) -> None:
    resp = v1_create(tank, owner, disks[disk], fmt, container)
    assert resp.status_code == 201, resp.text
    resp, image = v2_upload(tank, owner, disks[disk], fmt, container)
    assert resp.status_code == 204, resp.text
    assert image["status"] == "active"


def test_v1_data_without_formats_is_checked_as_raw(
    tank: ApiServer, owner: Caller, disks: dict[str, bytes]
) -> None:
    """v1 takes data before the formats are set: any format then, but only a safe one."""
    headers = {**owner.headers(), "x-image-meta-name": "unformatted",
               "Content-Type": "application/octet-stream"}  # fmt: skip
    ok = requests.post(f"{tank.url}/v1/images", headers=headers, data=disks["vmdk"], timeout=30)
    assert ok.status_code == 201, ok.text
    assert ok.json()["image"]["disk_format"] is None
    before = all_stored(tank)
    bad = requests.post(
        f"{tank.url}/v1/images", headers=headers, data=disks["qcow2-backing-file"], timeout=30
    )
    assert bad.status_code == 400 and "Image has a backing file" in bad.text
    assert all_stored(tank) == before


def test_short_data_is_raw(tank: ApiServer, owner: Caller, disks: dict[str, bytes]) -> None:
    """Too short for any header: raw, so it passes as raw and fails as qcow2 (even when
    it starts with qcow2's magic)."""
    assert v1_create(tank, owner, b"QFI\xfb", "raw").status_code == 201
    assert v1_create(tank, owner, b"", "raw").status_code == 201
    resp = v1_create(tank, owner, disks["qcow2"][:50], "qcow2")
    assert resp.status_code == 400
    assert "image data is raw but disk_format is qcow2" in resp.json()["error"]["message"]


def test_glanceclient_upload_of_a_backed_qcow2_is_refused(
    tank: ApiServer, owner: Caller, disks: dict[str, bytes]
) -> None:
    gc = glance(tank.url, owner)
    before = all_stored(tank)
    image = gc.images.create(name="evil", disk_format="qcow2", container_format="bare")
    # python-glanceclient has no class of its own for 415 (Glance's answer too)
    with pytest.raises(glanceclient.exc.HTTPException) as caught:
        gc.images.upload(image.id, io.BytesIO(disks["qcow2-backing-file"]))
    assert "Image has a backing file" in str(caught.value)
    assert gc.images.get(image.id).status == "queued"
    assert all_stored(tank) == before


def test_require_image_format_match_off_lets_mismatches_through_but_not_unsafe_data(
    lax: ApiServer, owner: Caller, disks: dict[str, bytes]
) -> None:
    resp, image = v2_upload(lax, owner, disks["qcow2"], "vmdk")
    assert resp.status_code == 204, resp.text
    assert image["status"] == "active"
    resp, image = v2_upload(lax, owner, disks["qcow2-backing-file"], "qcow2")
    assert resp.status_code == 415
    assert "Image has a backing file" in resp.text
    resp, image = v2_upload(lax, owner, disks["qcow2-backing-file"], "vmdk")  # mismatched too
    assert resp.status_code == 415 and "Image has a backing file" in resp.text
    resp = v1_create(lax, owner, disks["vmdk-extent-passwd"], "vmdk")
    assert resp.status_code == 400
    assert "Invalid extent filenames found" in resp.json()["error"]["message"]


def _import_fails(http: Http, image_id: str, message: str) -> dict[str, Any]:
    shown = http.wait(image_id, settled)
    assert shown["status"] == "queued", shown
    assert shown["os_glance_failed_import"] == "fast"
    assert message in shown["os_glance_failed_import_reason"]
    return shown


def test_glance_direct_import_inspects_the_data(
    tank: ApiServer, owner: Caller, disks: dict[str, bytes]
) -> None:
    http = Http(tank, owner)
    before = all_stored(tank)
    image = http.create(name="staged", disk_format="vhdx")
    octets = {"Content-Type": "application/octet-stream"}
    # staging does not inspect (as in Glance): the import's write into the store does
    resp = http("PUT", f"/v2/images/{image['id']}/stage", data=disks["vdi"], headers=octets)
    assert resp.status_code == 204, resp.text
    body = {"method": {"name": "glance-direct"}}
    assert http("POST", f"/v2/images/{image['id']}/import", json=body).status_code == 202
    _import_fails(http, image["id"], "image data is vdi but disk_format is vhdx")
    assert all_stored(tank) == before
    # a good one goes through, with the inspector's virtual size
    image = http.create(name="staged", disk_format="vdi")
    assert http("PUT", f"/v2/images/{image['id']}/stage", data=disks["vdi"], headers=octets).ok
    assert http("POST", f"/v2/images/{image['id']}/import", json=body).status_code == 202
    shown = http.wait(image["id"], settled)
    assert shown["status"] == "active" and shown["virtual_size"] == MIB


def test_web_download_import_inspects_the_data(
    tank: ApiServer, owner: Caller, disks: dict[str, bytes]
) -> None:
    source = Source(disks["qcow2-data-file"])
    try:
        http = Http(tank, owner)
        before = all_stored(tank)
        image = http.create(name="fetched", disk_format="qcow2")
        body = {"method": {"name": "web-download", "uri": source.url}}
        assert http("POST", f"/v2/images/{image['id']}/import", json=body).status_code == 202
        _import_fails(http, image["id"], "Image has data_file set")
        assert source.requests == ["/images/disk.img"]
        assert all_stored(tank) == before
    finally:
        source.close()


def test_registered_data_is_not_inspected_but_copy_image_is(
    tank: ApiServer, disks: dict[str, bytes]
) -> None:
    """A location registered by an admin (v1 ``x-image-meta-location``) is not read on
    the way in, so it is not inspected; copying it into another store writes it, and
    that write is inspected: refused, the image stays as it was, nothing in ``slow``."""
    admin = Caller(project="format-ops", roles=("admin", "member", "reader"))
    fast = tank.data_dir.parent / "fast"
    fast.mkdir(exist_ok=True)
    (fast / "evil.qcow2").write_bytes(disks["qcow2-backing-file"])
    resp = v1_create(
        tank, admin, b"", "qcow2", **{"x-image-meta-location": f"file://{fast}/evil.qcow2"}
    )
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["image"]["id"]
    assert resp.json()["image"]["status"] == "active"
    before = stored_files(tank, "slow")
    http = Http(tank, admin)
    body = {"method": {"name": "copy-image"}, "stores": ["slow"]}
    assert http("POST", f"/v2/images/{image_id}/import", json=body).status_code == 202
    shown = http.wait(image_id, lambda i: bool(i.get("os_glance_failed_import")))
    assert shown["status"] == "active" and shown["stores"] == "fast"
    assert shown["os_glance_failed_import"] == "slow"
    assert "Image has a backing file" in shown["os_glance_failed_import_reason"]
    assert stored_files(tank, "slow") == before
