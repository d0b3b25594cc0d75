"""Registers the filesystem store (type ``file``)."""

import tank
from tank.hookspecs import RegisterStore
from tank_store_fs.backend import FilesystemBackend


@tank.hookimpl
def tank_register_stores(register: RegisterStore) -> None:
    register(FilesystemBackend)
