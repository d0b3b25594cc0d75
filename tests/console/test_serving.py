"""How tank-api serves the console: the files, their headers, nothing outside the folder,
``[console] enabled = false``, and ``/console/whoami`` (no browser needed)."""

from __future__ import annotations

import http.client
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tank.console import STATIC_DIR, assets
from tank.console.assets import CSP, IMMUTABLE
from tank.testing.api_server import ApiServer

from .conftest import start_tank, stop_checked, tenant


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = start_tank(tmp_path_factory.mktemp("console-serving"))
    yield server
    stop_checked(server)


def raw_get(
    server: ApiServer, path: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """A GET with the path sent exactly as given (no client-side ``..`` folding)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_index_and_assets_with_types_and_security_headers(server: ApiServer) -> None:
    page = requests.get(f"{server.url}/console/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self';" in CSP and "connect-src 'self';" in CSP
    assert "frame-ancestors 'none'" in CSP and "unsafe-inline" not in CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in page.headers
    version = assets.assets_version()
    assert f'<script type="module" src="/console/v/{version}/js/main.js">' in page.text
    assert "{{" not in page.text
    assert "<script>" not in page.text  # no inline script anywhere
    for path, ctype in [
        ("js/main.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ]:
        response = requests.get(f"{server.url}/console/{path}", timeout=10)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"] == ctype
        assert response.content == (STATIC_DIR / path).read_bytes()
        assert response.headers["Content-Security-Policy"] == CSP


def test_no_third_party_or_unsafe_code_in_assets() -> None:
    """Everything the page loads is its own, and no data reaches HTML parsing."""
    for path in STATIC_DIR.rglob("*"):
        if path.suffix not in (".js", ".html", ".css"):
            continue
        text = path.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), path
        assert "https://" not in text.replace("https://example.com/image.qcow2", ""), path
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{path.name} uses {sink}"
        assert "localStorage" not in text and "document.cookie" not in text, path


def test_etag_and_last_modified_revalidate(server: ApiServer) -> None:
    first = requests.get(f"{server.url}/console/js/api.js", timeout=10)
    assert first.headers["Cache-Control"] == "no-cache"
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = requests.get(
        f"{server.url}/console/js/api.js", headers={"If-None-Match": etag}, timeout=10
    )
    assert again.status_code == 304 and again.content == b""
    since = requests.get(
        f"{server.url}/console/js/api.js", headers={"If-Modified-Since": modified}, timeout=10
    )
    assert since.status_code == 304
    other = requests.get(
        f"{server.url}/console/js/api.js", headers={"If-None-Match": '"other"'}, timeout=10
    )
    assert other.status_code == 200 and other.content == first.content


def test_versioned_files_are_immutable_and_the_page_names_the_current_version(
    server: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later visit asks for index.html only (revalidated), whose script URLs carry a
    digest of the files: cached for a year, and new the moment a file changes."""
    version = assets.assets_version()
    page = requests.get(f"{server.url}/console/", timeout=10)
    assert page.headers["Cache-Control"] == "no-cache"
    for path in ("js/main.js", "js/images.js", "console.css", "favicon.svg"):
        assert f"/console/v/{version}/{path}" in page.text
        response = requests.get(f"{server.url}/console/v/{version}/{path}", timeout=10)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert response.content == (STATIC_DIR / path).read_bytes()
        assert response.headers["Content-Security-Policy"] == CSP
    # an old page's version: the current file, not to be kept
    stale = requests.get(f"{server.url}/console/v/0123456789abcdef/js/main.js", timeout=10)
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == "no-cache"
    assert raw_get(server, f"/console/v/{version}/../../assets.py").status in (400, 404)
    assert raw_get(server, f"/console/v/{version}/").status == 404
    # index.html revalidates by an ETag that holds the version (its own date is not enough)
    again = requests.get(
        f"{server.url}/console/", headers={"If-None-Match": page.headers["ETag"]}, timeout=10
    )
    assert again.status_code == 304
    dated = requests.get(
        f"{server.url}/console/",
        headers={"If-Modified-Since": page.headers["Last-Modified"]},
        timeout=10,
    )
    assert dated.status_code == 200
    # any file's change is a new version
    copy = tmp_path / "static"
    shutil.copytree(STATIC_DIR, copy)
    monkeypatch.setattr(assets, "STATIC_DIR", copy)
    before = assets.assets_version()
    (copy / "js" / "format.js").write_text((copy / "js" / "format.js").read_text() + "\n")
    assert assets.assets_version() != before


def test_redirect_and_methods(server: ApiServer) -> None:
    response = requests.get(f"{server.url}/console", allow_redirects=False, timeout=10)
    assert response.status_code == 301 and response.headers["Location"] == "/console/"
    post = requests.post(f"{server.url}/console/", timeout=10)
    assert post.status_code == 405 and "GET, HEAD" in post.json()["error"]["message"]
    head = requests.head(f"{server.url}/console/console.css", timeout=10)
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/console/../README.md",
        "/console/js/../../assets.py",
        "/console/%2e%2e/assets.py",
        "/console/js/..%2f..%2fassets.py",
        "/console/js/%2E%2E/%2E%2E/__init__.py",
        "/console/..%5cassets.py",
        "/console/%00index.html",
        "/console/.hidden",
        "/console//etc/passwd",
        "/console/%2fetc%2fpasswd",
        "/console/nonexistent.js",
        "/console/js",  # a folder
        "/console/%ff.js",
    ],
)
def test_nothing_outside_the_assets(server: ApiServer, path: str) -> None:
    response = raw_get(server, path)
    assert response.status in (404, 400), (path, response.status)


