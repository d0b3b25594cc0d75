"""Registers the http store. Light on purpose: requests is imported on first use."""

import tank
from tank.hookspecs import RegisterStore
from tank_store_http.backend import HttpBackend


@tank.hookimpl
def tank_register_stores(register: RegisterStore) -> None:
    register(HttpBackend)
