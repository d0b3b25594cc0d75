"""S3 locations: ``s3://<bucket>/<key>``, plus the legacy Glance forms Tank still reads.

Tank writes ``s3://<bucket>/<key>``: a bucket and a key, nothing else. Which endpoint
and which credentials are used is decided by the store instance that reads it (its
``[stores.<name>]`` section, recorded with the image), so a location never carries a
secret and one bucket name can live on several endpoints.

Glance wrote ``s3://<access>:<secret>@<host>/<bucket>/<key>`` and
``s3+http(s)://[<access>:<secret>@]<host>/<bucket>/<key>``. Those are parsed into the
same value: the host is kept (as :attr:`S3Location.endpoint`) so the store can check it
is the endpoint it is configured for, and the credentials are dropped at parse time, so
nothing built from an :class:`S3Location` can echo them.
"""

from __future__ import annotations

import re
import urllib.parse

import attrs

from tank.errors import BadLocation

#: An example location for error messages.
location_example = "s3://tank-images/<image-id>"

SCHEMES = ("s3", "s3+http", "s3+https")

_URI = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)", re.DOTALL)
# Glance's userinfo: an access key (no ':', '/' or '@') and a secret that may contain '/'.
_USERINFO = re.compile(r"[^:/@]*:[^@]*@")
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")
_KEY_SAFE = "/-_.~!$&'()*+,;=:@"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@attrs.frozen
class S3Location:
    """A parsed location. ``endpoint`` is set only for legacy Glance locations."""

    bucket: str
    key: str
    #: ``http(s)://host[:port]`` named by a legacy location, else None.
    endpoint: str | None = None

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Raise :class:`~tank.errors.BadLocation` unless ``uri`` is an S3 location.

        Error messages use the credential-free form: a secret in ``uri`` never reaches
        one.
        """
        match = _URI.fullmatch(uri) if isinstance(uri, str) else None
        scheme = match["scheme"].lower() if match else ""
        if not match or scheme not in SCHEMES:
            raise BadLocation(f"not an S3 location (expected e.g. {location_example})")
        rest = match["rest"]
        legacy = scheme != "s3"
        userinfo = _USERINFO.match(rest)
        if userinfo and (legacy or _split_legacy(rest[userinfo.end() :]) is not None):
            rest, legacy = rest[userinfo.end() :], True
        if any(c.isspace() or ord(c) < 32 for c in rest):
            raise BadLocation(f"S3 location contains whitespace or control bytes: {scheme}://...")
        if legacy:
            parts = _split_legacy(rest)
            if parts is None:
                raise BadLocation(
                    f"legacy S3 location {scheme}://{_shown(rest)} is not "
                    f"{scheme}://<host>/<bucket>/<key>"
                )
            host, bucket, key = parts
            tls = "https" if scheme == "s3+https" else "http"
            return cls(bucket=bucket, key=_unquote(key), endpoint=f"{tls}://{host.lower()}")
        bucket, _, key = rest.partition("/")
        if not _BUCKET.fullmatch(bucket) or not key:
            raise BadLocation(
                f"S3 location s3://{_shown(rest)} is not s3://<bucket>/<key> "
                f"(e.g. {location_example})"
            )
        return cls(bucket=bucket, key=_unquote(key))

    def to_uri(self) -> str:
        """The location as Tank writes it; legacy ones keep their host, never credentials."""
        key = urllib.parse.quote(self.key, safe=_KEY_SAFE)
        if self.endpoint is None:
            return f"s3://{self.bucket}/{key}"
        tls, _, host = self.endpoint.partition("://")
        return f"s3+{tls}://{host}/{self.bucket}/{key}"

    def redacted(self) -> str:
        """Safe to log and to show (the same as :meth:`to_uri`: nothing secret is kept)."""
        return self.to_uri()

    @property
    def endpoint_address(self) -> tuple[str, int] | None:
        """(host, port) of a legacy location's endpoint, for comparing endpoints."""
        if self.endpoint is None:
            return None
        return endpoint_address(self.endpoint)

    def __str__(self) -> str:
        return self.redacted()


def endpoint_address(url: str) -> tuple[str, int]:
    """(lower-cased host, port) of an endpoint URL, with the scheme's default port."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)


def _split_legacy(hostpath: str) -> tuple[str, str, str] | None:
    """``host[/path]/bucket/key`` → (host, bucket, key), as Glance split it; None if not."""
    segments = hostpath.strip("/").split("/")
    if len(segments) < 3 or not all(segments[-2:]) or not segments[0]:
        return None
    host = "/".join(segments[:-2])
    if not _BUCKET.fullmatch(segments[-2]) or "@" in host:
        return None
    return host, segments[-2], segments[-1]


def _unquote(key: str) -> str:
    return urllib.parse.unquote(key)


def _shown(rest: str) -> str:
    """``rest`` for an error message: anything before an '@' may be a secret."""
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return rest if len(rest) <= 200 else rest[:200] + "..."
