"""Contract suites for third-party stores and registries.

``BackendContract`` (every store) and ``RegistryContract`` (every registry) are mix-in
test classes: subclass them in your own test module and supply the fixtures they name.
``require_env`` skips a test, naming the missing ``TANK_TEST_*`` variables, when its
test server is not configured. ``read_all`` and ``free_port`` are the small helpers every
store test needs; :mod:`tank.testing.plugin` offers them as pytest fixtures, with a
running ``tank-api``.
"""

from tank.testing.backend_contract import (
    BackendContract,
    generated_stream,
    irregular_chunks,
    pattern,
)
from tank.testing.environment import require_env
from tank.testing.ports import free_port
from tank.testing.reading import read_all
from tank.testing.registry_contract import RegistryContract

__all__ = [
    "BackendContract",
    "RegistryContract",
    "free_port",
    "generated_stream",
    "irregular_chunks",
    "pattern",
    "read_all",
    "require_env",
]
