"""What is installed: store types and plugins, for ``tank stores`` and ``tank plugins``.

Needs no server and no configuration: only the ``tank`` entry points of this Python.
"""

from __future__ import annotations

from typing import Any

from tank.plugins import Plugins


def store_rows(plugins: Plugins) -> list[dict[str, Any]]:
    """One row per installed store type, with the plugin and distribution providing it."""
    types = plugins.store_types()  # validates registrations (clashes raise PluginLoadError)
    owner = plugins.store_plugins()
    infos = {info.name: info for info in plugins.list_plugins()}
    rows = []
    for type_name, cls in sorted(types.items()):
        plugin = owner.get(type_name)
        info = infos.get(plugin) if plugin else None
        rows.append(
            {
                "type": type_name,
                "schemes": list(cls.schemes),
                "capabilities": sorted(c.value for c in cls.capabilities),
                "plugin": plugin,
                "distribution": info.distribution if info else None,
                "version": info.version if info else None,
                "class": f"{cls.__module__}.{cls.__qualname__}",
            }
        )
    return rows


def plugin_rows(plugins: Plugins) -> list[dict[str, Any]]:
    return [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "hooks": list(info.hooks),
        }
        for info in plugins.list_plugins()
    ]
