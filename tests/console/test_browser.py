"""The console in Chromium against a real tank-api (``--auth``, identities from the
proxy headers each browser context sends): upload, cancel, search and sort, edits,
sharing, deactivation, deletion, import, overview, hostile names, readable errors."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tank.checksums import DEFAULT_HASH_ALGO
from tank.testing.api_server import ApiServer

from .conftest import Api, Caller, Console

expect = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright is not installed (pip install -e 'tank_core[testing]')",
).expect

MIB = 1 << 20
BIG = 200 * MIB

Open = Callable[..., Console]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """200 MiB of random data: its path, MD5 and multihash (Tank's default algorithm)."""
    path = tmp_path_factory.mktemp("upload") / "big-image.raw"
    md5, multihash = hashlib.md5(), hashlib.new(DEFAULT_HASH_ALGO)
    with open(path, "wb") as f:
        for _ in range(BIG // MIB):
            block = os.urandom(MIB)
            md5.update(block)
            multihash.update(block)
            f.write(block)
    return path, md5.hexdigest(), multihash.hexdigest()


def stored_files(server: ApiServer) -> list[Path]:
    """Every file the fs store holds (its folder is ``<root>/images``)."""
    root = server.data_dir.parent / "images"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def wait_rows(page: Any) -> list[str]:
    page.wait_for_selector("table.images:not(.loading) tbody")
    return page.locator("table.images tbody td.name").all_inner_texts()  # type: ignore[no-any-return]


def test_upload_200_mib_becomes_active_with_its_checksum(
    tank: ApiServer, alice: Caller, open_console: Open, big_file: tuple[Path, str, str]
) -> None:
    path, md5, multihash = big_file
    console = open_console(tank, alice)
    page = console.goto("upload")
    name = f"upload-{uuid.uuid4().hex[:8]}"
    page.set_input_files("input[type=file]", str(path))
    assert page.input_value("input[name=name]") == "big-image"  # from the file name
    assert page.input_value("select[name=disk_format]") == "raw"  # guessed from .raw
    page.fill("input[name=name]", name)
    page.fill("input[name=tags]", "console, big")
    page.fill("textarea[name=properties]", "os_distro=debian\nnote=from the console")
    page.click("form[data-form=upload] button[type=submit]")
    progress = page.locator(".upload-progress")
    progress.wait_for()
    page.wait_for_selector(".upload-progress[data-outcome]", timeout=90_000)
    console.shot("upload")
    assert progress.get_attribute("data-outcome") == "done", progress.inner_text()
    assert page.locator(".upload-progress .checksum").inner_text() == md5
    assert "200 MiB" in page.locator(".upload-progress .numbers").inner_text()
    image_id = progress.get_attribute("data-image")
    image = Api(tank, alice).get(image_id)
    assert image["status"] == "active"
    assert image["size"] == BIG
    assert image["checksum"] == md5
    assert image["os_hash_algo"] == DEFAULT_HASH_ALGO and image["os_hash_value"] == multihash
    assert image["owner"] == alice.project  # the proxy's identity, nothing invented
    assert sorted(image["tags"]) == ["big", "console"]
    assert image["os_distro"] == "debian" and image["note"] == "from the console"
    # the detail page's download link serves the bytes, Range included
    page.click(".upload-progress a[href^='#/images/']")
    link = page.locator("a", has_text="Download")
    href = link.get_attribute("href")
    assert href == f"/v2/images/{image_id}/file"
    part = Api(tank, alice)("GET", href, headers={"Range": "bytes=1048576-1048591"})
    assert part.status_code == 206
    with open(path, "rb") as f:
        f.seek(MIB)
        assert part.content == f.read(16)
    assert not console.errors and not console.dialogs


def test_cancelled_upload_leaves_nothing_stored(
    tank: ApiServer, alice: Caller, open_console: Open, big_file: tuple[Path, str, str]
) -> None:
    path, _, _ = big_file
    before = set(stored_files(tank))
    console = open_console(tank, alice)
    page = console.goto("upload")
    # slow the browser's uploads down (DevTools throttling) so that there is time to cancel
    cdp = console.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 8 * MIB},
    )
    name = f"cancel-{uuid.uuid4().hex[:8]}"
    page.set_input_files("input[type=file]", str(path))
    page.fill("input[name=name]", name)
    page.click("form[data-form=upload] button[type=submit]")
    numbers = page.locator(".upload-progress .numbers")
    expect(numbers).to_contain_text("MiB of")
    assert re.search(r"MiB/s · .* left", numbers.inner_text()), numbers.inner_text()
    image_id = page.locator(".upload-progress").get_attribute("data-image")
    page.click("[data-action=cancel-upload]")
    page.wait_for_selector(".upload-progress[data-outcome]")
    console.shot("upload-cancelled")
    assert page.locator(".upload-progress").get_attribute("data-outcome") == "cancelled"
    assert "nothing is stored" in page.locator(".upload-progress .state").inner_text()
    api = Api(tank, alice)
    assert api("GET", f"/v2/images/{image_id}").status_code == 404
    listed = api("GET", "/v2/images", params={"name": name}).json()["images"]
    assert listed == []
    # the server may finish noticing the broken upload just after the delete
    deadline = 50
    while set(stored_files(tank)) - before and deadline:
        page.wait_for_timeout(100)
        deadline -= 1
    assert set(stored_files(tank)) - before == set()
    assert not console.dialogs


