"""The image cache through a real tank-api over a real Swift store."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from tank.testing.api_server import find_script

from .conftest import CacheTank, Http, Upload, md5, tenant, upload_image


def download(http: Http, image_id: str, **headers: str) -> tuple[int, bytes, dict[str, str]]:
    resp = http("GET", f"/v2/images/{image_id}/file", headers=headers)
    return resp.status_code, resp.content, dict(resp.headers)


def test_first_download_fills_then_served_from_cache(
    cache_tank: CacheTank, http: Http, upload: Upload
) -> None:
    image_id, data = upload(3 << 20)
    assert not cache_tank.entry(image_id).exists()  # uploading does not cache
    status, body, headers = download(http, image_id)
    assert status == 200 and body == data and headers["Content-MD5"] == md5(data)
    entry = cache_tank.wait_cached(image_id)
    assert entry.read_bytes() == data
    assert not list((cache_tank.cache_dir / "incomplete").iterdir())

    cache_tank.remove_from_swift(image_id)  # only the cache has it now
    status, body, headers = download(http, image_id)
    assert status == 200 and md5(body) == md5(data) and len(body) == len(data)

    state = http("GET", "/v2/cache").json()
    (mine,) = [c for c in state["cached_images"] if c["image_id"] == image_id]
    assert mine["size"] == len(data) and mine["hits"] == 1
    assert set(mine) == {"image_id", "hits", "last_accessed", "last_modified", "size"}


def test_range_served_from_cache(cache_tank: CacheTank, http: Http, upload: Upload) -> None:
    image_id, data = upload(1 << 20)
    assert download(http, image_id)[1] == data
    cache_tank.wait_cached(image_id)
    cache_tank.remove_from_swift(image_id)
    status, body, headers = download(http, image_id, Range="bytes=1000-200999")
    assert status == 206 and body == data[1000:201000]
    assert headers["Content-Range"] == f"bytes 1000-200999/{len(data)}"
    status, body, _ = download(http, image_id, Range="bytes=-10")
    assert status == 206 and body == data[-10:]


def test_range_download_of_uncached_image_does_not_fill(
    cache_tank: CacheTank, http: Http, upload: Upload
) -> None:
    image_id, data = upload(512 * 1024)
    status, body, _ = download(http, image_id, Range="bytes=0-99")
    assert status == 206 and body == data[:100]
    time.sleep(0.3)
    assert not cache_tank.entry(image_id).exists()


def test_truncated_entry_is_never_served(cache_tank: CacheTank, http: Http, upload: Upload) -> None:
    image_id, data = upload(1 << 20)
    download(http, image_id)
    entry = cache_tank.wait_cached(image_id)
    with open(entry, "r+b") as f:
        f.truncate(1000)
    status, body, _ = download(http, image_id)  # from Swift, and cached again
    assert status == 200 and body == data
    assert cache_tank.wait_cached(image_id).stat().st_size == len(data)
    assert cache_tank.entry(image_id).read_bytes() == data
    # truncated again, with the store gone: an error, never the short copy
    with open(entry, "r+b") as f:
        f.truncate(1000)
    cache_tank.remove_from_swift(image_id)
    resp = http("GET", f"/v2/images/{image_id}/file")
    assert resp.status_code >= 500 or len(resp.content) != 1000
    assert resp.content != data[:1000]
    assert not cache_tank.entry(image_id).exists()


def test_data_not_matching_the_checksum_is_not_cached(
    cache_tank: CacheTank, http: Http, upload: Upload
) -> None:
    image_id, data = upload(256 * 1024)
    other = bytes(b ^ 0xFF for b in data)  # same size, other bytes, behind Tank's back
    cache_tank.replace_in_swift(image_id, other)
    download(http, image_id)
    time.sleep(0.5)
    assert not cache_tank.entry(image_id).exists()
    assert not list((cache_tank.cache_dir / "incomplete").iterdir())
    assert f"image cache: the data of image {image_id} read from its store has MD5" in (
        cache_tank.log()
    )


def test_concurrent_first_readers_make_one_fill(
    cache_tank: CacheTank, http: Http, upload: Upload
) -> None:
    # large enough that socket buffers cannot take the rest while the first reader waits
    image_id, data = upload(128 << 20)
    first = http.session.get(f"{http.url}/v2/images/{image_id}/file", stream=True, timeout=60)
    head = first.raw.read(1 << 20)  # the first reader is mid-download: its fill holds the claim
    incomplete = cache_tank.cache_dir / "incomplete" / image_id
    deadline = time.monotonic() + 5
    while not incomplete.exists():
        assert time.monotonic() < deadline, "the first reader started no fill"
        time.sleep(0.02)
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(download(http, image_id)[1]))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [data] * 3  # streamed from Swift, whole
    assert not cache_tank.entry(image_id).exists()  # none of them filled
    rest = first.raw.read()
    assert head + rest == data
    cache_tank.wait_cached(image_id)
    assert cache_tank.log().count(f"image cache: cached image {image_id}") == 1


def test_client_gone_mid_download_leaves_nothing(
    cache_tank: CacheTank, http: Http, upload: Upload
) -> None:
    image_id, _ = upload(24 << 20)
    first = http.session.get(f"{http.url}/v2/images/{image_id}/file", stream=True, timeout=60)
    first.raw.read(1 << 20)
    incomplete = cache_tank.cache_dir / "incomplete" / image_id
    assert incomplete.exists()
    first.close()
    deadline = time.monotonic() + 10
    while incomplete.exists():
        assert time.monotonic() < deadline, "the abandoned fill was left behind"
        time.sleep(0.05)
    assert not cache_tank.entry(image_id).exists()


def test_delete_and_deactivate_evict(cache_tank: CacheTank, http: Http, upload: Upload) -> None:
    gone, _ = upload()
    paused, data = upload()
    for image_id in (gone, paused):
        download(http, image_id)
        cache_tank.wait_cached(image_id)
    assert http("DELETE", f"/v2/images/{gone}").status_code == 204
    assert not cache_tank.entry(gone).exists()
    resp = http("POST", f"/v2/images/{paused}/actions/deactivate")
    assert resp.status_code == 204
    assert not cache_tank.entry(paused).exists()
    # an admin may still download a deactivated image: from the store, never cached
    assert download(http, paused)[1] == data
    time.sleep(0.3)
    assert not cache_tank.entry(paused).exists()
    assert http("POST", f"/v2/images/{paused}/actions/reactivate").status_code == 204
    assert download(http, paused)[1] == data
    cache_tank.wait_cached(paused)


def test_lru_prune_to_max_size(tmp_path: Path) -> None:
    tank = CacheTank(tmp_path, max_size=int(2.5 * (1 << 20)))
    try:
        http = Http(tank.server, tenant("admin"))
        a, data_a = upload_image(http, 1 << 20)
        b, _ = upload_image(http, 1 << 20)
        c, _ = upload_image(http, 1 << 20)
        download(http, a)
        tank.wait_cached(a)
        time.sleep(0.05)
        download(http, b)
        tank.wait_cached(b)
        time.sleep(0.05)
        assert download(http, a)[1] == data_a  # a hit: a is now the most recently used
        time.sleep(0.05)
        download(http, c)
        tank.wait_cached(c)
        assert tank.entry(a).exists() and not tank.entry(b).exists()
        # an image larger than the whole cache is never cached
        big, _ = upload_image(http, 3 << 20)
        download(http, big)
        time.sleep(0.3)
        assert not tank.entry(big).exists() and tank.entry(a).exists()
    finally:
        tank.stop()


def test_cache_api_is_for_admins(cache_tank: CacheTank, http_member: Http, upload: Upload) -> None:
    image_id, _ = upload()
    for method, path in [
        ("GET", "/v2/cache"),
        ("DELETE", "/v2/cache"),
        ("PUT", f"/v2/cache/{image_id}"),
        ("DELETE", f"/v2/cache/{image_id}"),
    ]:
        resp = http_member(method, path)
        assert resp.status_code == 403, (method, path, resp.text)
        assert "admin" in resp.json()["error"]["message"]


def test_cache_api_errors(cache_tank: CacheTank, http: Http) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert http("PUT", f"/v2/cache/{missing}").status_code == 404
    assert http("DELETE", f"/v2/cache/{missing}").status_code == 404
    assert http("PUT", "/v2/cache/not-a-uuid").status_code == 404
    queued = http.create(name="cache-queued")
    resp = http("PUT", f"/v2/cache/{queued['id']}")
    assert resp.status_code == 400 and "only active images" in resp.json()["error"]["message"]
    resp = http("DELETE", "/v2/cache", headers={"x-image-cache-clear-target": "everything"})
    assert resp.status_code == 400 and "x-image-cache-clear-target" in resp.text


def test_queue_prefetches_and_delete_removes(
    cache_tank: CacheTank, http: Http, upload: Upload
) -> None:
    image_id, data = upload(2 << 20)
    resp = http("PUT", f"/v2/cache/{image_id}")
    assert resp.status_code == 202
    entry = cache_tank.wait_cached(image_id)  # the prefetcher fetched it, nobody downloaded
    assert entry.read_bytes() == data
    state = http("GET", "/v2/cache").json()
    assert image_id not in state["queued_images"]
    assert image_id in [c["image_id"] for c in state["cached_images"]]
    assert http("DELETE", f"/v2/cache/{image_id}").status_code == 204
    assert not entry.exists()
    assert image_id not in [c["image_id"] for c in http("GET", "/v2/cache").json()["cached_images"]]


def test_clear_targets(cache_tank: CacheTank, http: Http, upload: Upload) -> None:
    cached, _ = upload()
    download(http, cached)
    cache_tank.wait_cached(cached)
    queued, _ = upload()
    cache_tank.remove_from_swift(queued)  # its prefetch fails: it stays queued
    assert http("PUT", f"/v2/cache/{queued}").status_code == 202
    time.sleep(1.0)
    assert queued in http("GET", "/v2/cache").json()["queued_images"]

    resp = http("DELETE", "/v2/cache", headers={"x-image-cache-clear-target": "queue"})
    assert resp.status_code == 204
    state = http("GET", "/v2/cache").json()
    assert state["queued_images"] == []
    assert cached in [c["image_id"] for c in state["cached_images"]]
    resp = http("DELETE", "/v2/cache", headers={"x-image-cache-clear-target": "cache"})
    assert resp.status_code == 204
    assert http("GET", "/v2/cache").json() == {"cached_images": [], "queued_images": []}


def manage(tank: CacheTank, *args: str) -> subprocess.CompletedProcess[str]:
    exe = find_script("tank-manage")
    assert exe is not None
    return subprocess.run(
        [exe, "cache", *args, "--config", str(tank.config), "--data-dir", str(tank.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_tank_manage_cache(cache_tank: CacheTank, http: Http, upload: Upload) -> None:
    image_id, data = upload(1 << 20)
    done = manage(cache_tank, "queue", image_id, "--now")
    assert done.returncode == 0, done.stderr
    assert cache_tank.entry(image_id).read_bytes() == data
    listed = manage(cache_tank, "list")
    assert listed.returncode == 0 and image_id in listed.stdout
    assert manage(cache_tank, "prune").returncode == 0
    assert cache_tank.entry(image_id).exists()  # far below max_size
    removed = manage(cache_tank, "delete", image_id)
    assert removed.returncode == 0 and not cache_tank.entry(image_id).exists()
    again = manage(cache_tank, "delete", image_id)
    assert again.returncode != 0 and "neither cached nor queued" in again.stderr
    # clean: a stalled fill and a copy of a deleted image go
    stalled = cache_tank.cache_dir / "incomplete" / image_id
    stalled.write_bytes(b"x")
    old = time.time() - 2 * 86400
    os.utime(stalled, (old, old))
    download(http, image_id)
    cache_tank.wait_cached(image_id)  # a stalled claim does not stop a new fill
    orphan = cache_tank.entry("11111111-1111-4111-8111-111111111111")
    orphan.write_bytes(b"nobody's")
    cleaned = manage(cache_tank, "clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not orphan.exists() and cache_tank.entry(image_id).exists()
    bad = manage(cache_tank, "queue", "00000000-0000-4000-8000-000000000000")
    assert bad.returncode != 0 and "00000000-0000-4000-8000-000000000000" in bad.stderr
