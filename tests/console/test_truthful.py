"""The console says what is true and offers what the caller can do: a failed upload or
import reports the image as the API has it, shared images can be found while pending,
dot-segment ids ask nothing, owner-only controls are not offered to others, the identity
follows the proxy, and bidirectional controls in API text are shown, not obeyed."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tank.testing.api_server import ApiServer

from .conftest import Api, Caller, Console

expect = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright is not installed (pip install -e 'tank_core[testing]')",
).expect

MIB = 1 << 20
Open = Callable[..., Console]


def throttle(console: Console, upload_bytes_per_second: int) -> None:
    """Slow the browser's uploads (DevTools network emulation)."""
    cdp = console.context.new_cdp_session(console.page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": upload_bytes_per_second,
        },
    )


def test_failed_upload_says_what_became_of_the_image(
    tank: ApiServer, alice: Caller, open_console: Open, tmp_path: Path
) -> None:
    api = Api(tank, alice)
    # refused by the server: bytes that are no qcow2, sent as qcow2 (uploads are inspected)
    junk = tmp_path / "junk.qcow2"
    junk.write_bytes(bytes(range(256)) * 400)
    console = open_console(tank, alice)
    page = console.goto("upload")
    page.set_input_files("input[type=file]", str(junk))
    page.select_option("select[name=disk_format]", "qcow2")
    page.click("form[data-form=upload] button[type=submit]")
    view = page.locator(".upload-progress[data-outcome]")
    view.wait_for()
    assert view.get_attribute("data-outcome") == "failed"
    status = api.get(view.get_attribute("data-image"))["status"]
    expect(view).to_have_attribute("data-image-status", status)
    text = view.locator(".state").inner_text()
    assert f"The image is {status}" in text and "holds no data" in text, text
    page.click("[data-action=delete-failed]")
    expect(view.locator(".state")).to_have_text("The image was deleted.")
    assert api("GET", f"/v2/images/{view.get_attribute('data-image')}").status_code == 404

    # deleted by someone else mid-upload: the server answers 409, the image is gone
    big = tmp_path / "slow.raw"
    big.write_bytes(b"\0" * (12 * MIB))
    page = console.goto("upload")
    page.wait_for_selector("form[data-form=upload]")
    throttle(console, 2 * MIB)
    page.set_input_files("input[type=file]", str(big))
    page.click("form[data-form=upload] button[type=submit]")
    expect(page.locator(".upload-progress .numbers")).to_contain_text("MiB of")
    image_id = page.locator(".upload-progress").get_attribute("data-image")
    assert api("DELETE", f"/v2/images/{image_id}").status_code == 204
    view = page.locator(".upload-progress[data-outcome]")
    view.wait_for(timeout=30_000)
    assert view.get_attribute("data-outcome") == "failed"
    assert view.get_attribute("data-image-status") == "gone"
    text = view.locator(".state").inner_text()
    assert "no longer exists" in text and "queued" not in text, text
    assert view.locator("[data-action=delete-failed]").count() == 0
    console.errors.clear()  # the browser logs the refused PUTs and the 404 as errors
    assert not console.dialogs


def wait_rows(page: Any) -> list[str]:
    page.wait_for_selector("table.images:not(.loading) tbody", state="attached")
    return page.locator("table.images tbody td.name").all_inner_texts()  # type: ignore[no-any-return]


