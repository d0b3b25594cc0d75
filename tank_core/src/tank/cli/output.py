"""The one place the ``tank`` command writes results: JSON for machines, text for people.

Every verb hands :meth:`Output.emit` a JSON-ready value and a function producing the text
form, so ``--json`` covers every command the same way. Progress and errors go to
stderr, never mixed with results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from tank.client import BriefImage
from tank.model import Image, Member

#: What ``tank index --json`` gives of each image: v1's brief listing plus the status.
BRIEF_KEYS = ("id", "name", "status", "disk_format", "container_format", "size", "checksum")


class Output:
    """Writes results to stdout, as JSON (``--json``) or as text."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, value: Any, text: Callable[[], str] | str | None = None) -> None:
        """Print ``value`` as JSON, or ``text`` (default: ``value`` itself) for people."""
        if self.as_json:
            click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))
            return
        rendered = text() if callable(text) else text
        if rendered is None:
            rendered = str(value)
        if rendered:
            click.echo(rendered)

    def image(
        self, image: Image, heading: str | None = None, *, stores: Sequence[str] | None = None
    ) -> None:
        """One image; ``stores`` (v2: where its data is) is shown when given."""
        data = image.to_dict()
        if stores is not None:
            data["stores"] = list(stores)

        def text() -> str:
            body = image_text(image, data)
            return f"{heading}\n{body}" if heading else body

        self.emit(data, text)

    def images(self, images: Sequence[Image | BriefImage], *, detail: bool) -> None:
        rows = [image.to_dict() for image in images]
        if not detail:
            rows = [{k: row.get(k) for k in BRIEF_KEYS} for row in rows]
        if detail:
            self.emit(rows, lambda: "\n\n".join(image_text(i) for i in images))  # type: ignore[arg-type]
        else:
            self.emit(rows, lambda: image_table(images))

    def members(self, members: Sequence[Member], *, key: str, api: str = "v1") -> None:
        """Memberships: v1's have ``can_share``, v2's a ``status`` set by the member."""
        header = "Image ID" if key == "image_id" else "Member"
        if api == "v1":
            rows = [
                {"image_id": m.image_id, "member": m.member, "can_share": m.can_share}
                for m in members
            ]
            cells = [[str(r[key]), "yes" if r["can_share"] else "no"] for r in rows]
            self.emit(rows, lambda: table([header, "Can share"], cells))
            return
        rows = [
            {"image_id": m.image_id, "member": m.member, "status": m.status.value} for m in members
        ]
        cells = [[str(r[key]), str(r["status"])] for r in rows]
        self.emit(rows, lambda: table([header, "Status"], cells))

    def warn(self, message: str) -> None:
        click.echo(message, err=True)


def image_text(image: Image, data: dict[str, Any] | None = None) -> str:
    """``key: value`` lines; properties as ``property-KEY`` (the syntax ``tank add`` takes)."""
    data = dict(image.to_dict() if data is None else data)
    props = data.pop("properties")
    pairs = [(k, _human(v)) for k, v in data.items() if v is not None and v != []]
    pairs += [(f"property-{k}", v) for k, v in sorted(props.items())]
    width = max(len(k) for k, _ in pairs) + 1
    return "\n".join(f"{k + ':':<{width}} {v}" for k, v in pairs)


def image_table(images: Iterable[Image | BriefImage]) -> str:
    rows = [
        [
            i.id,
            i.name or "",
            _status(i),
            i.disk_format or "",
            i.container_format or "",
            _size(i.size),
        ]
        for i in images
    ]
    return table(
        ["ID", "Name", "Status", "Disk format", "Container format", "Size"],
        rows,
        right=frozenset({5}),
    )


def _status(image: Image | BriefImage) -> str:
    """v1's brief listing has no status: it lists only active images (as Glance v1)."""
    status = getattr(image, "status", None)
    return "active" if status is None else str(getattr(status, "value", status))


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()
) -> str:
    """A plain aligned table: header, dashes, rows."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[Any]) -> str:
        out = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return " ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _size(size: int | None) -> str:
    return "" if size is None else str(size)


def _human(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v["url"] if isinstance(v, dict) and "url" in v else v) for v in value)
    return str(value)
