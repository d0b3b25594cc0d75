"""Root conftest: make every ``tank_*`` import name mean the installed package.

With ``--import-mode=importlib`` pytest imports ``tank_store_fs/tests/conftest.py`` as
``tank_store_fs.tests.conftest`` and would register the distribution *folder*
``tank_store_fs/`` as a stand-in namespace package of that name, hiding the real
``src/tank_store_fs``. Importing the installed packages first, here, prevents that.

Every suite uses Tank's pytest plugin (``read_all``, ``free_port``, ``api``,
``start_api``), opted into here as a third-party suite would in its own conftest.
"""

from __future__ import annotations

import importlib
from pathlib import Path

pytest_plugins = ["tank.testing.plugin"]

for _pyproject in sorted(Path(__file__).parent.glob("tank_*/pyproject.toml")):
    for _src in (_pyproject.parent / "src").glob("*/__init__.py"):
        try:
            importlib.import_module(_src.parent.name)
        except ImportError:  # not installed in this environment: its tests will say so
            pass
