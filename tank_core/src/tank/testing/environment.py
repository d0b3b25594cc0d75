"""Reading test-server settings (``TANK_TEST_*``) and skipping clearly without them."""

from __future__ import annotations

import os

import pytest


def require_env(*names: str) -> dict[str, str]:
    """The values of ``names``; skip the test naming every missing variable.

    The ``shared/services/*.sh env`` scripts print these variables; CI sets them.
    """
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.skip(f"test server not configured: set {', '.join(missing)}")
    return {n: os.environ[n] for n in names}
