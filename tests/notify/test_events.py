"""Tank's events through a real tank-api, as Glance sends them: every event type of the
v1 and v2 operations, each payload with exactly Glance's keys and the image's values,
and no success event for a change that failed."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.testing.api_server import ApiServer

from .receiver import Receiver

#: glance/notifier.py format_image_notification
IMAGE_KEYS = {
    "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected",
    "checksum", "owner", "disk_format", "container_format", "size", "virtual_size",
    "is_public", "visibility", "properties", "tags", "deleted", "deleted_at",
}  # fmt: skip
#: ImageProxy._format_import_properties, added to image.prepare and image.upload
IMPORT_KEYS = {"os_glance_importing_to_stores", "os_glance_failed_import"}
#: ImageProxy._format_image_send
SEND_KEYS = {"bytes_sent", "image_id", "owner_id", "receiver_tenant_id", "receiver_user_id"}
#: format_image_member_notification
MEMBER_KEYS = {
    "image_id",
    "member_id",
    "status",
    "created_at",
    "updated_at",
    "deleted",
    "deleted_at",
}
MESSAGE_KEYS = {"message_id", "publisher_id", "event_type", "priority", "payload", "timestamp"}
OCTET = {"Content-Type": "application/octet-stream"}


def who(tenant: str, user: str, *roles: str) -> dict[str, str]:
    return {
        "X-Identity-Status": "Confirmed",
        "X-Project-Id": tenant,
        "X-User-Id": user,
        "X-Roles": ",".join(roles or ("member",)),
    }


ALICE = who("alice", "alice-user")
BOB = who("bob", "bob-user")


def about(image_id: str) -> Callable[[dict[str, Any]], bool]:
    def check(event: dict[str, Any]) -> bool:
        payload = event["payload"]
        if isinstance(payload, str):
            return image_id in payload
        return image_id in (payload.get("id"), payload.get("image_id"))

    return check


def sequence(events: list[dict[str, Any]], image_id: str) -> list[str]:
    """``event_type`` (``:ERROR`` for ERROR events) of the events about one image."""
    mine = filter(about(image_id), events)
    return [e["event_type"] + (":ERROR" if e["priority"] == "ERROR" else "") for e in mine]


def check_image_payload(payload: dict[str, Any], shown: dict[str, Any]) -> None:
    """The payload against the image as ``GET /v2/images/<id>`` shows it."""
    assert set(payload) - IMPORT_KEYS - {"backend"} == IMAGE_KEYS
    for key in ("id", "name", "status", "checksum", "owner", "disk_format", "container_format",
                "size", "virtual_size", "min_disk", "min_ram", "protected", "visibility",
                "created_at"):  # fmt: skip
        assert payload[key] == shown[key], key
    assert payload["is_public"] is (shown["visibility"] == "public")
    assert sorted(payload["tags"]) == sorted(shown["tags"])
    assert payload["created_at"].endswith("Z") and "T" in payload["created_at"]


@pytest.fixture
def api(notifying_api: Callable[..., ApiServer]) -> ApiServer:
    return notifying_api("--auth")


def test_v2_lifecycle_events_and_payloads(api: ApiServer, receiver: Receiver) -> None:
    v2 = api.url + "/v2"
    data = os.urandom(300_000)
    body = {
        "name": "events-v2",
        "disk_format": "raw",  # random bytes: the format inspection takes them as raw
        "container_format": "bare",
        "visibility": "shared",
        "tags": ["a"],
        "os_distro": "cirros",
    }
    image = requests.post(v2 + "/images", json=body, headers=ALICE, timeout=10).json()
    iid = image["id"]
    assert (
        requests.put(
            f"{v2}/images/{iid}/file", data=data, headers={**ALICE, **OCTET}, timeout=10
        ).status_code
        == 204
    )
    got = requests.get(f"{v2}/images/{iid}/file", headers=BOB, timeout=10)
    assert got.status_code == 404  # not shared with bob yet: no download, no image.send
    assert (
        requests.post(
            f"{v2}/images/{iid}/members", json={"member": "bob"}, headers=ALICE, timeout=10
        ).status_code
        == 200
    )
    assert (
        requests.put(
            f"{v2}/images/{iid}/members/bob", json={"status": "accepted"}, headers=BOB, timeout=10
        ).status_code
        == 200
    )
    got = requests.get(f"{v2}/images/{iid}/file", headers=BOB, timeout=10)
    assert got.content == data
    ranged = requests.get(
        f"{v2}/images/{iid}/file", headers={**ALICE, "Range": "bytes=10-109"}, timeout=10
    )
    assert ranged.status_code == 206 and ranged.content == data[10:110]
    patch = [{"op": "replace", "path": "/name", "value": "renamed"}]
    headers = {**ALICE, "Content-Type": "application/openstack-images-v2.1-json-patch"}
    assert (
        requests.patch(f"{v2}/images/{iid}", json=patch, headers=headers, timeout=10).status_code
        == 200
    )
    refused = requests.patch(
        f"{v2}/images/{iid}", json=patch, headers={**headers, **BOB}, timeout=10
    )
    assert refused.status_code in (403, 404)  # a change that was refused: no event
    assert requests.put(f"{v2}/images/{iid}/tags/b", headers=ALICE, timeout=10).status_code == 204
    assert (
        requests.post(
            f"{v2}/images/{iid}/actions/deactivate", headers=ALICE, timeout=10
        ).status_code
        == 204
    )
    assert (
        requests.post(
            f"{v2}/images/{iid}/actions/reactivate", headers=ALICE, timeout=10
        ).status_code
        == 204
    )
    shown = requests.get(f"{v2}/images/{iid}", headers=ALICE, timeout=10).json()
    assert (
        requests.delete(f"{v2}/images/{iid}/members/bob", headers=ALICE, timeout=10).status_code
        == 204
    )
    assert requests.delete(f"{v2}/images/{iid}", headers=ALICE, timeout=10).status_code == 204

    events = receiver.wait_for(lambda got: "image.delete" in sequence(got, iid))
    assert sequence(events, iid) == [
        "image.create",
        "image.update",  # saving
        "image.prepare",
        "image.upload",
        "image.activate",
        "image.update",  # active
        "image.member.create",
        "image.member.update",  # accepted
        "image.send",  # bob's download
        "image.send",  # alice's range
        "image.update",  # renamed (bob's refused patch: nothing)
        "image.update",  # tag b
        "image.update",  # deactivated
        "image.update",  # reactivated
        "image.member.delete",
        "image.delete",
    ]
    mine = [e for e in events if about(iid)(e)]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in mine:
        assert set(event) == MESSAGE_KEYS
        assert event["publisher_id"] == "image.localhost" and event["priority"] == "INFO"
        uuid.UUID(event["message_id"])
        by_type.setdefault(event["event_type"], []).append(event["payload"])
    assert len({e["message_id"] for e in mine}) == len(mine)

    create = by_type["image.create"][0]
    assert create["status"] == "queued" and create["size"] is None and create["checksum"] is None
    assert create["properties"] == {"os_distro": "cirros"} and create["tags"] == ["a"]
    assert create["deleted"] is False and create["deleted_at"] is None
    prepare = by_type["image.prepare"][0]
    assert set(prepare) == IMAGE_KEYS | IMPORT_KEYS | {"backend"}
    assert prepare["status"] == "saving" and prepare["backend"] == "file"
    assert prepare["os_glance_importing_to_stores"] == prepare["os_glance_failed_import"] == []
    assert by_type["image.update"][0]["status"] == "saving"
    assert "os_glance_upload_heartbeat" not in by_type["image.update"][0]["properties"]
    upload = by_type["image.upload"][0]
    assert set(upload) == IMAGE_KEYS | IMPORT_KEYS
    assert upload["status"] == "active" and upload["size"] == len(data)
    assert upload["checksum"] == hashlib.md5(data).hexdigest()
    assert by_type["image.activate"][0]["status"] == "active"
    statuses = [p["status"] for p in by_type["image.update"]]
    assert statuses == ["saving", "active", "active", "active", "deactivated", "active"]
    renamed = by_type["image.update"][2]
    assert renamed["name"] == "renamed" and renamed["updated_at"] >= create["updated_at"]
    assert sorted(by_type["image.update"][3]["tags"]) == ["a", "b"]
    check_image_payload(by_type["image.update"][-1], shown)

    sends = by_type["image.send"]
    assert [set(s) for s in sends] == [SEND_KEYS, SEND_KEYS]
    assert sends[0] == {
        "bytes_sent": len(data),
        "image_id": iid,
        "owner_id": "alice",
        "receiver_tenant_id": "bob",
        "receiver_user_id": "bob-user",
    }
    assert sends[1]["bytes_sent"] == 100 and sends[1]["receiver_tenant_id"] == "alice"

    members = by_type["image.member.create"] + by_type["image.member.update"]
    for payload in members + by_type["image.member.delete"]:
        assert set(payload) == MEMBER_KEYS
        assert payload["image_id"] == iid and payload["member_id"] == "bob"
    assert [p["status"] for p in members] == ["pending", "accepted"]
    assert members[0]["deleted"] is False and members[0]["deleted_at"] is None
    gone = by_type["image.member.delete"][0]
    assert gone["deleted"] is True and gone["deleted_at"].endswith("Z")

    deleted = by_type["image.delete"][0]
    assert set(deleted) == IMAGE_KEYS
    assert deleted["deleted"] is True and deleted["deleted_at"].endswith("Z")
    assert deleted["status"] == "deleted" and deleted["name"] == "renamed"


def test_v1_lifecycle_events(api: ApiServer, receiver: Receiver) -> None:
    v1 = api.url + "/v1"
    data = os.urandom(50_000)
    meta = {
        "x-image-meta-name": "events-v1",
        "x-image-meta-disk_format": "raw",
        "x-image-meta-container_format": "bare",
        "x-image-meta-property-os_distro": "debian",
    }
    created = requests.post(
        v1 + "/images", data=data, headers={**ALICE, **meta, **OCTET}, timeout=10
    )
    assert created.status_code == 201, created.text
    iid = created.json()["image"]["id"]
    assert (
        requests.put(
            f"{v1}/images/{iid}", headers={**ALICE, "x-image-meta-name": "v1-renamed"}, timeout=10
        ).status_code
        == 200
    )
    assert (
        requests.put(f"{v1}/images/{iid}/members/bob", headers=ALICE, timeout=10).status_code == 204
    )
    assert (
        requests.put(
            f"{v1}/images/{iid}/members/bob",
            json={"member": {"can_share": True}},
            headers=ALICE,
            timeout=10,
        ).status_code
        == 204
    )
    assert requests.get(f"{v1}/images/{iid}", headers=ALICE, timeout=10).content == data
    assert (
        requests.delete(f"{v1}/images/{iid}/members/bob", headers=ALICE, timeout=10).status_code
        == 204
    )
    assert requests.delete(f"{v1}/images/{iid}", headers=ALICE, timeout=10).status_code == 200

    events = receiver.wait_for(lambda got: "image.delete" in sequence(got, iid))
    assert sequence(events, iid) == [
        "image.create",
        "image.update",
        "image.prepare",
        "image.upload",
        "image.activate",
        "image.update",
        "image.update",  # renamed
        "image.member.create",
        "image.member.update",  # can_share
        "image.send",
        "image.member.delete",
        "image.delete",
    ]
    by_type = {e["event_type"]: e["payload"] for e in events if about(iid)(e)}
    assert by_type["image.upload"]["checksum"] == hashlib.md5(data).hexdigest()
    assert by_type["image.upload"]["properties"] == {"os_distro": "debian"}
    assert by_type["image.send"]["bytes_sent"] == len(data)


def test_failed_uploads_send_glance_s_error_event_and_no_success(
    api: ApiServer, receiver: Receiver
) -> None:
    v2, v1 = api.url + "/v2", api.url + "/v1"
    body = {"name": "short", "disk_format": "raw", "container_format": "bare"}
    image = requests.post(v2 + "/images", json=body, headers=ALICE, timeout=10).json()
    short = requests.put(
        f"{v2}/images/{image['id']}/file",
        data=b"abc",
        headers={**ALICE, **OCTET, "x-openstack-image-size": "10"},
        timeout=10,
    )
    assert short.status_code == 400
    meta = {
        "x-image-meta-name": "v1-short",
        "x-image-meta-disk_format": "raw",
        "x-image-meta-container_format": "bare",
        "x-image-meta-size": "10",
    }
    v1_short = requests.post(
        v1 + "/images", data=b"abc", headers={**ALICE, **meta, **OCTET}, timeout=10
    )
    assert v1_short.status_code == 400
    # the same id again: the registry refuses it (409), so no second image.create
    again = requests.post(
        v2 + "/images", json={**body, "id": image["id"]}, headers=ALICE, timeout=10
    )
    assert again.status_code == 409
    marker = requests.post(
        v2 + "/images", json={**body, "name": "marker"}, headers=ALICE, timeout=10
    ).json()

    events = receiver.wait_for(lambda got: "image.create" in sequence(got, marker["id"]))
    assert sequence(events, image["id"]) == [
        "image.create",
        "image.update",
        "image.prepare",
        "image.upload:ERROR",
        "image.update",  # queued again (v2)
    ]
    error = next(e for e in events if e["priority"] == "ERROR" and about(image["id"])(e))
    assert isinstance(error["payload"], str) and image["id"] in error["payload"]
    update = [e for e in events if about(image["id"])(e)][-1]["payload"]
    assert update["status"] == "queued" and update["size"] is None
    v1_events = [
        e
        for e in events
        if e["payload"] != error["payload"]
        and isinstance(e["payload"], dict)
        and e["payload"].get("name") == "v1-short"
    ]
    assert [e["event_type"] for e in v1_events] == [
        "image.create",
        "image.update",
        "image.prepare",
        "image.update",
    ]
    assert v1_events[-1]["payload"]["status"] == "killed"
    v1_id = v1_events[0]["payload"]["id"]
    assert sequence(events, v1_id) == [
        "image.create",
        "image.update",
        "image.prepare",
        "image.upload:ERROR",
        "image.update",  # killed (v1)
    ]


def test_a_download_the_client_abandons_sends_image_send_at_error(
    api: ApiServer, receiver: Receiver
) -> None:
    """Glance's image.send at ERROR priority: fewer bytes went out than announced."""
    v2 = api.url + "/v2"
    size = 64 << 20
    body = {"name": "abandoned", "disk_format": "raw", "container_format": "bare"}
    image = requests.post(v2 + "/images", json=body, headers=ALICE, timeout=10).json()
    put = requests.put(
        f"{v2}/images/{image['id']}/file",
        data=iter([b"\0" * (1 << 20)] * 64),
        headers={**ALICE, **OCTET},
        timeout=30,
    )
    assert put.status_code == 204
    head = f"GET /v2/images/{image['id']}/file HTTP/1.1\r\nHost: x\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in ALICE.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(head.encode())
        got = sock.recv(1 << 16)
        assert got.startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    events = receiver.wait_for(lambda got: "image.send:ERROR" in sequence(got, image["id"]))
    send = next(e for e in events if e["event_type"] == "image.send")
    assert send["priority"] == "ERROR" and send["payload"]["bytes_sent"] < size


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        data = IMPORTED if self.path == "/image.raw" else None
        self.send_response(200 if data else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, format: str, *args: Any) -> None:
        pass


