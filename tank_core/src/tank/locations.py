"""Location URIs: where a store keeps an image's data.

A location names data, never credentials. Legacy Glance locations may still embed
``user:password@``; :func:`redact` removes that (and secret-looking query parameters)
before a location reaches a log line, an error message or an API response.
"""

from __future__ import annotations

import re
import urllib.parse

from tank.errors import BadLocation

_SECRET_PARAMS = {
    "password",
    "passwd",
    "secret",
    "secret_key",
    "key",
    "token",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-goog-signature",
    "x-goog-credential",
    "access_token",
    "api_key",
    "apikey",
    "client_secret",
    "x-amz-security-token",
    "temp_url_sig",
    "sig",
}


def scheme_of(uri: str) -> str:
    """The lower-cased scheme of ``uri``; :class:`BadLocation` if it has none."""
    scheme = urllib.parse.urlsplit(uri).scheme.lower() if isinstance(uri, str) else ""
    if not scheme:
        raise BadLocation(f"location {redact(str(uri))!r} has no scheme (expected e.g. file://...)")
    return scheme


#: Glance's legacy rule for userinfo: everything up to the last ``@`` after ``user:``.
#: Needed because AWS secrets may contain ``/``, where ``urlsplit`` ends the netloc.
#: Greedy up to the last ``@``: a secret may hold ``@`` too (over-redacting is the safe side).
_LEGACY_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):(?P<secret>.*)@")


def redact(uri: str) -> str:
    """``uri`` without userinfo secrets or secret query parameters; safe to show anyone.

    Errs on the side of hiding: ``http://host:80/a@b`` shows as ``http://host:***@b``.
    """
    legacy = _LEGACY_USERINFO.match(uri) if isinstance(uri, str) else None
    if legacy and any(c in legacy["secret"] for c in "/?#@"):
        # where urlsplit would end the netloc early and show the rest of the secret
        uri = f"{legacy['head']}:***@{uri[legacy.end() :]}"
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return "<unparseable location>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = urllib.parse.urlencode(
            [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
        )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
