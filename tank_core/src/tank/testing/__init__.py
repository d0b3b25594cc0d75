"""Contract suites for third-party stores and registries.

``BackendContract`` (every store) and ``RegistryContract`` (every registry) are mix-in
test classes: subclass them in your own test module and supply the fixtures they name.
``require_env`` skips a test, naming the missing ``TANK_TEST_*`` variables, when its
test server is not configured.
"""

from tank.testing.backend_contract import (
    BackendContract,
    generated_stream,
    irregular_chunks,
    pattern,
)
from tank.testing.environment import require_env
from tank.testing.registry_contract import RegistryContract

__all__ = [
    "BackendContract",
    "RegistryContract",
    "generated_stream",
    "irregular_chunks",
    "pattern",
    "require_env",
]
