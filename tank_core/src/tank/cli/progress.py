"""Progress bars for uploads and downloads: on stderr, and only for a person watching."""

from __future__ import annotations

import contextlib
import sys
import time
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
    Without a known ``total`` (a pipe) there is nothing to measure against: a counter of
    bytes and rate is drawn instead.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield None
        return
    if total is None or total <= 0:
        counter = _Counter(label)
        try:
            yield counter.update
        finally:
            counter.done()
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


class _Counter:
    """``Uploading: 1.2 GiB, 310.5 MiB/s`` on one stderr line, redrawn at most 5 times a
    second."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.count = 0
        self.start = time.monotonic()
        self.drawn = 0.0

    def update(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.drawn >= 0.2:
            self.drawn = now
            self._draw(now)

    def done(self) -> None:
        self._draw(time.monotonic())
        click.echo("", err=True)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-6)
        rate = human_bytes(int(self.count / elapsed))
        click.echo(f"\r{self.label}: {human_bytes(self.count)}, {rate}/s  ", nl=False, err=True)