def test_shared_with_me_finds_pending_shares(
    tank: ApiServer, alice: Caller, bob: Caller, open_console: Open
) -> None:
    api = Api(tank, alice)
    name = f"offered-{uuid.uuid4().hex[:8]}"
    image = api.create(name=name, visibility="shared")
    answer = api("POST", f"/v2/images/{image['id']}/members", json={"member": bob.project})
    assert answer.status_code == 200, answer.text
    bobs = open_console(tank, bob)
    page = bobs.goto(f"images?name={name}")
    assert wait_rows(page) == []  # v2 lists shares once accepted only
    page.select_option("select[name=member_status]", "pending")
    page.wait_for_url(re.compile("member_status=pending"))
    assert wait_rows(page) == [name]
    assert page.locator("select[name=visibility]").is_disabled()
    # kept in the URL: a reload shows the same view
    page.reload()
    assert wait_rows(page) == [name]
    assert page.input_value("select[name=member_status]") == "pending"
    page.click(f"table.images a:text-is('{name}')")
    page.click(f"tr[data-member='{bob.project}'] [data-action=accepted]")
    expect(page.locator(f"tr[data-member='{bob.project}'] .member-status")).to_have_text("accepted")
    page.go_back()
    assert wait_rows(page) == []  # no longer pending
    page.select_option("select[name=member_status]", "all")
    page.wait_for_url(re.compile("member_status=all"))
    assert wait_rows(page) == [name]
    page.select_option("select[name=member_status]", "")  # accepted: the default
    page.wait_for_url(lambda url: "member_status" not in url)
    assert wait_rows(page) == [name]
    assert not page.locator("select[name=visibility]").is_disabled()
    assert not bobs.errors and not bobs.dialogs


def test_refused_import_deletes_the_image_it_created(
    tank: ApiServer, alice: Caller, open_console: Open
) -> None:
    console = open_console(tank, alice)
    page = console.goto("import")
    name = f"refused-{uuid.uuid4().hex[:8]}"
    page.fill("input[name=uri]", "file:///etc/passwd")
    page.fill("input[name=name]", name)
    page.select_option("select[name=disk_format]", "raw")
    page.click("form[data-form=import] button[type=submit]")
    alert = page.locator(".message.error")
    alert.wait_for()
    text = alert.inner_text()
    assert "The import could not start" in text and "(400" in text, text
    assert "The image created for it was deleted." in text, text
    listed = Api(tank, alice)("GET", "/v2/images", params={"name": name}).json()["images"]
    assert listed == []
    console.errors.clear()  # the browser logs the refused request as an error
    assert not console.dialogs


@pytest.mark.parametrize("route", ["images/.", "images/..", "images/%2E", "images/%2e%2E"])
def test_dot_ids_are_no_image_and_ask_nothing(
    tank: ApiServer, alice: Caller, open_console: Open, route: str
) -> None:
    console = open_console(tank, alice)
    asked: list[str] = []
    console.page.on("request", lambda request: asked.append(request.url))
    page = console.goto(route)
    text = page.locator(".error-page").inner_text()
    assert "could not be shown" in text and "there is no image" in text, text
    assert page.locator("h1.image-name, table.images").count() == 0
    assert [url for url in asked if "/v2/images/" in url] == []
    assert not console.errors and not console.dialogs


OWNER_ONLY = [
    "[data-action=protect]",
    "[data-action=delete]",
    "[data-action=deactivate]",
    "form.attributes button[type=submit]",
    "[data-action=save-property]",
    "[data-action=remove-property]",
    "[data-form=add-property]",
    "[data-form=add-tag]",
    "li.tag button.remove",
    "[data-form=add-member]",
    "[data-action=remove-member]",
]


def test_image_page_offers_only_what_the_caller_may_do(
    tank: ApiServer, alice: Caller, bob: Caller, open_console: Open
) -> None:
    api = Api(tank, alice)
    image = api.create(
        name=f"offered-{uuid.uuid4().hex[:8]}", visibility="shared", tags=["t1"], colour="red"
    )
    api.upload(image["id"], b"x" * 2048)
    assert api("POST", f"/v2/images/{image['id']}/members", json={"member": bob.project}).ok
    route = f"images/{image['id']}"
    owner = open_console(tank, alice)
    page = owner.goto(route)
    page.wait_for_selector("[data-section=members] tr[data-member]")
    for selector in OWNER_ONLY:
        assert page.locator(selector).count() >= 1, selector
    assert page.locator("a.button", has_text="Download").count() == 1
    # bob, a member: he reads it and answers the share, nothing else
    member = open_console(tank, bob)
    bpage = member.goto(route)
    bpage.wait_for_selector(f"tr[data-member='{bob.project}'] [data-action=accepted]")
    for selector in OWNER_ONLY:
        assert bpage.locator(selector).count() == 0, selector
    assert bpage.locator("form.attributes input[name=min_ram]").is_disabled()
    assert bpage.locator("[data-property-row=colour] td").inner_text() == "red"
    assert bpage.locator("li.tag[data-tag=t1]").count() == 1
    assert bpage.locator("a.button", has_text="Download").count() == 1  # active: his to read
    # an admin of another project may change it
    admin = open_console(tank, Caller(project="admins", roles=("admin",)))
    apage = admin.goto(route)
    apage.wait_for_selector("[data-section=members] tr[data-member]")
    for selector in OWNER_ONLY:
        assert apage.locator(selector).count() >= 1, selector
    # no data yet: no download link, and the reason is given
    empty = api.create(name=f"empty-{uuid.uuid4().hex[:8]}")
    page = owner.goto(f"images/{empty['id']}")
    page.wait_for_selector("[data-section=members]")
    assert page.locator("a", has_text="Download").count() == 0
    button = page.locator("[data-action=download]")
    assert button.is_disabled() and "queued" in button.get_attribute("title")
    for console in (owner, member, admin):
        assert not console.errors and not console.dialogs


