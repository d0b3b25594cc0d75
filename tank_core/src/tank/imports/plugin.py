"""Registers tank-core's built-in import steps, through the hook any plugin would use."""

import tank
from tank.hookspecs import RegisterImportStep
from tank.imports.convert import Convert
from tank.imports.decompress import Decompress
from tank.imports.inject import InjectMetadata


@tank.hookimpl
def tank_register_import_steps(register: RegisterImportStep) -> None:
    register(Decompress)
    register(Convert)
    register(InjectMetadata)
