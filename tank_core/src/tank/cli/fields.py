"""``key=value`` arguments of the ``tank`` verbs, as the Glance CLI took them.

Unlike Glance, an unknown key is an error rather than silently becoming a custom
property (a typo such as ``nmae=x`` used to create a property ``nmae``): properties are
spelled ``property-KEY=VALUE``, or given with ``--property KEY=VALUE``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from tank.model import FILTER_KEYS, parse_int

PROPERTY_PREFIX = "property-"
#: Image fields ``tank add`` accepts as ``key=value``.
ADD_FIELDS = (
    "id",
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "is_public",
    "protected",
    "os_hidden",
    "owner",
    "min_ram",
    "min_disk",
)
UPDATE_FIELDS = ADD_FIELDS[1:]
#: Keys that are not image fields but say where the data is (Glance v1 took them as fields).
TRANSFER_KEYS = ("store", "location", "size", "checksum")


def split_pair(text: str, what: str = "argument") -> tuple[str, str]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise click.UsageError(f"{what} {text!r} is not of the form key=value")
    return key, value


def image_fields(
    pairs: Iterable[str],
    properties: Iterable[str],
    *,
    allowed: tuple[str, ...],
    transfer: bool = False,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Split ``key=value`` pairs into image fields (``properties`` nested) and, when
    ``transfer``, the store/location/size/checksum keys."""
    fields: dict[str, Any] = {}
    props: dict[str, str] = {}
    extra: dict[str, str] = {}
    for text in pairs:
        key, value = split_pair(text)
        if key.startswith(PROPERTY_PREFIX) and len(key) > len(PROPERTY_PREFIX):
            props[key[len(PROPERTY_PREFIX) :]] = value
        elif key in allowed:
            fields[key] = value
        elif transfer and key in TRANSFER_KEYS:
            extra[key] = value
        else:
            known = allowed + (TRANSFER_KEYS if transfer else ())
            raise click.UsageError(
                f"unknown field {key!r}; fields are {', '.join(known)}; "
                f"custom properties are given as property-{key}=VALUE or --property {key}=VALUE"
            )
    for text in properties:
        key, value = split_pair(text, "--property")
        props[key] = value
    if props:
        fields["properties"] = props
    return fields, extra


def list_filters(pairs: Iterable[str]) -> dict[str, Any]:
    """Listing filters: ``name=``, ``status=``, ``size_min=``... and ``property-KEY=``.

    ``tag=`` (or ``tags=``) may repeat: every tag must match. Values go to the server
    as given, so v2's ``name=in:a,b`` and ``created_at=gte:2026-01-01T00:00:00Z`` work."""
    filters: dict[str, Any] = {}
    tags: list[str] = []
    for text in pairs:
        key, value = split_pair(text, "filter")
        if key in ("tag", "tags"):
            tags.append(value)
            continue
        if key not in FILTER_KEYS and not (
            key.startswith(PROPERTY_PREFIX) and len(key) > len(PROPERTY_PREFIX)
        ):
            raise click.UsageError(
                f"unknown filter {key!r}; filters are {', '.join(sorted(FILTER_KEYS | {'tag'}))} "
                "and property-KEY"
            )
        filters[key] = value
    if tags:
        filters["tags"] = tags
    return filters


def sort_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``--sort name:asc,size`` as ``(("name", "asc"), ("size", "desc"))``."""
    pairs = []
    for part in text.split(","):
        key, _, direction = part.strip().partition(":")
        if not key:
            raise click.UsageError(f"--sort {text!r}: expected KEY[:asc|desc][,KEY...]")
        pairs.append((key, direction or "desc"))
    return tuple(pairs)


def non_negative(field: str, text: str) -> int:
    """``size=...`` and the like: an integer >= 0, errors naming the field."""
    return parse_int(field, text, minimum=0)