@pytest.fixture(scope="module")
def catalogue(tank: ApiServer, alice: Caller) -> dict[str, Any]:
    """Five small images of alice's under one tag, created through the API."""
    api = Api(tank, alice)
    tag = f"cat-{uuid.uuid4().hex[:8]}"
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    images = {}
    for i, name in enumerate(names):
        qcow2 = bool(i % 2)  # random bytes: inspected as raw unless the container is not bare
        image = api.create(
            name=f"{tag}-{name}",
            tags=[tag],
            disk_format="qcow2" if qcow2 else "raw",
            container_format="ovf" if qcow2 else "bare",
        )
        api.upload(image["id"], os.urandom(1000 * (i + 1)))
        images[name] = image["id"]
    return {"tag": tag, "ids": images}


def test_search_filter_and_sort(
    tank: ApiServer, alice: Caller, open_console: Open, catalogue: dict[str, Any]
) -> None:
    tag = catalogue["tag"]
    console = open_console(tank, alice)
    page = console.goto(f"images?tag={tag}")
    rows = wait_rows(page)
    assert sorted(rows) == sorted(f"{tag}-{n}" for n in catalogue["ids"])
    page.click("button[data-sort=name]")  # name, ascending
    page.wait_for_url(re.compile("sort=name%3Aasc"))
    assert wait_rows(page) == [f"{tag}-{n}" for n in ["alpha", "bravo", "charlie", "delta", "echo"]]
    page.click("button[data-sort=name]")  # again: descending
    page.wait_for_url(re.compile("sort=name%3Adesc"))
    assert wait_rows(page) == [f"{tag}-{n}" for n in ["echo", "delta", "charlie", "bravo", "alpha"]]
    page.click("button[data-sort=size]")  # biggest first
    page.wait_for_url(re.compile("sort=size%3Adesc"))
    assert wait_rows(page) == [f"{tag}-{n}" for n in ["bravo", "charlie", "echo", "alpha", "delta"]]
    sizes = page.locator("table.images tbody td.num").all_inner_texts()
    assert sizes[0] == "4.88 KiB"  # 5000 bytes in human units
    # a filter narrows the listing (and the API does the filtering)
    page.select_option("select[name=disk_format]", "qcow2")
    page.wait_for_url(re.compile("disk_format=qcow2"))
    assert sorted(wait_rows(page)) == [f"{tag}-alpha", f"{tag}-charlie"]
    page.select_option("select[name=disk_format]", "")
    page.fill("input[name=name]", f"{tag}-charlie")
    page.press("input[name=name]", "Enter")
    page.wait_for_url(re.compile("name="))
    assert wait_rows(page) == [f"{tag}-charlie"]
    status = page.locator("table.images tbody .status").first
    assert status.inner_text() == "active" and "status-active" in status.get_attribute("class")
    page.fill("input[name=name]", "no-such-image-anywhere")
    page.press("input[name=name]", "Enter")
    page.wait_for_selector("text=No images match.")
    page.fill("input[name=name]", "")
    page.press("input[name=name]", "Enter")
    wait_rows(page)
    console.shot("images")
    assert not console.errors and not console.dialogs


