"""Serving the console's static files, and the one endpoint it has besides v2.

Files come only from :data:`STATIC_DIR`: a path segment that is empty, ``.``, ``..``,
hidden, or holds a backslash or NUL (percent-encoded or not) is a 404, and the resolved
file must still lie inside the folder (no symlink out). Every answer carries a strict
Content-Security-Policy (no inline script, requests only to this origin), an ETag and
Last-Modified.

``index.html`` is revalidated on every visit (``Cache-Control: no-cache``) and names the
other files under ``/console/v/<version>/``, where ``<version>`` is a digest of every
file's name, size and modification time: those answers are ``immutable`` for a year,
so a later visit asks for the page and its data only, never again for the scripts, and
a changed file gets a new URL at once. The same files stay reachable without the
version (``no-cache``, as for index.html).
"""

from __future__ import annotations

import email.utils
import hashlib
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from tank import errors
from tank.model import Context
from tank.web import Match, MethodNotAllowed, Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/console"
#: Served types; a file of any other kind is not served.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
CSP = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
#: Answers under ``/console/v/<current version>/``: never asked for again.
IMMUTABLE = "public, max-age=31536000, immutable"
#: What ``index.html`` writes where the versioned folder goes.
VERSIONED_PLACEHOLDER = b"{{versioned}}"
SECURITY_HEADERS = [
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]


def console_match(path: str, method: str, *, quoted: bool) -> Match:
    """The handler of a path under ``/console`` (``path`` as routed: still
    percent-encoded when ``quoted``, each segment is then decoded once here)."""
    if method not in ("GET", "HEAD"):
        raise MethodNotAllowed(method, ["GET", "HEAD"])
    rest = path[len(PREFIX) :]
    if rest in ("/whoami", "/whoami/"):
        return Match(whoami, {})
    if rest in ("", "/"):
        return Match(serve_asset, {"relative": rest and "index.html"})
    segments = rest[1:].split("/")
    version = None
    if len(segments) > 2 and segments[0] == "v":
        version, segments = segments[1], segments[2:]
    if quoted:
        try:
            segments = [urllib.parse.unquote(s, errors="strict") for s in segments]
        except UnicodeDecodeError:
            raise errors.NotFound("no such console file") from None
    for segment in segments:
        if not segment or segment.startswith(".") or any(c in segment for c in "/\\\0"):
            raise errors.NotFound(f"no such console file: {rest[:200]}")
    return Match(serve_asset, {"relative": "/".join(segments), "version": version})


def whoami(api: Api, req: Request, ctx: Context) -> Response:
    """Who the API takes this caller for (from the proxy's headers with ``--auth``; an
    admin without, as for every API request)."""
    body = {
        "auth": api.config.auth,
        "tenant": ctx.tenant,
        "user": ctx.user,
        "roles": sorted(ctx.roles),
        "is_admin": ctx.is_admin,
    }
    response = Response.json(body)
    response.headers += [("Cache-Control", "no-store"), *SECURITY_HEADERS]
    return response


def serve_asset(req: Request, relative: str, version: str | None = None) -> Response:
    """One static file (``/console/`` is ``index.html``; ``/console`` redirects there);
    ``version``: the digest in a ``/console/v/<version>/`` URL."""
    if relative == "":
        return Response(
            301,
            [("Location", f"{PREFIX}/"), ("Content-Length", "0"), *SECURITY_HEADERS],
            [],
        )
    file = _find(relative)
    stat = file.stat()
    current = assets_version()
    index = relative == "index.html"
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}{f"-{current}" if index else ""}"'
    modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
    cache = IMMUTABLE if version == current else "no-cache"
    headers = [
        ("ETag", etag),
        ("Last-Modified", modified),
        ("Cache-Control", cache),
        *SECURITY_HEADERS,
    ]
    if _not_modified(req, etag, stat.st_mtime, weak_dates=index):
        return Response(304, headers, [])
    data = file.read_bytes()  # a few KiB each
    if index:
        data = data.replace(VERSIONED_PLACEHOLDER, f"{PREFIX}/v/{current}".encode())
    return Response(
        200,
        [
            ("Content-Type", CONTENT_TYPES[file.suffix]),
            ("Content-Length", str(len(data))),
            *headers,
        ],
        [data],
    )


def _find(relative: str) -> Path:
    """The file ``relative`` (checked segments) names inside :data:`STATIC_DIR`, never a
    file outside it (a symlink out included); NotFound for anything else."""
    root = STATIC_DIR.resolve()
    try:
        file = root.joinpath(*relative.split("/")).resolve()
    except (OSError, ValueError):
        raise errors.NotFound(f"no such console file: {relative[:200]}") from None
    if not file.is_relative_to(root) or not file.is_file() or file.suffix not in CONTENT_TYPES:
        raise errors.NotFound(f"no such console file: {relative[:200]}")
    return file


def assets_version() -> str:
    """A digest of every served file's path, size and modification time."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.suffix in CONTENT_TYPES and path.is_file():
            stat = path.stat()
            name = path.relative_to(STATIC_DIR).as_posix()
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


def _not_modified(req: Request, etag: str, mtime: float, *, weak_dates: bool = False) -> bool:
    """``weak_dates``: the answer depends on more than the file's own date (index.html
    names the version of every other file), so only the ETag can say it is unchanged."""
    match = req.headers.get("if-none-match")
    if match is not None:
        return etag in [tag.strip() for tag in match.split(",")] or match.strip() == "*"
    if weak_dates:
        return False
    since = req.headers.get("if-modified-since")
    if since:
        try:
            when = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return int(mtime) <= when.timestamp()
    return False
