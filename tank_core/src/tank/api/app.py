"""The WSGI application: routing, the request context, error answers, the access log.

Every error becomes JSON ``{"error": {"code", "title", "message"}}`` with the status of
its :mod:`tank.errors` class; anything unexpected is logged with its traceback and
answered 500 without details. Both ``/v1/...`` and unprefixed paths are served.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from tank import errors
from tank.api import images, members
from tank.api.context import context_from_headers
from tank.api.http import (
    UPLOAD_CHUNK,
    ClientGone,
    FileBody,
    Request,
    Response,
    route_path,
    unquote_segment,
)
from tank.config import positive
from tank.locations import redact
from tank.model import Context, Image
from tank.service import ImageService

log = logging.getLogger(__name__)
access_log = logging.getLogger("tank.api.access")

Handler = Callable[..., Response]
_ID = r"(?P<image_id>[^/]+)"
_MEMBER = r"(?P<member>[^/]+)"
ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"^/images/?$"), {"GET": images.index, "POST": images.create}),
    (re.compile(r"^/images/detail/?$"), {"GET": images.detail}),
    (
        re.compile(rf"^/images/{_ID}/?$"),
        {
            "HEAD": images.head,
            "GET": images.download,
            "PUT": images.update,
            "DELETE": images.delete,
        },
    ),
    (
        re.compile(rf"^/images/{_ID}/members/?$"),
        {"GET": members.list_members, "PUT": members.replace_members},
    ),
    (
        re.compile(rf"^/images/{_ID}/members/{_MEMBER}/?$"),
        {"PUT": members.add_member, "DELETE": members.remove_member},
    ),
    (re.compile(rf"^/shared-images/{_MEMBER}/?$"), {"GET": members.shared_images}),
]


@attrs.frozen(kw_only=True)
class ApiConfig:
    """The ``[api]`` section."""

    #: Trust identity headers from a front proxy / Keystone middleware.
    auth: bool = False
    #: Show image locations to admins (Glance's show_image_direct_url).
    show_image_direct_url: bool = False
    #: Worker threads of the HTTP server (concurrent requests).
    threads: int = attrs.field(default=16, validator=positive)


class Api:
    """The Images API over one :class:`~tank.service.ImageService`; a WSGI callable."""

    def __init__(self, service: ImageService, config: ApiConfig | None = None) -> None:
        self.service = service
        self.config = config or ApiConfig()

    def direct_url(self, ctx: Context) -> Callable[[Image], str | None]:
        """How to show an image's location to this caller: only to admins, only with
        ``show_image_direct_url``, as the store's direct URL (never with secrets)."""
        if not (self.config.show_image_direct_url and ctx.is_admin):
            return lambda image: None
        stores = self.service.stores

        def shown(image: Image) -> str | None:
            if not image.location:
                return None
            try:
                backend = stores.for_location(image.location, image.store)
            except errors.TankError:
                return None
            return backend.direct_url(image.location) or redact(image.location)

        return shown

    @staticmethod
    def base_url(req: Request) -> str:
        env = req.environ
        host = req.headers.get("host") or f"{env.get('SERVER_NAME')}:{env.get('SERVER_PORT')}"
        return f"{env.get('wsgi.url_scheme', 'http')}://{host}"

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.monotonic()
        response = self._respond(environ)
        if environ.get("REQUEST_METHOD", "").upper() == "HEAD":  # errors too: never a body
            _close(response.body)
            response.body = []
        start_response(response.status_line, response.headers)
        body, file_wrapper = response.body, environ.get("wsgi.file_wrapper")
        if isinstance(body, FileBody) and file_wrapper is not None:
            # Returned as is: the server recognises its own wrapper and uses sendfile.
            wrapped = file_wrapper(body, UPLOAD_CHUNK)
            body.on_close = lambda: _log_request(
                environ, response.status, getattr(wrapped, "sent", body.length), started
            )
            return wrapped  # type: ignore[no-any-return]
        return _Logged(response, environ, started)

    def _respond(self, environ: dict[str, Any]) -> Response:
        try:
            req = Request(environ)
            return self._dispatch(req)
        except ClientGone as exc:
            log.info("client went away: %s", exc)
            return Response.error(400, str(exc))
        except errors.TankError as exc:
            return Response.error(exc.http_status, str(exc))
        except Exception:
            log.exception(
                "unexpected error in %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            return Response.error(500, "internal error; the server log has the details")

    def _dispatch(self, req: Request) -> Response:
        path, quoted = route_path(req.environ)
        if path in ("", "/", "/versions", "/v1", "/v1/"):
            if req.method not in ("GET", "HEAD"):
                response = Response.error(405, f"{req.method[:20]} is not allowed here (GET, HEAD)")
                response.headers.append(("Allow", "GET, HEAD"))
                return response
            return self._versions(req)
        if path.startswith("/v1/"):
            path = path[3:]
        for pattern, methods in ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            method = "GET" if req.method == "HEAD" and "HEAD" not in methods else req.method
            handler = methods.get(method)
            if handler is None:
                allowed = ", ".join(sorted(methods))
                response = Response.error(405, f"{req.method} is not allowed here ({allowed})")
                response.headers.append(("Allow", allowed))
                return response
            params = match.groupdict()
            if quoted:  # decoded exactly once: "a%2541" is the member "a%41"
                params = {k: _decode(k, v) for k, v in params.items()}
            ctx = context_from_headers(req.headers, auth=self.config.auth)
            response = handler(self, req, ctx, **params)
            if req.method == "HEAD":
                _close(response.body)
                response.body = []
            return response
        return Response.error(404, f"no such resource: {req.path[:200]}")

    def _versions(self, req: Request) -> Response:
        base = self.base_url(req)
        versions = [
            {"id": vid, "status": status, "links": [{"rel": "self", "href": f"{base}/v1/"}]}
            for vid, status in (("v1.1", "CURRENT"), ("v1.0", "SUPPORTED"))
        ]
        return Response.json({"versions": versions}, 300)


def _decode(name: str, segment: str) -> str:
    """A path parameter, percent-decoded once. A member name that is not UTF-8 is a 400;
    an image id that is not cannot exist (404 from the handler, as for any non-UUID)."""
    if name == "image_id":
        return urllib.parse.unquote(segment, errors="replace")
    return unquote_segment(name, segment)


def _close(body: Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


class _Logged:
    """Wraps a response body to count bytes and write the access-log line at close."""

    def __init__(self, response: Response, environ: dict[str, Any], started: float) -> None:
        self.response = response
        self.environ = environ
        self.started = started

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.response.body:
            self.response.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            _close(self.response.body)
        finally:
            _log_request(self.environ, self.response.status, self.response.sent, self.started)


def _log_request(environ: dict[str, Any], status: int, sent: int, started: float) -> None:
    access_log.info(
        "%s %s %d %d %.3fs",
        environ.get("REQUEST_METHOD"),
        environ.get("PATH_INFO"),  # never the query: no filters, no secrets
        status,
        sent,
        time.monotonic() - started,
    )


def make_app(service: ImageService, config: ApiConfig | None = None) -> Api:
    """The Images API as a WSGI application, for tank-api or any WSGI server."""
    return Api(service, config)
