"""Registers the SQL registry (kind ``sql``).

SQLAlchemy is imported only when registries are asked for, so loading the plugin (as
``tank stores`` does) stays cheap.
"""

import tank
from tank.hookspecs import RegisterRegistry


@tank.hookimpl
def tank_register_registries(register: RegisterRegistry) -> None:
    from tank_registry_sql.registry import SqlRegistry

    register(SqlRegistry)
