"""Swift locations: ``swift+http(s)://<auth host>[/<auth path>]/<container>/<object>``.

This is Glance's Swift location without the credentials: the authority and path up to
the last two components are the cluster's *auth address* (minus its scheme, which the
``swift+http`` / ``swift+https`` scheme carries); the last two components are the
container and the object, percent-quoted. Tank writes only this form.

Tank also reads Glance's legacy forms ``swift://user:key@auth/container/obj`` (``swift://``
means an https auth address, as in Glance) and ``swift+http(s)://account:user:key@...``.
Their embedded credentials are dropped while parsing, never stored, echoed or used: the
store authenticates with its own configured credentials.
"""

from __future__ import annotations

import urllib.parse

import attrs

from tank.errors import BadLocation

SCHEMES = ("swift", "swift+http", "swift+https")
EXAMPLE = "swift+https://keystone.example.com:5000/v3/<container>/<object>"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def scrub(uri: object) -> str:
    """``uri`` with everything up to its last ``@`` hidden: safe even when unparseable.

    Glance-era keys may contain ``/`` or ``@`` unquoted, which defeats URL parsing; this
    cuts by hand so a malformed legacy location never reaches a message with its key.
    """
    text = str(uri)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "<unparseable location>"
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}://{rest}"


@attrs.frozen
class SwiftLocation:
    """Where an image's data lives in a Swift cluster (no credentials, ever)."""

    scheme: str
    #: The auth address without its scheme: ``host[:port][/path]``, no trailing slash.
    auth: str
    container: str
    obj: str
    #: True if the parsed URI carried ``user:key@`` (a legacy Glance location).
    had_credentials: bool = attrs.field(default=False, eq=False)

    @classmethod
    def parse(cls, uri: str) -> SwiftLocation:
        """Parse any accepted form; :class:`~tank.errors.BadLocation` says what is wrong."""
        if not isinstance(uri, str):
            raise BadLocation(f"a swift location must be a string (e.g. {EXAMPLE})")
        scheme, sep, rest = uri.partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in SCHEMES:
            raise BadLocation(
                f"not a swift location: {scrub(uri)!r} (expected e.g. {EXAMPLE})",
                location=scrub(uri),
            )
        had_credentials = "@" in rest
        if had_credentials:
            rest = rest.rpartition("@")[2]
        if "://" in rest or "?" in rest or "#" in rest:
            raise BadLocation(
                f"swift location {scrub(uri)!r} must be scheme://auth-host/.../container/"
                f"object, without a second scheme, a query or a fragment (e.g. {EXAMPLE})",
                location=scrub(uri),
            )
        parts = rest.split("/")
        if len(parts) < 3 or not parts[0] or not parts[-1] or not parts[-2]:
            raise BadLocation(
                f"swift location {scrub(uri)!r} needs an auth host, a container and an "
                f"object (e.g. {EXAMPLE})",
                location=scrub(uri),
            )
        auth = "/".join(p for p in parts[:-2] if p)
        container, obj = (urllib.parse.unquote(p) for p in parts[-2:])
        return cls(scheme, auth, container, obj, had_credentials=had_credentials)

    @classmethod
    def for_object(cls, auth_address: str, container: str, obj: str) -> SwiftLocation:
        """The location Tank writes for ``obj`` in ``container`` of the cluster at
        ``auth_address`` (a full http(s) URL)."""
        parts = urllib.parse.urlsplit(auth_address)
        auth = (parts.netloc + parts.path).strip("/")
        return cls(f"swift+{parts.scheme.lower()}", auth, container, obj)

    @property
    def auth_scheme(self) -> str:
        """``http`` or ``https``; Glance's bare ``swift://`` means https."""
        return "http" if self.scheme == "swift+http" else "https"

    @property
    def host_port(self) -> tuple[str, int]:
        """The auth host (lower case) and port, the default port filled in."""
        netloc = self.auth.split("/", 1)[0]
        parsed = urllib.parse.urlsplit(f"{self.auth_scheme}://{netloc}")
        try:
            port = parsed.port
        except ValueError:
            raise BadLocation(f"swift location {self.to_uri()!r} has a bad port") from None
        return (parsed.hostname or "", port or _DEFAULT_PORTS[self.auth_scheme])

    def to_uri(self) -> str:
        """The credential-free form (also for a parsed legacy location)."""
        return f"{self.scheme}://{self.auth}/{_quote(self.container)}/{_quote(self.obj)}"

    def redacted(self) -> str:
        """Safe to show anyone: the form Tank writes never has credentials."""
        return self.to_uri()

    def __str__(self) -> str:
        return self.to_uri()
