"""Request heads (request line and header fields), parsed strictly (RFC 9112).

Anything ambiguous is refused rather than guessed: obsolete line folding, whitespace
before a colon, bare LF line ends, control characters, absolute-form targets, a
Content-Length that is not plain digits or that disagrees with another, a transfer
coding other than ``chunked``, Transfer-Encoding from an HTTP/1.0 client. Each of
these has been used to make two parsers disagree on where a message ends (request
smuggling).
"""

from __future__ import annotations

import re

import attrs

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
#: Identity headers a front proxy sets. A client's underscore spelling (``X_Roles``)
#: would reach WSGI as the same ``HTTP_X_ROLES`` key, so those are dropped (as nginx
#: and Apache do): a proxy that strips the real header must not be bypassed.
IDENTITY_HEADERS = frozenset(
    {
        "x-identity-status",
        "x-tenant-id",
        "x-project-id",
        "x-user-id",
        "x-roles",
        "x-service-roles",
        "x-auth-token",
        "x-service-token",
        "x-domain-id",
        "x-project-domain-id",
        "x-user-domain-id",
    }
)


class HeadError(Exception):
    """The head cannot be served; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.define(slots=True)
class RequestHead:
    method: str
    #: The request target exactly as sent (Latin-1 text).
    target: str
    version: str
    #: Header fields in order; names lower-cased, values Latin-1 text.
    fields: list[tuple[str, str]]
    #: Body framing: None (no body), an exact length, or -1 for chunked.
    length: int | None = None
    #: The client asked for ``100 Continue`` before sending its body.
    expects_continue: bool = False
    #: The connection must close after this exchange.
    close: bool = False

    @property
    def chunked(self) -> bool:
        return self.length == -1


def head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the blank line ending a head in ``buf``, or -1."""
    end = buf.find(b"\r\n\r\n", start)
    if end >= 0:
        return end + 4
    end = buf.find(b"\n\n", start)  # bare LF line ends: RFC 9112 §2.2 allows them
    return end + 2 if end >= 0 else -1


def parse_head(data: bytes) -> RequestHead:
    """Parse one head (without leading blank lines, ending in its blank line)."""
    lines = data.split(b"\n")
    if any(not line.endswith(b"\r") for line in lines[:-2]):
        raise HeadError(400, "a line of the request head does not end in CRLF")
    request_line = lines[0].removesuffix(b"\r")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise HeadError(400, "malformed request line")
    method, target, version = parts
    if _BAD_VALUE.search(target) or not (target.startswith(b"/") or target == b"*"):
        raise HeadError(400, "malformed request target (origin form: /path?query)")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        if _VERSION.fullmatch(version):
            raise HeadError(505, f"HTTP version {version.decode('latin-1')} is not supported")
        raise HeadError(400, "malformed request line")
    fields: list[tuple[str, str]] = []
    for raw in lines[1:]:
        line = raw.removesuffix(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            raise HeadError(400, "obsolete header line folding is not accepted")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HeadError(400, "malformed header line")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise HeadError(400, "control character in a header value")
        key = name.decode("latin-1").lower()
        if "_" in key and key.replace("_", "-") in IDENTITY_HEADERS:
            continue
        fields.append((key, value.decode("latin-1")))
    head = RequestHead(
        method=method.decode("latin-1"),
        target=target.decode("latin-1"),
        version=version.decode("latin-1"),
        fields=fields,
    )
    _frame(head)
    return head


def _frame(head: RequestHead) -> None:
    """Decide the body's framing and the connection's fate (RFC 9112 §6, §9.3)."""
    lengths = {v for k, v in head.fields if k == "content-length"}
    codings = [v for k, v in head.fields if k == "transfer-encoding"]
    connection = {
        token.strip().lower() for k, v in head.fields if k == "connection" for token in v.split(",")
    }
    head.close = "close" in connection or (
        head.version == "HTTP/1.0" and "keep-alive" not in connection
    )
    if len(lengths) > 1:
        raise HeadError(400, "conflicting Content-Length headers")
    if lengths:
        (text,) = lengths
        if not (text.isascii() and text.isdigit() and len(text) <= 19):
            raise HeadError(400, "Content-Length must be a number of bytes")
        head.length = int(text)
    if codings:
        if head.version == "HTTP/1.0":
            raise HeadError(400, "Transfer-Encoding is not allowed in an HTTP/1.0 request")
        coding = ",".join(codings).strip().lower()
        if coding != "chunked":
            raise HeadError(501, f"transfer coding {coding[:40]!r} is not supported (chunked)")
        if lengths:
            head.close = True  # framing was ambiguous: never reuse this connection
        head.length = -1
    hosts = [v for k, v in head.fields if k == "host"]
    if len(hosts) > 1 or (head.version == "HTTP/1.1" and not hosts):
        raise HeadError(400, "an HTTP/1.1 request needs exactly one Host header")
    expect = [v for k, v in head.fields if k == "expect"]
    head.expects_continue = (
        head.version == "HTTP/1.1" and bool(expect) and expect[0].strip().lower() == "100-continue"
    )
