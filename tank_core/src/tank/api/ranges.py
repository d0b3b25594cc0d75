"""HTTP Range requests (RFC 9110 §14): one byte range per request."""

from __future__ import annotations

import re

import attrs

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
#: Larger than any image: a position with more digits than 2**63 has is read as this.
_FAR = 2**63


@attrs.frozen
class ByteRange:
    offset: int
    length: int

    def content_range(self, total: int) -> str:
        return f"bytes {self.offset}-{self.offset + self.length - 1}/{total}"


class Unsatisfiable(Exception):
    """No byte of the range lies inside the data (answer 416)."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to serve, or None to serve the whole body.

    Syntactically invalid and multi-range headers are ignored (the whole body is sent),
    which RFC 9110 allows; a valid range outside the data raises :class:`Unsatisfiable`.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        start = max(0, size - suffix)
        return ByteRange(start, size - start)
    start = _number(first)
    if last != "" and _number(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    end = size - 1 if last == "" else min(_number(last), size - 1)
    return ByteRange(start, end - start + 1)


def _number(digits: str) -> int:
    """A range position; any beyond 2**63 is just "past the end" (and int() refuses
    strings of more than 4,300 digits)."""
    return _FAR if len(digits.lstrip("0")) > 19 else int(digits)
