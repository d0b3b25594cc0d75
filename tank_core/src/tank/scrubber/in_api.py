"""``[scrubber] in_api``: tank-api runs the scrub pass itself, one process at a time.

Every tank-api with ``in_api`` has a thread that, every ``interval`` seconds, tries to
take (or renew) the registry lease :data:`LEASE`; only the holder runs the pass. The
lease is held for :func:`lease_seconds` (longer than a pass plus the wait for the next
one, so the holder keeps it), released when tank-api stops so that another takes over
at its next turn, and taken over after it expires if its holder died. Works across
processes and hosts, through any registry that keeps leases (SQL, HTTP).

The upload-lease sweep is left out of this pass: every tank-api runs it anyway
(:class:`tank.upload_lease.UploadLeases`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from tank.config import ScrubberConfig
from tank.errors import TankError
from tank.scrubber import daemon, scrub_pass
from tank.service import ImageService

log = logging.getLogger(__name__)

LEASE = "tank-scrubber"
STEPS: tuple[scrub_pass.Step, ...] = tuple(
    s for s in scrub_pass.DEFAULT_STEPS if s is not scrub_pass.upload_leases
)


def lease_seconds(interval: float) -> float:
    """How long one turn holds the lease: two intervals and a margin for the pass."""
    return 2 * interval + 30


class InApiScrubber:
    """The scrub thread of one tank-api."""

    def __init__(
        self, service: ImageService, config: ScrubberConfig, holder: str | None = None
    ) -> None:
        self.service = service
        self.config = config
        #: Who holds the lease: host, process, and a nonce (a pid is reused).
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=daemon.every,
            args=(self.config.interval, self.turn, self._stop),
            name="tank-scrubber",
            daemon=True,
        )
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the pass in progress, and give the lease up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.leading:
            try:
                self.service.registry.release_lease(LEASE, self.holder)
                log.info("scrubber: lease released")
            except TankError as exc:
                log.warning("scrubber: lease not released (it expires by itself): %s", exc)

    def turn(self) -> scrub_pass.PassReport | None:
        """Run the pass if this tank-api holds the lease (taking it if free)."""
        seconds = lease_seconds(self.config.interval)
        try:
            held = self.service.registry.hold_lease(LEASE, self.holder, seconds)
        except TankError as exc:
            log.error("scrubber: cannot take the lease %r: %s", LEASE, exc)
            held = False
        if held != self.leading:
            self.leading = held
            if held:
                log.info("scrubber: this tank-api (%s) runs the scrub pass", self.holder)
            else:
                log.info("scrubber: another tank-api runs the scrub pass")
        if not held:
            return None
        return scrub_pass.run_pass(self.service, self.config, STEPS)
