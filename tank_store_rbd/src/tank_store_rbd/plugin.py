"""Registers the ``rbd`` store. Light on purpose: rados/rbd load only when a store is built."""

from __future__ import annotations

import tank
from tank.hookspecs import RegisterStore
from tank_store_rbd.backend import RBDBackend


@tank.hookimpl
def tank_register_stores(register: RegisterStore) -> None:
    register(RBDBackend)