def test_edit_tag_share_accept_deactivate_protect_delete(
    tank: ApiServer, alice: Caller, bob: Caller, open_console: Open
) -> None:
    api = Api(tank, alice)
    image = api.create(name=f"shared-{uuid.uuid4().hex[:8]}", visibility="shared", colour="blue")
    api.upload(image["id"], b"x" * 4096)
    image_id = image["id"]
    console = open_console(tank, alice)
    page = console.goto(f"images/{image_id}")
    page.wait_for_selector("[data-section=properties]")
    # edit a property in place (JSON patch replace), add one, remove one
    page.fill("input[data-property=colour]", "green")
    page.click("[data-property-row=colour] [data-action=save-property]")
    page.wait_for_selector("text=Saving property colour: saved.")
    assert api.get(image_id)["colour"] == "green"
    page.fill("[data-form=add-property] input[name=key]", "os/type~x")
    page.fill("[data-form=add-property] input[name=value]", "linux")
    page.click("[data-form=add-property] button")
    page.wait_for_selector("[data-property-row='os/type~x']")
    assert api.get(image_id)["os/type~x"] == "linux"  # JSON pointer escaping
    page.click("[data-property-row='os/type~x'] [data-action=remove-property]")
    page.wait_for_selector("[data-property-row='os/type~x']", state="detached")
    assert "os/type~x" not in api.get(image_id)
    # an attribute
    page.fill("form.attributes input[name=min_ram]", "512")
    page.click("form.attributes button[type=submit]")
    page.wait_for_selector("text=Saving the attributes: saved.")
    assert api.get(image_id)["min_ram"] == 512
    # a tag
    page.fill("[data-form=add-tag] input", "golden")
    page.click("[data-form=add-tag] button")
    page.wait_for_selector("li.tag[data-tag=golden]")
    assert api.get(image_id)["tags"] == ["golden"]
    # share with bob
    page.fill("[data-form=add-member] input", bob.project)
    page.click("[data-form=add-member] button")
    page.wait_for_selector(f"tr[data-member='{bob.project}']")
    assert page.locator(f"tr[data-member='{bob.project}'] .member-status").inner_text() == "pending"
    console.shot("detail")
    # bob accepts in his own console; he then sees it in his list
    bobs = open_console(tank, bob)
    bpage = bobs.goto(f"images/{image_id}")
    bpage.wait_for_selector(f"tr[data-member='{bob.project}'] [data-action=accepted]")
    assert bpage.locator("[data-form=add-member]").count() == 0  # not his to share
    bpage.click(f"tr[data-member='{bob.project}'] [data-action=accepted]")
    expect(bpage.locator(f"tr[data-member='{bob.project}'] .member-status")).to_have_text(
        "accepted"
    )
    members = Api(tank, alice)("GET", f"/v2/images/{image_id}/members").json()["members"]
    assert [(m["member_id"], m["status"]) for m in members] == [(bob.project, "accepted")]
    bobs.goto("images")
    assert image["name"] in wait_rows(bobs.page)
    # deactivate, reactivate
    page.reload()
    page.click("[data-action=deactivate]")
    page.wait_for_selector("[data-action=reactivate]")
    assert api.get(image_id)["status"] == "deactivated"
    page.click("[data-action=reactivate]")
    page.wait_for_selector("[data-action=deactivate]")
    assert api.get(image_id)["status"] == "active"
    # protect: delete is refused until unprotected
    page.click("[data-action=protect]")
    page.wait_for_selector("[data-action=delete][disabled]")
    assert api.get(image_id)["protected"] is True
    page.click("[data-action=protect]")
    page.wait_for_selector("[data-action=delete]:not([disabled])")
    # delete asks first; cancel keeps the image
    page.click("[data-action=delete]")
    page.click("dialog.confirm [data-action=cancel-delete]")
    assert api.get(image_id)["status"] == "active"
    page.click("[data-action=delete]")
    console.shot("delete-confirmation")
    page.click("dialog.confirm [data-action=confirm-delete]")
    page.wait_for_url(re.compile("#/images$"))
    page.wait_for_selector("text=deleted.")
    assert api("GET", f"/v2/images/{image_id}").status_code == 404
    assert not console.errors and not console.dialogs and not bobs.dialogs


HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)>',
    "javascript:alert(4)",
]


