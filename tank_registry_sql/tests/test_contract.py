"""The tank.testing registry contract on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from tank.registry import Registry
from tank.testing import RegistryContract


class TestSqliteContract(RegistryContract):
    @pytest.fixture
    def registry(self, sqlite_registry) -> Registry:  # type: ignore[no-untyped-def]
        return sqlite_registry


class TestPostgresContract(RegistryContract):
    @pytest.fixture
    def registry(self, pg_registry) -> Registry:  # type: ignore[no-untyped-def]
        return pg_registry
