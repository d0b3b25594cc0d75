"""Registers the s3 store. Light on purpose: botocore is imported on first use."""

import tank
from tank.hookspecs import RegisterStore
from tank_store_s3.backend import S3Backend


@tank.hookimpl
def tank_register_stores(register: RegisterStore) -> None:
    register(S3Backend)
