"""The web console in a real browser: Debian's Chromium, headless, driven by Playwright
for Python, against real ``tank-api`` processes.

Playwright's own browser download is not used: ``TANK_CHROMIUM`` or ``chromium`` on PATH
(``apt-get install chromium``) is launched with ``executable_path``. Without either, or
without the ``playwright`` package (tank-core's ``testing`` extra), the browser tests skip
and say why. Screenshots go to ``$TANK_TEST_ARTIFACTS/console`` or the run's tmp dir.

The main server runs with ``--auth``, as behind a proxy that authenticates: each browser
context sends the identity headers such a proxy would add (Playwright's
``extra_http_headers``), so the console's requests carry exactly what a proxied browser's
would, and it must not add any of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tank.testing import identity
from tank.testing.api_server import ApiServer, stop_checked
from tank.testing.identity import Caller

from .chromium import CHROMIUM_ARGS, chromium_path

#: The fs store's folder inside each server's root.
CONFIG = """\
[stores.file]
datadir = "{root}/images"

[import]
allow_private_networks = true
"""


def tenant(role: str = "member") -> Caller:
    """A user of a new project whose id is short (``p-`` and 12 hex digits)."""
    return identity.tenant(role, project=f"p-{uuid.uuid4().hex[:12]}")


def start_tank(root: Path, *args: str, extra_config: str = "") -> ApiServer:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "tank.toml"
    config.write_text(CONFIG.format(root=root) + extra_config)
    return ApiServer(root / "data", root / "tank-api.log", ["--config", str(config), *args])


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go (kept after the run)."""
    root = os.environ.get("TANK_TEST_ARTIFACTS")
    if root:
        path = Path(root) / "console"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e 'tank_core[testing]')")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium: apt-get install chromium, or set TANK_CHROMIUM to its path")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def tank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The module's tank-api, with ``--auth`` (identities come from the proxy)."""
    server = start_tank(tmp_path_factory.mktemp("tank-console"), "--auth")
    yield server
    stop_checked(server)


@pytest.fixture(scope="module")
def alice() -> Caller:
    return tenant()


@pytest.fixture(scope="module")
def bob() -> Caller:
    return tenant()


class Console:
    """One browser tab of one user: pages, and what went wrong in them."""

    def __init__(self, context: Any, base: str, artifacts: Path) -> None:
        self.context = context
        self.page = context.new_page()
        self.base = base
        self.artifacts = artifacts
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )
        self.page.set_default_timeout(15_000)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def goto(self, route: str) -> Any:
        self.page.goto(f"{self.base}/console/#/{route}")
        return self.page

    def shot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_console(browser: Any, artifacts: Path) -> Iterator[Callable[..., Console]]:
    """``open_console(server, caller=None)``: a new browser context (no shared cookies
    or cache) sending ``caller``'s proxy headers; no page may log an error."""
    opened: list[Console] = []

    def make(server: ApiServer, caller: Caller | None = None) -> Console:
        headers = caller.headers() if caller else {}
        context = browser.new_context(
            extra_http_headers=headers, viewport={"width": 1280, "height": 800}
        )
        console = Console(context, server.url, artifacts)
        opened.append(console)
        return console

    yield make
    for console in opened:
        console.context.close()


class Api:
    """The v2 API as one caller, for setting up and checking what the console did."""

    def __init__(self, server: ApiServer, caller: Caller | None = None) -> None:
        self.url = server.url
        self.session = requests.Session()
        if caller:
            self.session.headers.update(caller.headers())

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=60, **kwargs)

    def create(self, **meta: Any) -> dict[str, Any]:
        meta.setdefault("disk_format", "raw")
        meta.setdefault("container_format", "bare")
        response = self("POST", "/v2/images", json=meta)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def upload(self, image_id: str, data: bytes) -> None:
        response = self(
            "PUT",
            f"/v2/images/{image_id}/file",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 204, response.text

    def get(self, image_id: str) -> dict[str, Any]:
        response = self("GET", f"/v2/images/{image_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]