IMPORTED = os.urandom(70_000)


def test_web_download_imports_send_upload_events_and_errors(
    notifying_api: Callable[..., ApiServer], receiver: Receiver
) -> None:
    api = notifying_api("--auth", more="[import]\nallow_private_networks = true\n")
    files = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files.server_address[1]}"
    v2 = api.url + "/v2"
    body = {"disk_format": "raw", "container_format": "bare"}
    try:
        ids = []
        for name, path in (("imported", "/image.raw"), ("missing", "/nothing")):
            image = requests.post(
                v2 + "/images", json={**body, "name": name}, headers=ALICE, timeout=10
            ).json()
            started = requests.post(
                f"{v2}/images/{image['id']}/import",
                json={"method": {"name": "web-download", "uri": base + path}},
                headers=ALICE,
                timeout=10,
            )
            assert started.status_code == 202, started.text
            ids.append(image["id"])
        good, bad = ids
        events = receiver.wait_for(
            lambda got: (  # the import's start is an image.update too
                sequence(got, good)[-2:] == ["image.activate", "image.update"]
                and sequence(got, bad)[-2:] == ["image.upload:ERROR", "image.update"]
            )
        )
    finally:
        files.shutdown()
        files.server_close()
    assert sequence(events, good) == [
        "image.create", "image.update", "image.prepare", "image.upload", "image.activate",
        "image.update",
    ]  # fmt: skip
    started_update = [e["payload"] for e in events if about(good)(e)][1]
    assert started_update["status"] == "importing"
    prepare = next(e["payload"] for e in events if e["event_type"] == "image.prepare"
                   and about(good)(e))  # fmt: skip
    assert set(prepare) == IMAGE_KEYS | IMPORT_KEYS | {"backend"}  # as an upload's
    assert (prepare["status"], prepare["backend"], prepare["size"]) == ("importing", "file", None)
    assert prepare["os_glance_importing_to_stores"] == ["file"]
    assert prepare["os_glance_failed_import"] == []
    upload = next(e["payload"] for e in events if e["event_type"] == "image.upload"
                  and about(good)(e))  # fmt: skip
    assert upload["checksum"] == hashlib.md5(IMPORTED).hexdigest()
    # the download failed: nothing was written to a store, so no image.prepare
    assert sequence(events, bad) == [
        "image.create", "image.update", "image.upload:ERROR", "image.update",
    ]  # fmt: skip
    restored = [e["payload"] for e in events if about(bad)(e)][-1]
    assert restored["status"] == "queued"
    assert restored["properties"]["os_glance_failed_import"] == "file"


