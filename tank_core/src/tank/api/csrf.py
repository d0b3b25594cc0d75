"""Requests a browser sends on another site's behalf are refused (cross-site request
forgery).

Tank sends no CORS headers, so another site's page cannot read Tank's answers; but a
browser still sends it "simple" requests (a form's POST, ``fetch`` in ``no-cors`` mode
with a ``text/plain`` body) with whatever the browser holds for Tank's origin: the
cookies of a login proxy in front of it (``--auth``), or its place on the network (an
admin's browser, on the only network that reaches tank-api). A request that would
change something (any method but GET, HEAD and OPTIONS) is refused with 403 when:

* ``Sec-Fetch-Site`` says ``cross-site`` or ``same-site`` (current browsers send it on
  every request; the console's own requests say ``same-origin``);
* without it (older browsers), ``Origin`` is ``null`` or not this server's own origin:
  the scheme and ``Host`` of the request, as the front proxy reports them when
  ``trust_proxy_headers`` is on.

Clients other than browsers send neither header and are not affected. Glance needs no
such check: its clients authenticate with a token in a header, which a page of another
site cannot add; a proxy that authenticates with cookies adds its identity to every
request.
"""

from __future__ import annotations

import urllib.parse

from tank.web import Request

#: Methods that change nothing, never refused here.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def refusal(req: Request) -> str | None:
    """Why ``req`` is refused as a cross-site request; None if it is not one."""
    if req.method in SAFE_METHODS:
        return None
    site = req.headers.get("sec-fetch-site", "").strip().lower()
    if site in ("cross-site", "same-site"):
        return f"a request a browser sent from another site ({site}) may not change images"
    if site:  # same-origin, or none (the user's own action): the browser vouches
        return None
    origin = req.headers.get("origin")
    if origin is None:
        return None
    if _normal(origin) != _own_origin(req):
        return f"a request from another origin ({origin[:200]!r}) may not change images"
    return None


def _own_origin(req: Request) -> str | None:
    scheme = req.environ.get("wsgi.url_scheme", "http")
    host = req.headers.get("host") or req.environ.get("SERVER_NAME", "")
    return _normal(f"{scheme}://{host}")


def _normal(origin: str) -> str | None:
    """``scheme://host:port`` in lower case with the port spelt out; None for ``null``
    or anything that is not an origin."""
    try:
        parts = urllib.parse.urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return f"{scheme}://{parts.hostname.lower()}:{port or _DEFAULT_PORTS[scheme]}"
