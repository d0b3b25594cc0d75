"""Routes: a path template and a handler per method; one line per endpoint.

    router = Router()
    router.add("/images/{image_id}", GET=download, HEAD=head, DELETE=delete)
    match = router.match("/images/abc")   # Match(handler=..., params={"image_id": "abc"})

Paths are matched as the client sent them (still percent-encoded) and each captured
segment is decoded exactly once, so an id or member containing ``%2F`` or ``%41``
means what the client meant. HEAD falls back to GET. A path that matches with another
method is :class:`MethodNotAllowed`, carrying the ``Allow`` list.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import attrs

from tank import errors
from tank.web.headers import from_wire

Handler = Callable[..., Any]
_PARAM = re.compile(r"\{([a-z_]+)\}")


class MethodNotAllowed(errors.TankError):
    http_status = 405

    def __init__(self, method: str, allowed: list[str]) -> None:
        super().__init__(f"{method[:20]} is not allowed here ({', '.join(allowed)})")
        self.allowed = allowed


@attrs.frozen
class Match:
    handler: Handler
    params: dict[str, Any]
    #: The route's path template (``/images/{image_id}``): a label for metrics.
    template: str = ""


@attrs.frozen
class Route:
    template: str
    pattern: re.Pattern[str]
    methods: dict[str, Handler]


class Router:
    """``decode(name, segment)`` decodes a captured segment (default: strict UTF-8,
    a 400 naming the parameter otherwise)."""

    def __init__(self, decode: Callable[[str, str], str] | None = None) -> None:
        self.routes: list[Route] = []
        self.decode = decode or unquote_segment

    def add(self, template: str, **methods: Handler) -> None:
        """Serve ``template`` (``/images/{image_id}``; a trailing slash is optional)
        with one handler per HTTP method, given as keyword arguments."""
        regex = _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", template.rstrip("/"))
        pattern = re.compile(f"^{regex}/?$")
        self.routes.append(Route(template, pattern, {m.upper(): h for m, h in methods.items()}))

    def match(self, path: str, method: str, *, quoted: bool = True) -> Match | None:
        """The handler for ``method`` on ``path``, None when no route has the path.

        ``quoted``: the path is still percent-encoded (captured segments are decoded
        once here). Raises :class:`MethodNotAllowed` when the path exists.
        """
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            handler = route.methods.get(method)
            if handler is None and method == "HEAD":
                handler = route.methods.get("GET")
            if handler is None:
                raise MethodNotAllowed(method, sorted(route.methods))
            params = found.groupdict()
            if quoted:
                params = {k: self.decode(k, v) for k, v in params.items()}
            return Match(handler, params, route.template)
        return None


def unquote_segment(field: str, segment: str) -> str:
    """A path segment percent-decoded once; ValidationError naming ``field`` if not UTF-8."""
    try:
        return urllib.parse.unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise errors.ValidationError(field, "not UTF-8 once percent-decoded") from None


def route_path(environ: dict[str, Any]) -> tuple[str, bool]:
    """The request path, and whether its segments are still percent-encoded.

    Servers decode ``PATH_INFO`` before the app sees it, so a member named ``a%41`` or
    ``x/y`` would be misread. The raw ``REQUEST_URI`` (Tank's server, cheroot, uWSGI)
    or ``RAW_URI`` (gunicorn) is routed instead when present.
    """
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    script = environ.get("SCRIPT_NAME", "")
    if raw:  # origin form: never split off an "authority" from "//host/path"
        path = from_wire(raw.partition("?")[0].partition("#")[0])
        prefix = urllib.parse.quote(script)
        if path.startswith(prefix):
            return path[len(prefix) :] or "/", True
    return from_wire(environ.get("PATH_INFO", "") or "/"), False
