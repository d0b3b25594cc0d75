"""Running the configured import steps over one staged file, all or nothing.

Each step sees the image with the earlier steps' changes applied (``convert`` after
``decompress`` reads the decompressed data). A file a step made is removed once the next
step has made its own, so the staging area holds at most the input and two outputs at
a time. If a step fails, every file the steps made is removed and the input is left as
it was, so the import can record the reason and leave the image as it was before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tank import errors
from tank.imports.steps import ImportStep, StepResult
from tank.model import Image

log = logging.getLogger(__name__)


def run_steps(
    steps: Sequence[ImportStep],
    path: Path,
    image: Image,
    *,
    stopping: threading.Event | None = None,
) -> StepResult:
    """Run ``steps`` in order from ``path``; return the last file and all changes.

    :param stopping: checked between steps: once set, the run stops with
        :class:`errors.ShuttingDown` (the import is then found again after a restart).
    :raises: whatever a step raised (a :mod:`tank.errors` error saying why).
    """
    current = path
    changes: dict[str, Any] = {}
    made: list[Path] = []
    try:
        for step in steps:
            if stopping is not None and stopping.is_set():
                raise errors.ShuttingDown(
                    f"stopped before the {step.name} step of image {image.id}"
                )
            result = step.run(current, image)
            if result.path != current:
                made.append(result.path)
                if current != path:
                    current.unlink(missing_ok=True)
            log.info("import step %s of image %s: %s", step.name, image.id, sorted(result.changes))
            image = image.update(result.changes)
            changes.update(result.changes)
            current = result.path
    except BaseException:
        for made_path in made:
            made_path.unlink(missing_ok=True)
        raise
    return StepResult(current, changes)