def test_hostile_names_render_as_text(tank: ApiServer, alice: Caller, open_console: Open) -> None:
    api = Api(tank, alice)
    tag = f"xss-{uuid.uuid4().hex[:6]}"
    ids = []
    for i, name in enumerate(HOSTILE):
        image = api.create(
            name=name,
            tags=[tag, f"<b onmouseover=alert({i})>t</b>"],
            visibility="shared",
            **{"<img src=y onerror=alert(9)>": "<iframe src=javascript:alert(8)>"},
        )
        ids.append(image["id"])
    api("POST", f"/v2/images/{ids[0]}/members", json={"member": "<img src=z onerror=alert(7)>"})
    console = open_console(tank, alice)
    page = console.goto(f"images?tag={tag}")
    rows = wait_rows(page)
    assert sorted(rows) == sorted(HOSTILE)
    for i, image_id in enumerate(ids):
        page.goto(f"{tank.url}/console/#/images/{image_id}")
        page.wait_for_selector("[data-section=members]")
        assert page.locator("h1.image-name").inner_text() == HOSTILE[i]
        assert page.locator("[data-property-row='<img src=y onerror=alert(9)>'] th").count() == 1
    console.shot("detail-hostile")
    page.goto(f"{tank.url}/console/#/overview")
    page.wait_for_selector("[data-done=true]", timeout=30_000)
    page.wait_for_timeout(300)
    # nothing became markup: no element from the data, no dialog, no script error
    elements = ("img[src=x]", "img[src=y]", "img[src=z]", "svg[onload]", "iframe", "b[onmouseover]")
    for selector in elements:
        assert page.locator(selector).count() == 0, selector
    assert console.dialogs == []
    assert not console.errors


def test_import_from_url_and_its_failure(
    tank: ApiServer, alice: Caller, open_console: Open, tmp_path: Path
) -> None:
    # a real qcow2: imported data is inspected against its disk_format
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "disk.qcow2"), "1M"], check=True
    )
    payload = (tmp_path / "disk.qcow2").read_bytes()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        console = open_console(tank, alice)
        page = console.goto("import")
        url = f"http://127.0.0.1:{httpd.server_address[1]}/disk.qcow2"
        page.fill("input[name=uri]", url)
        page.fill("input[name=name]", "imported")
        page.select_option("select[name=disk_format]", "qcow2")
        page.click("form[data-form=import] button[type=submit]")
        page.wait_for_selector(".import-progress[data-outcome]", timeout=30_000)
        console.shot("import")
        view = page.locator(".import-progress")
        assert view.get_attribute("data-outcome") == "done", view.inner_text()
        image = Api(tank, alice).get(view.get_attribute("data-image"))
        assert image["status"] == "active"
        assert image["checksum"] == hashlib.md5(payload).hexdigest()
        # a URL that answers 404: the failure and its reason are shown
        page.reload()
        page.fill("input[name=uri]", url + ".missing")
        page.fill("input[name=name]", "broken")
        page.select_option("select[name=disk_format]", "qcow2")
        page.click("form[data-form=import] button[type=submit]")
        page.wait_for_selector(".import-progress[data-outcome]", timeout=30_000)
        view = page.locator(".import-progress")
        assert view.get_attribute("data-outcome") == "failed"
        text = view.inner_text()
        assert "The import failed" in text and "404" in text, text
        console.shot("import-failed")
        assert not console.dialogs
    finally:
        httpd.shutdown()


def test_api_errors_are_readable_messages(
    tank: ApiServer, alice: Caller, open_console: Open
) -> None:
    console = open_console(tank, alice)
    page = console.goto(f"images/{uuid.uuid4()}")
    text = page.locator(".error-page").inner_text()
    assert "could not be shown" in text and "(404 Not Found)" in text, text
    # an API error in an action: a property name the API refuses
    image = Api(tank, alice).create(name="errors")
    page.goto(f"{tank.url}/console/#/images/{image['id']}")
    page.fill("[data-form=add-property] input[name=key]", "os_glance_importing_to_stores")
    page.click("[data-form=add-property] button")
    alert = page.locator(".message.error")
    alert.wait_for()
    assert "Adding property os_glance_importing_to_stores failed" in alert.inner_text()
    assert "403" in alert.inner_text() or "400" in alert.inner_text()
    # without the proxy's identity, the API's 401 is said in words, never a blank page
    anonymous = open_console(tank)
    anonymous.goto("images")
    anonymous.page.wait_for_selector(".list-status .error-text")
    assert "authentication required" in anonymous.page.locator(".list-status").inner_text()
    assert anonymous.page.locator("#identity").inner_text() == "not signed in"
    console.errors.clear()  # the browser logs failed requests (404 above) as errors
    assert not console.dialogs


