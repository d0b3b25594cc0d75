"""``http(s)://`` locations: a URL on a web server, possibly with legacy credentials.

Glance let users register ``https://user:password@host/image`` locations. Tank reads them
(the credentials become HTTP basic auth, sent only to that exact origin), but
:meth:`HttpLocation.redacted` is what goes into logs and error messages.
"""

from __future__ import annotations

import urllib.parse

import attrs

from tank.errors import BadLocation
from tank.locations import redact

#: An example location for error messages.
location_example = "https://images.example.com/cirros-0.6.2-x86_64-disk.img"

_DEFAULT_PORTS = {"http": 80, "https": 443}


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
        try:
            parts = urllib.parse.urlsplit(uri)
            port = parts.port
            host = parts.hostname
        except ValueError as exc:
            raise BadLocation(f"location {redact(uri)!r} is not a valid URL: {exc}") from None
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