def test_identity_is_asked_again_on_each_route(
    tank: ApiServer, alice: Caller, bob: Caller, open_console: Open
) -> None:
    console = open_console(tank, alice)
    page = console.goto("images")
    identity = page.locator("#identity")
    expect(identity).to_contain_text(f"project {alice.project}")
    # the proxy now says this browser is bob (another sign-in behind the same proxy)
    console.context.set_extra_http_headers(bob.headers())
    page.click("nav a[data-nav=upload]")
    expect(identity).to_contain_text(f"project {bob.project}")
    console.context.set_extra_http_headers(Caller(project="admins", roles=("admin",)).headers())
    page.click("nav a[data-nav=images]")
    expect(identity).to_have_text("project admins · admin")
    assert not console.errors and not console.dialogs


BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068"]
BIDI += ["\u2069", "\u200e", "\u200f", "\u061c"]


def test_bidirectional_controls_are_shown_not_obeyed(
    tank: ApiServer, alice: Caller, bob: Caller, open_console: Open
) -> None:
    api = Api(tank, alice)
    tag = f"bidi-{uuid.uuid4().hex[:6]}"
    image = api.create(
        name="\u202egnp.exe",
        tags=[tag, "\u202egnp.exe"],
        visibility="community",
        **{"note\u2067": "".join(BIDI) + "x"},
    )
    console = open_console(tank, alice)
    page = console.goto(f"images?tag={tag}")
    assert wait_rows(page) == ["⟨U+202E⟩gnp.exe"]
    chips = page.locator("table.images tbody .tag").all_inner_texts()
    assert sorted(chips) == sorted([tag, "⟨U+202E⟩gnp.exe"]), chips
    page.goto(f"{tank.url}/console/#/images/{image['id']}")
    page.wait_for_selector("[data-section=tags] li.tag")
    assert page.locator("h1.image-name").inner_text() == "⟨U+202E⟩gnp.exe"
    tags = page.locator("li.tag span").all_inner_texts()
    assert sorted(tags) == sorted([tag, "⟨U+202E⟩gnp.exe"]), tags
    assert page.locator("[data-section=properties] th").inner_text() == "note⟨U+2067⟩"
    labels = page.locator("li.tag button.remove").evaluate_all(
        "buttons => buttons.map(b => b.getAttribute('aria-label'))"
    )
    assert "Remove tag ⟨U+202E⟩gnp.exe" in labels, labels
    shown = page.locator("body").inner_text()
    assert not any(c in shown for c in BIDI), [c for c in BIDI if c in shown]
    # bob sees the property's value as text (not his to edit): each control marked
    others = open_console(tank, bob)
    bpage = others.goto(f"images/{image['id']}")
    value = bpage.locator("[data-section=properties] td")
    markers = "".join(f"⟨U+{ord(c):04X}⟩" for c in BIDI)
    expect(value).to_have_text(markers + "x")
    assert not console.errors and not console.dialogs
    assert not others.errors and not others.dialogs
