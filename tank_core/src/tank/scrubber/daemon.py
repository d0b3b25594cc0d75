"""Running the scrub pass periodically: ``tank-manage scrub --daemon`` and tank-api's
``[scrubber] in_api`` thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def every(seconds: float, work: Callable[[], object], stop: threading.Event) -> None:
    """Run ``work`` now and then every ``seconds`` until ``stop`` is set (checked
    between runs: a pass in progress finishes). An exception is logged, not fatal."""
    while not stop.is_set():
        try:
            work()
        except Exception:
            log.exception("scrub pass failed; trying again in %g s", seconds)
        if stop.wait(seconds):
            return
