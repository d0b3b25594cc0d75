"""Cross-site request forgery (the outside probe's finding, session 7): a page of another
site made a browser add a member to an image and deactivate another through tank-api
with ``fetch(..., {mode: "no-cors", headers: {"Content-Type": "text/plain"}})``. Such
requests are refused now (403, nothing changed); the console's own, and clients other
than browsers, are not."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tank.testing.api_server import ApiServer, stored_image


def active_image(api: ApiServer) -> str:
    return stored_image(api, b"data", "target", timeout=5)


def state(api: ApiServer, image_id: str) -> tuple[str, list[str]]:
    image = requests.get(f"{api.url}/v2/images/{image_id}", timeout=5).json()
    members = requests.get(f"{api.url}/v2/images/{image_id}/members", timeout=5).json()
    return image["status"], [m["member_id"] for m in members["members"]]


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://other.tank.example"},
        {"Origin": "http://evil.example"},  # a browser without Sec-Fetch-*
        {"Origin": "null"},  # a sandboxed frame, a file: page
        {"Origin": "https://127.0.0.1"},  # another scheme is another origin
    ],
)
def test_cross_site_requests_change_nothing(api: ApiServer, headers: dict[str, str]) -> None:
    image_id = active_image(api)
    plain = {**headers, "Content-Type": "text/plain"}
    tries = [
        requests.post(
            f"{api.url}/v2/images/{image_id}/members",
            data='{"member": "attacker-project"}',
            headers=plain,
            timeout=5,
        ),
        requests.post(
            f"{api.url}/v2/images/{image_id}/actions/deactivate", headers=plain, timeout=5
        ),
        requests.post(f"{api.url}/v1/images", headers={**headers, "Content-Type": ""}, timeout=5),
        requests.delete(f"{api.url}/v2/images/{image_id}", headers=headers, timeout=5),
    ]
    for resp in tries:
        assert resp.status_code == 403, resp.text
        assert "may not change images" in resp.json()["error"]["message"]
    assert state(api, image_id) == ("active", [])
    # reading is not refused: another site's page cannot read the answer anyway (no CORS)
    assert requests.get(f"{api.url}/v2/images/{image_id}", headers=headers, timeout=5).ok


@pytest.mark.parametrize(
    "headers",
    [
        {},  # clients other than browsers
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://evil.example"},  # the browser says
        {"Sec-Fetch-Site": "none"},  # the user's own action
        {"Origin": "{url}"},  # the console in a browser without Sec-Fetch-*
        {"Origin": "{url}/"},
    ],
)
def test_same_origin_and_non_browser_requests_are_served(
    api: ApiServer, headers: dict[str, str]
) -> None:
    headers = {k: v.format(url=api.url) for k, v in headers.items()}
    image_id = active_image(api)
    added = requests.post(
        f"{api.url}/v2/images/{image_id}/members",
        json={"member": "friend"},
        headers=headers,
        timeout=5,
    )
    assert added.status_code == 200, added.text
    action = f"{api.url}/v2/images/{image_id}/actions/deactivate"
    assert requests.post(action, headers=headers, timeout=5).status_code == 204
    assert state(api, image_id) == ("deactivated", ["friend"])


@pytest.fixture
def other_site() -> Iterator[str]:
    """A page on another origin (127.0.0.2) that POSTs to the URL in its query."""
    page = b"""<!doctype html><script>
const target = new URLSearchParams(location.search).get("target");
window.done = fetch(target, {method: "POST", mode: "no-cors",
  headers: {"Content-Type": "text/plain"}, body: '{"member": "attacker-project"}'})
  .then(() => "sent", (e) => String(e));
</script>"""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_page_of_another_site_cannot_share_an_image_through_a_browser(
    api: ApiServer, other_site: str
) -> None:
    """The probe's own proof, in Debian's Chromium: the request is sent, and refused."""
    from tests.console.chromium import CHROMIUM_ARGS, chromium_path

    playwright = pytest.importorskip("playwright.sync_api")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium: apt-get install chromium, or set TANK_CHROMIUM to its path")
    image_id = active_image(api)
    target = f"{api.url}/v2/images/{image_id}/members"
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{other_site}?target={target}")
            assert page.evaluate("() => window.done") == "sent"
        finally:
            browser.close()
    assert state(api, image_id) == ("active", [])
