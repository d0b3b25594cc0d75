"""Import steps: what an import does to the data between staging it and storing it.

Glance's import plugins are the model: an operator lists the steps an import runs in
``[import] steps``, in order, and each works on a file in the staging area. A step is a
class, registered through :func:`tank.hookspecs.tank_register_import_steps`, with

* ``name``: how ``[import] steps`` names it;
* ``Config``: an attrs class built, strictly like every Tank config, from the step's own
  ``[import.<name>]`` table plus the ``[import]`` keys it lists in ``import_keys``
  (``convert`` reads ``[import] convert_to``);
* ``run(path, image)``: read ``path``, never change it, and return a
  :class:`StepResult`: the file the next step reads (a new file made with
  :meth:`Staging.creating <tank.imports.staging.Staging.creating>` or
  :meth:`Staging.write <tank.imports.staging.Staging.write>`, or ``path`` itself if
  nothing had to change) and the image fields that change.

A step that cannot do its work raises a :mod:`tank.errors` error whose message says why;
the import then leaves the image as it was and records that message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from tank.config import build
from tank.errors import ConfigError

if TYPE_CHECKING:
    from tank.config import ImportConfig
    from tank.imports.staging import Staging
    from tank.model import Image


@attrs.frozen
class StepResult:
    """What a step made: the file to go on with, and the image fields that changed
    (``disk_format``, ``size``, ``checksum``, ``os_hash_value``, ``properties``, ...)."""

    path: Path
    changes: Mapping[str, Any] = attrs.field(factory=dict)


class ImportStep:
    """Base of import steps; see the module docstring."""

    #: The name ``[import] steps`` uses.
    name: ClassVar[str]
    #: ``[import]`` keys this step reads as fields of its Config (same names).
    import_keys: ClassVar[tuple[str, ...]] = ()

    @attrs.frozen(kw_only=True)
    class Config:
        """A step without settings."""

    def __init__(self, config: Any, *, staging: Staging, size_cap: int) -> None:
        self.config = config
        #: Where the step writes its output (named after the image and the step).
        self.staging = staging
        #: Bytes: no file the step makes may be larger (``image_size_cap``).
        self.size_cap = size_cap

    def run(self, path: Path, image: Image) -> StepResult:
        """Process the data in ``path`` (the image as it is before this step)."""
        raise NotImplementedError


def build_steps(
    settings: ImportConfig,
    step_types: Mapping[str, type[ImportStep]],
    *,
    staging: Staging,
    size_cap: int,
    source: str = "<config>",
) -> list[ImportStep]:
    """The steps ``[import] steps`` names, in order, each configured.

    :param step_types: the installed steps (:meth:`tank.plugins.Plugins.import_step_types`).
    :param source: the config file, for messages.
    :raises ConfigError: an unknown step, a step listed twice, an ``[import.<name>]``
        table for a step that is not enabled, or a bad setting (naming file and key).
    """
    listed: Sequence[str] = settings.steps
    for name in settings.step_options:
        if name not in listed:
            raise ConfigError(
                f"{source} [import.{name}]: there is no step {name!r} in [import] steps"
            )
    steps = []
    for name in listed:
        cls = step_types.get(name)
        if cls is None:
            known = ", ".join(sorted(step_types)) or "none"
            raise ConfigError(
                f"{source} [import] steps: no import step {name!r} is installed "
                f"(installed: {known})"
            )
        if listed.count(name) > 1:
            raise ConfigError(f"{source} [import] steps: {name!r} is listed twice")
        table = settings.step_options.get(name, {})
        section = {
            key: getattr(settings, key)
            for key in cls.import_keys
            if key not in table and getattr(settings, key) is not None
        }
        section.update(table)
        where = f"{source} [import.{name}]" if table else f"{source} [import]"
        config = build(cls.Config, section, where=where)
        steps.append(cls(config, staging=staging, size_cap=size_cap))
    return steps
