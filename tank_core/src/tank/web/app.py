"""``WebApp``: the WSGI side shared by tank-api and tank-registry.

A subclass supplies a :class:`~tank.web.routing.Router`, how to call a handler (what
context it gets), and how an error looks on its wire. ``WebApp`` does the rest once:
dispatch, 404/405 answers with ``Allow``, errors of :mod:`tank.errors` as their HTTP
status, unexpected exceptions logged and answered 500 without details, HEAD answers
without a body, and the body counted for the access log.

Every response carries ``X-Openstack-Request-Id`` (:mod:`tank.web.request_ids`), and
every request makes one access-log line: its request id, the client's address, the
caller's tenant and user when known, method, path (never the query string: no secrets),
status, bytes in and out, and duration. The fields also go with the record as
``record.access`` (a dict) for the JSON log format.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tank import errors
from tank.web import request_ids
from tank.web.messages import FileBody, Request, Response
from tank.web.routing import Match, MethodNotAllowed, Router, route_path

log = logging.getLogger(__name__)

#: environ key of the caller's :class:`~tank.model.Context`, once a subclass made it.
ENV_CONTEXT = "tank.context"
#: environ key of the route template that matched (``/v2/images/{image_id}``).
ENV_ROUTE = "tank.route"
#: environ key of the exception a request failed with, if any.
ENV_ERROR = "tank.error"
_USERINFO = re.compile(r"//[^/@]*@")


class WebApp:
    """A WSGI application over a :class:`Router`."""

    router: Router
    #: Logger of the access-log lines; None logs none.
    access_log: logging.Logger | None = None

    # --- what subclasses decide ----------------------------------------------------

    def route(self, req: Request, path: str, quoted: bool) -> Match | None:
        """The handler for this request (override to serve prefixes or versions)."""
        return self.router.match(path, req.method, quoted=quoted)

    def call(self, req: Request, match: Match) -> Response:
        """Run the handler (override to pass a context or the app itself)."""
        return match.handler(req, **match.params)  # type: ignore[no-any-return]

    def error(self, status: int, message: str, exc: BaseException | None = None) -> Response:
        """The answer for an error (override for another wire format)."""
        return Response.error(status, message)

    # --- the WSGI callable ---------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.monotonic()
        request_id = request_ids.assign(environ)
        response = self._respond(environ)
        response.headers.append((request_ids.HEADER, request_id))
        if environ.get("REQUEST_METHOD") == "HEAD":  # errors too: never a body
            response.close()
            response.body = []
        start_response(response.status_line, response.headers)
        body, file_wrapper = response.body, environ.get("wsgi.file_wrapper")
        if isinstance(body, FileBody) and file_wrapper is not None:
            # Returned as is: the server recognises its own wrapper and uses sendfile.
            wrapped = file_wrapper(body, 1 << 20)

            def closed() -> None:
                body.sent = getattr(wrapped, "sent", body.length)
                self._log(environ, response.status, body.sent, started)

            body.on_close = closed
            return wrapped  # type: ignore[no-any-return]
        return _Counted(response, lambda sent: self._log(environ, response.status, sent, started))

    def _respond(self, environ: dict[str, Any]) -> Response:
        try:
            req = Request(environ)
            path, quoted = route_path(environ)
            match = self.route(req, path, quoted)
            if match is None:
                raise errors.NotFound(f"no such resource: {path[:200]}")
            environ[ENV_ROUTE] = match.template
            return self.call(req, match)
        except MethodNotAllowed as exc:
            environ[ENV_ERROR] = exc
            response = self.error(405, str(exc), exc)
            response.headers.append(("Allow", ", ".join(exc.allowed)))
            return response
        except errors.TankError as exc:
            environ[ENV_ERROR] = exc
            response = self.error(exc.http_status, str(exc), exc)
            if exc.retry_after is not None:
                response.headers.append(("Retry-After", str(exc.retry_after)))
            return response
        except Exception as exc:
            environ[ENV_ERROR] = exc
            log.exception(
                "unexpected error in %s %s (%s)",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                environ.get(request_ids.ENV_REQUEST_ID),
            )
            return self.error(500, "internal error; the server log has the details", exc)

    def observe(self, environ: dict[str, Any], status: int, sent: int, seconds: float) -> None:
        """Called once per request when its response is done (override for metrics)."""

    def _log(self, environ: dict[str, Any], status: int, sent: int, started: float) -> None:
        seconds = time.monotonic() - started
        try:
            self.observe(environ, status, sent, seconds)
        except Exception:
            log.exception("recording the metrics of a request failed")
        if self.access_log is None:
            return
        fields = access_fields(environ, status, sent, seconds)
        self.access_log.info(
            '%s %s %s %s "%s %s" %d %d %.3fs in=%d%s',
            fields["request_id"],
            fields["client"],
            fields["tenant"] or "-",
            fields["user"] or "-",
            fields["method"],
            fields["path"],
            status,
            sent,
            seconds,
            fields["bytes_in"],
            f" global={fields['global_request_id']}" if fields["global_request_id"] else "",
            extra={"access": fields},
        )


def access_fields(
    environ: dict[str, Any], status: int, sent: int, seconds: float
) -> dict[str, Any]:
    """What the access log says about a request (never a credential: no query string,
    no headers, no user information in a URL)."""
    ctx = environ.get(ENV_CONTEXT)
    body = environ.get("wsgi.input")
    path = _USERINFO.sub("//***@", str(environ.get("PATH_INFO") or "/"))
    return {
        "request_id": environ.get(request_ids.ENV_REQUEST_ID),
        "global_request_id": environ.get(request_ids.ENV_GLOBAL_REQUEST_ID),
        "client": environ.get("REMOTE_ADDR") or "-",
        "tenant": _printable(ctx.tenant) if ctx is not None and ctx.tenant else None,
        "user": _printable(ctx.user) if ctx is not None and ctx.user else None,
        "method": _printable(str(environ.get("REQUEST_METHOD"))),
        "path": _printable(path),
        "status": status,
        "bytes_in": int(getattr(body, "received", 0) or 0),
        "bytes_out": sent,
        "seconds": round(seconds, 6),
    }


def _printable(text: str) -> str:
    """``text`` with control characters escaped: a decoded ``%0A`` in a path must not
    start a forged line in the log."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Counted:
    """A response body that counts its bytes and reports them once, at close."""

    def __init__(self, response: Response, done: Callable[[int], None]) -> None:
        self.response = response
        self.done = done

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.response.body:
            self.response.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            self.response.close()
        finally:
            self.done(self.response.sent)
