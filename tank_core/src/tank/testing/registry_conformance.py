"""Does a server speak the Tank Registry REST API? The registry contract, over HTTP.

Point it at any running registry (yours, or ``tank-registry``); only tank-core and
pytest need to be installed::

    export TANK_TEST_REGISTRY_URL=http://127.0.0.1:9191
    python -m pytest -ra --pyargs tank.testing.registry_conformance

Every test goes through :class:`~tank.registry_http.client.HttpRegistry`, exactly as
tank-api would, and tags what it creates with a unique property, tenant and member
names: the registry may hold other data. The tests create images and mark them deleted;
use a registry you can throw away. Without the variable the whole module is skipped:
``-ra`` (or ``-rs``) prints the reason, naming the variable, and pytest exits with status
5 (no tests collected), so a CI job that forgot it does not pass silently.

It lives in :mod:`tank.testing`, not in the runtime package :mod:`tank.registry_http`,
because it is a test suite: it needs pytest, which tank-api does not.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tank.registry import Registry
from tank.registry_http.client import HttpRegistry
from tank.testing import RegistryContract, require_env

URL_VARIABLE = "TANK_TEST_REGISTRY_URL"

if not os.environ.get(URL_VARIABLE):
    _WHY = (
        f"{URL_VARIABLE} is not set: set it to the URL of the registry to check "
        f"(e.g. {URL_VARIABLE}=http://127.0.0.1:9191); every test of the registry "
        "conformance suite was skipped"
    )
    # Also as a warning: pytest prints its summary without -ra, a skip reason only with.
    warnings.warn(_WHY, pytest.PytestWarning, stacklevel=1)
    pytest.skip(_WHY, allow_module_level=True)


class TestRegistryConformance(RegistryContract):
    @pytest.fixture
    def registry(self, tmp_path: Path) -> Iterator[Registry]:
        url = require_env(URL_VARIABLE)[URL_VARIABLE]
        registry = HttpRegistry(HttpRegistry.Config(url=url), data_dir=tmp_path)
        yield registry
        registry.close()
