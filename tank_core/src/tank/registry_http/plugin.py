"""Built-in plugin: the ``http`` registry kind (a remote tank-registry)."""

from __future__ import annotations

from typing import Any

from tank import hookimpl


@hookimpl
def tank_register_registries(register: Any) -> None:
    from tank.registry_http.client import HttpRegistry

    register(HttpRegistry)