def test_imports_send_image_prepare_and_upload_once_per_store(
    notifying_api: Callable[..., ApiServer], receiver: Receiver, tmp_path: Path
) -> None:
    """Glance's import saves the image as it starts (``image.update``) and sets the data
    store by store through its notifying proxy: an ``image.prepare`` before and an
    ``image.upload`` after each store's write, the stores still to do listed in each;
    copy-image too (its image stays active: no image.activate)."""
    stores = "".join(
        f'[stores.{name}]\ntype = "file"\ndatadir = "{tmp_path / name}"\n'
        for name in ("file", "second", "third")
    )
    api = notifying_api(
        "--auth",
        more='[import]\nallow_private_networks = true\nmethods = ["web-download", "copy-image"]\n'
        + stores,
    )
    files = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    v2 = api.url + "/v2"
    admin = who("admin", "admin-user", "admin")
    body = {"name": "stores", "disk_format": "raw", "container_format": "bare"}
    try:
        iid = requests.post(v2 + "/images", json=body, headers=ALICE, timeout=10).json()["id"]
        uri = f"http://127.0.0.1:{files.server_address[1]}/image.raw"
        started = requests.post(
            f"{v2}/images/{iid}/import",
            json={"method": {"name": "web-download", "uri": uri}, "stores": ["file", "second"]},
            headers=ALICE,
            timeout=10,
        )
        assert started.status_code == 202, started.text
        receiver.wait_for(lambda got: "image.activate" in sequence(got, iid))
    finally:
        files.shutdown()
        files.server_close()
    copy = {"method": {"name": "copy-image"}, "stores": ["third"]}
    started = requests.post(f"{v2}/images/{iid}/import", json=copy, headers=admin, timeout=10)
    assert started.status_code == 202, started.text
    events = receiver.wait_for(lambda got: sequence(got, iid).count("image.upload") == 3)

    assert sequence(events, iid) == [
        "image.create",
        "image.update",  # importing
        "image.prepare",  # file
        "image.upload",
        "image.prepare",  # second
        "image.upload",
        "image.activate",
        "image.update",
        "image.update",  # copy-image starts
        "image.prepare",  # third
        "image.upload",
    ]
    prepares = [
        e["payload"] for e in events if e["event_type"] == "image.prepare" and about(iid)(e)
    ]
    for payload in prepares:
        assert set(payload) == IMAGE_KEYS | IMPORT_KEYS | {"backend"}
        assert payload["os_glance_failed_import"] == []
        assert (payload["disk_format"], payload["container_format"]) == ("raw", "bare")
    assert [(p["backend"], p["status"], p["os_glance_importing_to_stores"]) for p in prepares] == [
        ("file", "importing", ["file", "second"]),
        ("second", "importing", ["second"]),
        ("third", "active", ["third"]),
    ]
    assert prepares[2]["checksum"] == hashlib.md5(IMPORTED).hexdigest()
    uploads = [e["payload"] for e in events if e["event_type"] == "image.upload" and about(iid)(e)]
    for payload in uploads:
        assert set(payload) == IMAGE_KEYS | IMPORT_KEYS  # as an upload's: no backend
        assert payload["checksum"] == hashlib.md5(IMPORTED).hexdigest()
    # each as recorded once its store holds the data: that store no longer to do
    assert [(p["status"], p["os_glance_importing_to_stores"]) for p in uploads] == [
        ("importing", ["second"]),
        ("importing", []),
        ("active", []),
    ]
    copying = [e["payload"] for e in events if about(iid)(e)][8]
    assert copying["status"] == "active"
    assert copying["properties"]["os_glance_importing_to_stores"] == "third"