def test_a_file_type_not_served_is_404(server: ApiServer) -> None:
    # __init__.py sits next to static/, never inside; a .py inside would not be served
    assert raw_get(server, "/console/../__init__.py").status == 404


def test_whoami_reports_the_proxy_identity(tmp_path: Path) -> None:
    server = start_tank(tmp_path / "auth", "--auth")
    try:
        caller = tenant("admin")
        who = requests.get(f"{server.url}/console/whoami", headers=caller.headers(), timeout=10)
        assert who.status_code == 200
        assert who.json() == {
            "auth": True,
            "tenant": caller.project,
            "user": caller.user,
            "roles": sorted(caller.roles),
            "is_admin": True,
        }
        assert who.headers["Cache-Control"] == "no-store"
        anonymous = requests.get(f"{server.url}/console/whoami", timeout=10)
        assert anonymous.status_code == 401
        assert "authentication required" in anonymous.json()["error"]["message"]
        # the static files need no identity (they hold no data)
        assert requests.get(f"{server.url}/console/", timeout=10).status_code == 200
    finally:
        stop_checked(server)


def test_whoami_without_auth_is_the_admin_every_request_is(server: ApiServer) -> None:
    who = requests.get(f"{server.url}/console/whoami", timeout=10).json()
    assert who == {"auth": False, "tenant": None, "user": None, "roles": [], "is_admin": True}


def test_disabled_console_is_404(tmp_path: Path) -> None:
    server = start_tank(tmp_path / "off", extra_config="\n[console]\nenabled = false\n")
    try:
        for path in ("/console/", "/console", "/console/js/main.js", "/console/whoami"):
            response = requests.get(server.url + path, allow_redirects=False, timeout=10)
            assert response.status_code == 404, path
        assert requests.get(f"{server.url}/v2/images", timeout=10).status_code == 200
    finally:
        stop_checked(server)


def test_unknown_console_key_stops_tank_api(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    with pytest.raises(pytest.fail.Exception, match=r"\[console\] enable"):
        start_tank(root, extra_config="\n[console]\nenable = false\n")


def test_wheel_ships_the_assets(tmp_path: Path) -> None:
    """tank-core's wheel carries every static file (hatch includes package data)."""
    build = pytest.importorskip("hatchling.builders.wheel")
    root = Path(__file__).parents[2] / "tank_core"
    wheel = build.WheelBuilder(str(root))
    [path] = list(wheel.build(directory=str(tmp_path), versions=["standard"]))
    names = set(zipfile.ZipFile(path).namelist())
    expected = {
        "tank/console/static/" + str(p.relative_to(STATIC_DIR))
        for p in STATIC_DIR.rglob("*")
        if p.is_file()
    }
    assert expected and expected <= names, expected - names
