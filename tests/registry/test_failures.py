"""A registry that is down, slow, or answers something else than the Registry API: the
client says so with StoreUnavailable naming the URL, quickly, and retries only calls
whose repetition cannot change their outcome."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tank import errors
from tank.model import Context, Image, ListQuery, Status
from tank.registry_http.client import HttpRegistry

ADMIN = Context.admin()
IMAGE_ID = str(uuid.uuid4())


def test_registry_killed_mid_flow(
    start_registry: Callable[..., Any], connect: Callable[..., HttpRegistry]
) -> None:
    server = start_registry()
    registry = connect(server.url, backoff=0)
    image = registry.create(Image(name="before"))
    assert registry.get(image.id, context=ADMIN) == image
    server.stop(kill=True)
    for call in (
        lambda: registry.get(image.id, context=ADMIN),
        lambda: registry.create(Image(name="after")),
        lambda: registry.update(image.id, {"name": "x"}, context=ADMIN),
    ):
        with pytest.raises(errors.StoreUnavailable) as caught:
            call()
        assert str(caught.value).startswith(f"registry at {server.url} is unreachable: ")
        assert "Connection refused" in str(caught.value)


def test_slow_registry_times_out_quickly_and_is_not_retried(
    scripted, connect: Callable[..., HttpRegistry]
) -> None:  # type: ignore[no-untyped-def]
    """The server answers only when the test lets it, after the call has returned: so
    the call can only have ended by its read timeout, with one request sent."""
    scripted.answering.clear()
    registry = connect(scripted.url, read_timeout=0.3, retries=3, backoff=0)
    with pytest.raises(errors.StoreUnavailable, match=r"did not answer within 0\.3 s") as caught:
        registry.list(ListQuery(), context=ADMIN)
    assert scripted.url in str(caught.value)
    assert len(scripted.requests) == 1
    scripted.answering.set()


BAD_ANSWERS = [
    # status, body, content type, what the message says
    (200, b"<html>oops</html>", "text/html", "body that is not JSON (text/html)"),
    (200, b'{"image": {"id": "x', "application/json", "not JSON"),
    (200, b"[" * 200_000, "application/json", "not JSON"),
    (200, b'{"images": []}', "application/json", "no 'image' in its answer"),
    (200, b'{"image": {"id": "nope"}}', "application/json", "answered badly: id: not a valid UUID"),
    (200, b'{"image": {"colour": "red"}}', "application/json", "answered badly: colour: unknown"),
    (200, b'{"image": []}', "application/json", "answered badly: image: expected a JSON object"),
    (302, b"{}", "application/json", "unexpected status 302"),
    (502, b"<html>Bad Gateway</html>", "text/html", "status 502 with a body that is not JSON"),
    (404, b'{"detail": "nope"}', "application/json", "status 404 without an error body"),
]


@pytest.mark.parametrize("status,body,content_type,message", BAD_ANSWERS)
def test_bad_answers_are_the_registrys_fault(
    scripted,  # type: ignore[no-untyped-def]
    connect: Callable[..., HttpRegistry],
    status: int,
    body: bytes,
    content_type: str,
    message: str,
) -> None:
    scripted.status, scripted.body = status, body
    scripted.headers = {"Content-Type": content_type, "Location": "http://example.com/"}
    registry = connect(scripted.url)
    with pytest.raises(errors.StoreUnavailable) as caught:
        registry.get(IMAGE_ID, context=ADMIN)
    assert str(caught.value).startswith(f"registry at {scripted.url} answered badly: ")
    assert message in str(caught.value)
    assert scripted.requests == [f"GET /images/{IMAGE_ID}"]  # no redirect followed


def test_bad_listings_and_members_are_the_registrys_fault(
    scripted,  # type: ignore[no-untyped-def]
    connect: Callable[..., HttpRegistry],
) -> None:
    registry = connect(scripted.url)
    scripted.body = b'{"images": [{"id": "nope"}]}'
    with pytest.raises(errors.StoreUnavailable, match="answered badly: id: "):
        registry.list(ListQuery(), context=ADMIN)
    scripted.body = b'{"images": {"a": 1}}'
    with pytest.raises(
        errors.StoreUnavailable, match="answered badly: images: expected a JSON list"
    ):
        registry.list(ListQuery(), context=ADMIN)
    scripted.body = b'{"members": [{"image_id": "x"}]}'
    with pytest.raises(errors.StoreUnavailable, match=r"answered badly: id: not a valid UUID: 'x'"):
        registry.list_members(IMAGE_ID, context=ADMIN)


@pytest.mark.parametrize(
    "error,expected,text",
    [
        ({"type": "NotFound", "message": "gone"}, errors.NotFound, "gone"),
        ({"type": "Weird", "message": "odd"}, errors.Conflict, "odd"),  # by status: 409
        (
            {"type": "StoreUnavailable", "message": "database down"},
            errors.StoreUnavailable,
            "registry at {url}: database down",
        ),
        ({"type": "Weird", "message": "boom"}, errors.StoreError, "registry at {url}: boom"),
    ],
)
def test_errors_keep_their_class(
    scripted,  # type: ignore[no-untyped-def]
    connect: Callable[..., HttpRegistry],
    error: dict[str, str],
    expected: type[errors.TankError],
    text: str,
) -> None:
    import json

    status = {"NotFound": 404, "StoreUnavailable": 503}.get(error["type"], 409)
    if error["message"] == "boom":
        status = 500
    scripted.status, scripted.body = status, json.dumps({"error": error}).encode()
    with pytest.raises(errors.TankError) as caught:
        connect(scripted.url).get(IMAGE_ID, context=ADMIN)
    assert type(caught.value) is expected
    assert str(caught.value) == text.format(url=scripted.url)


@pytest.mark.parametrize(
    "call,attempts",
    [
        (lambda r: r.get(IMAGE_ID, context=ADMIN), 3),
        (lambda r: r.list(ListQuery(), context=ADMIN), 3),
        (lambda r: r.add_member(IMAGE_ID, "m", context=ADMIN), 3),
        (lambda r: r.replace_members(IMAGE_ID, [("m", True)], context=ADMIN), 3),
        (lambda r: r.create(Image()), 1),
        (
            lambda r: r.update(
                IMAGE_ID, {"status": "active"}, context=ADMIN, expected_status=Status.SAVING
            ),
            1,
        ),
        (lambda r: r.delete(IMAGE_ID, context=ADMIN), 1),
        (lambda r: r.remove_member(IMAGE_ID, "m", context=ADMIN), 1),
    ],
)
def test_only_calls_safe_to_repeat_are_retried_once_sent(
    scripted,  # type: ignore[no-untyped-def]
    connect: Callable[..., HttpRegistry],
    call: Callable[[HttpRegistry], object],
    attempts: int,
) -> None:
    scripted.hang_up = True  # reads the whole request, then closes without answering
    registry = connect(scripted.url, retries=2, backoff=0)
    with pytest.raises(errors.StoreUnavailable, match="dropped the connection"):
        call(registry)
    assert len(scripted.requests) == attempts, scripted.requests


def test_calls_that_never_reached_the_registry_are_retried(
    scripted,  # type: ignore[no-untyped-def]
    connect: Callable[..., HttpRegistry],
) -> None:
    url = scripted.url
    scripted.close()  # nothing listens on the port any more
    registry = connect(url, retries=2, backoff=0.01)
    with pytest.raises(errors.StoreUnavailable, match=r"unreachable.*\(after 3 attempts\)"):
        registry.create(Image())


@pytest.mark.parametrize(
    "key,value",
    [
        ("url", "ftp://127.0.0.1:9191"),
        ("url", "http://user:secret@127.0.0.1:9191"),
        ("url", "http://"),
        ("read_timeout", 0),
        ("retries", -1),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, key: str, value: object) -> None:
    from tank.config import load
    from tank.plugins import make_plugin_manager
    from tank.service import open_registry

    section = {"url": "http://127.0.0.1:9191", key: value}
    config = load(data_dir=tmp_path, environ={})
    import attrs

    config = attrs.evolve(config, registry=section)
    with pytest.raises(errors.ConfigError, match=rf"\[registry\].*{key}") as caught:
        open_registry(config, make_plugin_manager())
    assert "secret" not in str(caught.value)


def test_proxy_settings_of_the_environment_are_not_used(
    served: str, connect: Callable[..., HttpRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Identity headers and locations go straight to the configured registry, never
    through an HTTP(S)_PROXY from the environment (here one that does not exist)."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    registry = connect(served)
    image = registry.create(Image(name="direct"))
    assert registry.get(image.id, context=Context.admin()).name == "direct"
