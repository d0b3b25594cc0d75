"""One scrub pass: a list of steps, each cleaning up one kind of leftover.

A step takes the service and the ``[scrubber]`` settings and says what it did and what
failed (:class:`StepReport`); :func:`run_pass` runs them in order, a step that raises
becoming a failure of the pass rather than stopping it. Another kind of cleanup is one
more :data:`Step` in the list given to :func:`run_pass`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import attrs

from tank import upload_lease
from tank.config import ScrubberConfig
from tank.errors import TankError
from tank.scrubber import delayed
from tank.service import ImageService

log = logging.getLogger(__name__)


@attrs.define
class StepReport:
    """What one step did: one line per thing done, one per failure."""

    step: str
    done: list[str] = attrs.field(factory=list)
    failures: list[str] = attrs.field(factory=list)


Step = Callable[[ImageService, ScrubberConfig], StepReport]


@attrs.define
class PassReport:
    steps: list[StepReport] = attrs.field(factory=list)

    @property
    def failed(self) -> bool:
        return any(step.failures for step in self.steps)

    def lines(self) -> list[str]:
        """The report as text: ``<step>: <what>`` per line, failures marked."""
        out = []
        for step in self.steps:
            out += [f"{step.step}: {line}" for line in step.done]
            out += [f"{step.step}: FAILED {line}" for line in step.failures]
        return out


def delayed_delete(service: ImageService, config: ScrubberConfig) -> StepReport:
    """Remove the data of pending_delete images due (:mod:`tank.scrubber.delayed`)."""
    outcome = delayed.scrub_due(service, config.scrub_time)
    report = StepReport("delayed delete")
    report.done += [f"image {i} scrubbed (data removed, now deleted)" for i in outcome.scrubbed]
    report.done += [
        f"image {i} skipped (restored or claimed by another scrubber)" for i in outcome.skipped
    ]
    report.failures += [
        f"image {i} stays pending_delete: {why}" for i, why in outcome.failed.items()
    ]
    return report


def upload_leases(service: ImageService, config: ScrubberConfig) -> StepReport:
    """End uploads whose lease expired (:func:`tank.upload_lease.sweep`)."""
    killed = upload_lease.sweep(service)
    return StepReport(
        "upload leases", done=[f"image {i} killed (upload lease expired)" for i in killed]
    )


DEFAULT_STEPS: tuple[Step, ...] = (delayed_delete, upload_leases)


def run_pass(
    service: ImageService, config: ScrubberConfig, steps: Sequence[Step] = DEFAULT_STEPS
) -> PassReport:
    report = PassReport()
    for step in steps:
        try:
            report.steps.append(step(service, config))
        except TankError as exc:
            log.error("scrub step %s failed: %s", step.__name__, exc)
            report.steps.append(StepReport(step.__name__, failures=[str(exc)]))
        except Exception as exc:
            log.exception("scrub step %s failed", step.__name__)
            report.steps.append(StepReport(step.__name__, failures=[type(exc).__name__]))
    for line in report.lines():
        log.info("scrub: %s", line)
    return report
