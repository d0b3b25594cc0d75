"""Tank: an image service for virtual-machine images.

Write a plugin as a module with hook implementations marked ``@tank.hookimpl`` and list
it under the ``tank`` entry-point group::

    [project.entry-points.tank]
    mystore = "tank_store_mystore.plugin"

The hooks are documented in :mod:`tank.hookspecs`.
"""

import pluggy

__version__ = "0.1.0"

#: Marks a function as a Tank hook implementation.
hookimpl = pluggy.HookimplMarker("tank")

__all__ = ["__version__", "hookimpl"]
