"""Header values between Python text and the wire.

WSGI (PEP 3333) carries header values as Latin-1 text; Glance clients send and expect
UTF-8. These two functions are the one place that converts, for the servers and the
client alike.
"""

from __future__ import annotations


def from_wire(value: str) -> str:
    """A header value as received (Latin-1 text), read as UTF-8 when it is UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def to_wire(value: str) -> str:
    """A header value as WSGI wants it: UTF-8 bytes as Latin-1 text, on one line."""
    value = value.replace("\r", " ").replace("\n", " ")
    return value.encode("utf-8").decode("latin-1")
