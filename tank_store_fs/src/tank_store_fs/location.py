"""``file://`` locations: an absolute path on this machine, percent-quoted.

Parsing is purely lexical; whether the path is inside the data directory is the
backend's decision (``FilesystemBackend._name_of``). Still, parsing
already refuses what no honest location contains: another host, ``.``/``..``
components, NUL bytes, a query or a fragment. What it accepts has one spelling,
:meth:`FileLocation.to_uri`: ``FILE://``, ``file://localhost/``, ``file:////x``, runs
of ``/`` and needless percent-quoting all come out as ``file:///x`` (issue #15: two
spellings of one file registered as two images' data).
"""

from __future__ import annotations

import urllib.parse
from pathlib import PurePosixPath

import attrs

from tank.errors import BadLocation
from tank.locations import redact

#: An example location for error messages.
location_example = "file:///var/lib/tank/images/<image-id>"

_LOCAL_HOSTS = ("", "localhost")


@attrs.frozen
class FileLocation:
    """A parsed ``file://`` location: ``path`` is absolute and has no ``.``/``..``."""

    path: PurePosixPath

    @classmethod
    def parse(cls, uri: str) -> FileLocation:
        """Raise :class:`~tank.errors.BadLocation` unless ``uri`` is a local file URI."""
        try:
            parts = urllib.parse.urlsplit(uri)
        except (ValueError, TypeError, AttributeError):
            raise BadLocation(f"location {_show(uri)} is not a valid URI") from None
        if parts.scheme.lower() != "file":
            raise BadLocation(f"location {_show(uri)} is not a file:// URI")
        if parts.netloc.lower() not in _LOCAL_HOSTS:
            raise BadLocation(
                f"location {_show(uri)} names host {parts.hostname!r}: "
                f"file locations are local paths (e.g. {location_example})"
            )
        if parts.query or parts.fragment:
            raise BadLocation(f"location {_show(uri)} has a query or fragment")
        try:
            path = urllib.parse.unquote(parts.path, errors="strict")
        except UnicodeDecodeError:
            raise BadLocation(f"location {_show(uri)} is not valid UTF-8 once unquoted") from None
        if not path.startswith("/"):
            raise BadLocation(f"location {_show(uri)} is not an absolute path")
        if "\x00" in path or any(part in (".", "..") for part in path.split("/")):
            raise BadLocation(f"location {_show(uri)} has '.', '..' or NUL in its path")
        # one spelling of each file: runs of "/" are one (POSIX keeps a leading "//")
        return cls(PurePosixPath("/" + "/".join(p for p in path.split("/") if p)))

    def to_uri(self) -> str:
        return "file://" + urllib.parse.quote(str(self.path), safe="/")

    def redacted(self) -> str:
        """File locations carry no secrets: the same as :meth:`to_uri`."""
        return self.to_uri()


def _show(uri: object) -> str:
    """A bounded, redacted rendering of a location that failed to parse.

    It may be another store's URI with credentials in it, so it goes through ``redact``.
    """
    text = repr(redact(uri) if isinstance(uri, str) else uri)
    return text if len(text) <= 200 else text[:197] + "...'"
