"""Refuse stores whose local directories clash.

A store that keeps its data in a local directory (the fs store's ``datadir``) takes
every ``<image id>`` file there as its own: its orphan scan
(``tank-manage scrub --orphans --delete``) removes the ones no image of it references.
Two stores in one directory, or one inside the other, would each delete the other's
data; so would a store inside tank-api's own directories of files named by image id
(the image cache when it is on, the import staging area). Stores tell which local
directories they own through :meth:`tank.store.Backend.local_dirs`, so core never
needs to know a store type.

A store directory that *contains* tank-api's data dir internals (``datadir`` =
``--data-dir``, with ``registry.sqlite``, ``cache/`` and ``staging/`` in it) is allowed:
a store owns only the files directly in its directory that are named as Tank names
data, never a subdirectory nor ``registry.sqlite``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tank.config import TankConfig
from tank.errors import SharedStoreDirectory
from tank.store import Backend


def _real(path: Path) -> Path:
    """``path`` with symlinks resolved (as far as it exists) and no trailing slash."""
    return Path(os.path.realpath(path))


def check_store_dirs(config: TankConfig, stores: Iterable[tuple[str, type[Backend], Any]]) -> None:
    """SharedStoreDirectory naming both stores (or the store and tank-api's directory) and the
    directories, if two stores' local directories are the same or one is inside the
    other, or a store's is tank-api's cache (when on) or staging directory or inside it.
    ``stores``: (name, store class, its built ``Config``) of each configured store."""
    owned: list[tuple[str, Path, Path]] = []  # (store, as configured, resolved)
    for name, cls, store_config in stores:
        for path in cls.local_dirs(store_config):
            real = _real(path)
            for other, other_path, other_real in owned:
                if real == other_real:
                    how = f"{_shown(other_path, other_real)} and {_shown(path, real)} are one"
                elif real.is_relative_to(other_real):
                    how = f"{_shown(path, real)} is inside {_shown(other_path, other_real)}"
                elif other_real.is_relative_to(real):
                    how = f"{_shown(other_path, other_real)} is inside {_shown(path, real)}"
                else:
                    continue
                raise SharedStoreDirectory(
                    f"{config.source}: [stores.{other}] and [stores.{name}] share a "
                    f"directory: {how}; each store's orphan scan would take the other's "
                    "data for orphans of its own and delete it. Give every store a "
                    "directory of its own"
                )
            owned.append((name, path, real))
    internals: list[tuple[str, Path | None]] = [
        ("import staging directory ([import] staging_dir)", config.imports.staging_dir)
    ]
    if config.cache.enabled:
        internals.append(("image cache directory ([cache] dir)", config.cache.dir))
    for what, internal in internals:
        if internal is None:
            continue
        inner = _real(internal)
        for name, path, real in owned:
            if real == inner:
                how = "is"
            elif real.is_relative_to(inner):
                how = "is inside"
            else:
                continue
            raise SharedStoreDirectory(
                f"{config.source}: [stores.{name}] directory {_shown(path, real)} {how} "
                f"tank-api's {what} {_shown(internal, inner)}, whose files are named by "
                "image id as the store's are. Give the store a directory of its own"
            )


def _shown(path: Path, real: Path) -> str:
    return str(path) if str(path) == str(real) else f"{path} (= {real})"