def test_overview_charts(
    tank: ApiServer, alice: Caller, open_console: Open, catalogue: dict[str, Any]
) -> None:
    console = open_console(tank, alice)
    page = console.goto("overview")
    page.wait_for_selector("[data-done=true]", timeout=30_000)
    assert page.locator("[data-chart=status] svg.chart").count() == 2
    assert page.locator("[data-chart=store] svg.chart").count() == 2
    assert page.locator("[data-chart=project]").count() == 0  # alice is no admin
    listed = Api(tank, alice)("GET", "/v2/images", params={"limit": 1000}).json()["images"]
    active = sum(1 for i in listed if i["status"] == "active")
    label = page.locator("[data-chart=status] svg[aria-label='Images per status'] text.value")
    assert str(active) in label.all_text_contents()
    console.shot("overview")
    admin = open_console(tank, Caller(project="admins", roles=("admin",)))
    apage = admin.goto("overview")
    apage.wait_for_selector("[data-done=true]", timeout=30_000)
    assert apage.locator("[data-chart=project] svg.chart").count() == 2
    assert alice.project in apage.locator("[data-chart=project]").inner_text()
    admin.shot("overview-admin")


def test_locations_shown_to_admins_only(tank: ApiServer, alice: Caller, open_console: Open) -> None:
    api = Api(tank, alice)
    image = api.create(name=f"located-{uuid.uuid4().hex[:6]}")
    api.upload(image["id"], b"data" * 1000)
    admin = open_console(tank, Caller(project="admins", roles=("admin",)))
    page = admin.goto(f"images/{image['id']}")
    section = page.locator("[data-section=locations]")
    section.wait_for()
    text = section.inner_text()
    assert "file" in text and image["id"] in text and "file://" in text, text
    owner = open_console(tank, alice)
    opage = owner.goto(f"images/{image['id']}")
    opage.wait_for_selector("[data-section=members]")
    assert opage.locator("[data-section=locations]").count() == 0
    assert not admin.errors and not owner.errors


def test_drop_a_file_to_upload(tank: ApiServer, alice: Caller, open_console: Open) -> None:
    console = open_console(tank, alice)
    page = console.goto("upload")
    page.wait_for_selector("[data-drop]")
    data = page.evaluate_handle(
        """() => {
          const dt = new DataTransfer();
          const bytes = new Uint8Array(70000).map((_, i) => (i * 7) % 251);
          dt.items.add(new File([bytes], "dropped.qcow2"));
          return dt;
        }"""
    )
    page.dispatch_event("[data-drop]", "drop", {"dataTransfer": data})
    assert "dropped.qcow2" in page.locator(".chosen").inner_text()
    assert page.input_value("select[name=disk_format]") == "qcow2"
    # the bytes are no qcow2 (the API inspects uploads): send them as what they are
    page.select_option("select[name=disk_format]", "raw")
    page.click("form[data-form=upload] button[type=submit]")
    page.wait_for_selector(".upload-progress[data-outcome]")
    expected = hashlib.md5(bytes((i * 7) % 251 for i in range(70000))).hexdigest()
    assert page.locator(".upload-progress .checksum").inner_text() == expected
    image = Api(tank, alice).get(page.locator(".upload-progress").get_attribute("data-image"))
    assert (image["name"], image["status"], image["size"]) == ("dropped", "active", 70000)


def test_first_listing_is_asked_for_once_and_never_served_stale(
    tank: ApiServer, alice: Caller, open_console: Open
) -> None:
    """index.html preloads the default view's listing while the scripts load: the page
    takes it (one request, not two), and a console that started elsewhere still lists
    what is there when it comes to the images later, not that early answer."""
    api = Api(tank, alice)
    first = api.create(name=f"first-{uuid.uuid4().hex[:8]}")
    console = open_console(tank, alice)
    page = console.goto("images")
    assert first["name"] in wait_rows(page)
    listings = page.evaluate(
        "() => performance.getEntriesByType('resource')"
        ".map(e => e.name).filter(n => n.includes('/v2/images?'))"
    )
    assert len(listings) == 1, listings
    # started on another page: the preloaded (now stale) listing is not what shows later
    page = console.goto("upload")
    page.reload()
    page.wait_for_selector("form[data-form=upload]")
    later = api.create(name=f"later-{uuid.uuid4().hex[:8]}")
    page = console.goto("images")
    names = wait_rows(page)
    assert later["name"] in names and first["name"] in names
