"""Registers the chase store. Light on purpose: swiftclient is imported on first use."""

import tank
from tank.hookspecs import RegisterStore
from tank_store_chase.backend import ChaseBackend


@tank.hookimpl
def tank_register_stores(register: RegisterStore) -> None:
    register(ChaseBackend)
