"""attrs validators for plugin ``Config`` classes, shared so every store says the same thing.

Import them from :mod:`tank.config`. Messages start with the field's name (so a
``Config`` built directly in Python still says which field is wrong) and never show the
value, which may be a secret; :func:`tank.config.build` puts ``file [section] key:`` in
front and drops the repeated name. ``None`` passes every validator here, so they fit
``int | None`` fields as they are.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import attrs

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Sizes, counts and timeouts: more than zero."""
    if value is not None and not value > 0:  # NaN too
        raise ValueError(f"{attribute.name} must be > 0")


def not_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Retries, redirects, thresholds where 0 means "none": zero or more."""
    if value is not None and not value >= 0:  # NaN too
        raise ValueError(f"{attribute.name} must be >= 0")


def between(low: float, high: float) -> Validator:
    """A number from ``low`` to ``high``, both included."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not low <= value <= high:
            raise ValueError(f"{attribute.name} must be from {low} to {high}")

    return check


def power_of_two(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Block and object sizes that storage systems want aligned."""
    if value is not None and (value <= 0 or value & (value - 1)):
        raise ValueError(f"{attribute.name} must be a power of two")


def one_of(*choices: Any) -> Validator:
    """One of a few values (a style, a mode, a protocol version)."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and value not in choices:
            raise ValueError(f"{attribute.name} must be one of: {', '.join(map(str, choices))}")

    return check


def http_url(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An ``http://`` or ``https://`` URL with a host and nothing secret in it: credentials
    belong in their own keys (which can come from the environment), never in a URL that
    ends up in logs and locations."""
    if value is None:
        return
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{attribute.name} must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise ValueError(
            f"{attribute.name} must not contain credentials; give them in their own keys"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{attribute.name} must not have a query or fragment")
