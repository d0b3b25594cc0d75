"""Check every plugin's section of a configuration without opening anything.

tank-api's supervisor checks a configuration this way before it says "reloaded" on
SIGHUP: a section only a worker would read (a store's, the registry's, a notification
sink's) must not make every new worker fail at start while the supervisor believes
the reload went well.
"""

from __future__ import annotations

from tank import config as config_mod
from tank.config import TankConfig
from tank.errors import ConfigError
from tank.notify import notifier as notifier_mod
from tank.plugins import Plugins
from tank.service import registry_config_of
from tank.stores import store_configs


def check_sections(config: TankConfig, plugins: Plugins) -> None:
    """ConfigError (file, section, key) for the first bad plugin section."""
    store_configs(config, plugins)  # sections, and local directories that clash
    registry_config_of(config, plugins)
    settings = notifier_mod.load_config(config.notifications, config.source)
    sink_types = plugins.sink_types()
    for name in settings.sinks:
        sink_cls = sink_types.get(name)
        if sink_cls is None:
            raise ConfigError(
                f"{config.source} [notifications] sinks: no installed notification sink "
                f"{name!r}; installed: {', '.join(sorted(sink_types)) or 'none'}"
            )
        section = settings.sink_options.get(name, {})
        config_mod.build(sink_cls.Config, section, where=f"{config.source} [notifications.{name}]")
