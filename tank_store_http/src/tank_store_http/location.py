"""``http(s)://`` locations: a URL on a web server, possibly with legacy credentials.

Glance let users register ``https://user:password@host/image`` locations. Tank reads them
(the credentials become HTTP basic auth, sent only to that exact origin), but
:meth:`HttpLocation.redacted` is what goes into logs and error messages.
"""

from __future__ import annotations

import re
import urllib.parse

import attrs

from tank.errors import BadLocation
from tank.locations import redact

#: An example location for error messages.
location_example = "https://images.example.com/cirros-0.6.2-x86_64-disk.img"

_DEFAULT_PORTS = {"http": 80, "https": 443}


#: ``scheme://name:rest@``, greedy to the last ``@``.
_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@:?#]*:(?P<rest>.*)@")


def _unencoded_secret(uri: str) -> bool:
    """True for ``https://user:pa#ss@host/``: a password holding a character that ends a
    URL's authority, so the URL names another host than it seems to. (``host:8080/a@b``
    is a port and a path, not a password.)"""
    match = _USERINFO.match(uri)
    if match is None:
        return False
    rest = match["rest"]
    cut = min((rest.index(c) for c in "/?#" if c in rest), default=None)
    return cut is not None and not rest[:cut].isdigit()


@attrs.frozen
class HttpLocation:
    """A parsed location; ``url`` has no userinfo, ``auth`` holds it (or None)."""

    url: str
    scheme: str
    host: str
    port: int
    auth: tuple[str, str] | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, uri: str) -> HttpLocation:
        """Raise :class:`~tank.errors.BadLocation` unless ``uri`` is a usable http(s) URL."""
        if _unencoded_secret(uri):
            # "https://u:a#b@host/" would be host "u", port "a", fragment "b@host/"
            raise BadLocation(
                f"location {redact(uri)!r}: a password containing '/', '?' or '#' "
                "must be percent-encoded"
            )
        try:
            parts = urllib.parse.urlsplit(uri)
            port = parts.port
            host = parts.hostname
        except ValueError as exc:
            why = "" if "@" in uri else f": {exc}"  # the library quotes parts of the URL
            raise BadLocation(f"location {redact(uri)!r} is not a valid URL{why}") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise BadLocation(f"location {redact(uri)!r} is not an http:// or https:// URL")
        if not host:
            raise BadLocation(f"location {redact(uri)!r} has no host (e.g. {location_example})")
        if any(c.isspace() or ord(c) < 32 for c in uri):
            raise BadLocation(f"location {redact(uri)!r} contains whitespace or control bytes")
        auth = None
        if parts.username is not None or parts.password is not None:
            auth = (
                urllib.parse.unquote(parts.username or ""),
                urllib.parse.unquote(parts.password or ""),
            )
        netloc = parts.netloc.rpartition("@")[2]
        url = urllib.parse.urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        return cls(
            url=url,
            scheme=scheme,
            host=host.lower(),
            port=port or _DEFAULT_PORTS[scheme],
            auth=auth,
        )

    @property
    def origin(self) -> tuple[str, str, int]:
        """(scheme, host, port): credentials are sent only while this stays the same."""
        return (self.scheme, self.host, self.port)

    def to_uri(self) -> str:
        """The location as registered (with its credentials, if it had any)."""
        if self.auth is None:
            return self.url
        user, password = (urllib.parse.quote(p, safe="") for p in self.auth)
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{user}:{password}@{rest}"

    def redacted(self) -> str:
        """Safe to log and to show: no password, no secret-looking query parameters."""
        return redact(self.to_uri())

    def __str__(self) -> str:
        return self.redacted()
