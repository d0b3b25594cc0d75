"""Progress bars for uploads and downloads: on stderr, and only for a person watching."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from tank.cli.output import human_bytes
from tank.client.transfer import Progress


@contextlib.contextmanager
def progress_bar(
    label: str, total: int | None, *, enabled: bool | None
) -> Iterator[Progress | None]:
    """Yield a byte-count callback drawing a bar, or None when no bar should be drawn.

    ``enabled=None`` means: only when stderr is a terminal (never in pipes, logs, CI).
    Without a known ``total`` there is nothing to measure against, so no bar.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total is None or total <= 0:
        yield None
        return
    with click.progressbar(
        length=total,
        label=f"{label} ({human_bytes(total)})",
        file=sys.stderr,
        show_eta=True,
        show_percent=True,
        show_pos=False,
    ) as bar:
        yield bar.update
