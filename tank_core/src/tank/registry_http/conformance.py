"""Does a server speak the Tank Registry REST API? The registry contract, over HTTP.

Point it at any running registry (yours, or ``tank-registry``); only tank-core and
pytest need to be installed::

    export TANK_TEST_REGISTRY_URL=http://127.0.0.1:9191
    python -m pytest --pyargs tank.registry_http.conformance

Every test goes through :class:`~tank.registry_http.client.HttpRegistry`, exactly as
tank-api would, and tags what it creates with a unique property, tenant and member
names: the registry may hold other data. The tests create images and mark them deleted;
use a registry you can throw away. Without the variable, the tests skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tank.registry import Registry
from tank.registry_http.client import HttpRegistry
from tank.testing import RegistryContract, require_env

URL_VARIABLE = "TANK_TEST_REGISTRY_URL"


class TestRegistryConformance(RegistryContract):
    @pytest.fixture
    def registry(self, tmp_path: Path) -> Iterator[Registry]:
        url = require_env(URL_VARIABLE)[URL_VARIABLE]
        registry = HttpRegistry(HttpRegistry.Config(url=url), data_dir=tmp_path)
        yield registry
        registry.close()
