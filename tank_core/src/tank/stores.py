"""The configured store instances of one Tank, looked up by name or by location.

Stores are named instances: ``[stores.<name>]`` with ``type`` defaulting to the name,
so two S3 endpoints are ``[stores.s3-east]`` and ``[stores.s3-west]`` with
``type = "s3"``. A store whose target is unusable at start-up (``check_writable``
raises BadStoreConfig) stays readable and refuses writes with the reason, as Glance
does; a store whose config section is wrong stops start-up with a ConfigError.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from tank import config as config_mod
from tank.config import TankConfig
from tank.errors import BadStoreConfig, ConfigError, UnknownScheme, UnknownStore
from tank.locations import redact, scheme_of
from tank.plugins import Plugins
from tank.store import Backend
from tank.store_dirs import check_store_dirs

log = logging.getLogger(__name__)

#: First-party store types and their distributions (``pip install`` hints).
_DISTRIBUTIONS = {
    "file": "tank-store-fs",
    "s3": "tank-store-s3",
    "chase": "tank-store-chase",
    "rbd": "tank-store-rbd",
    "http": "tank-store-http",
}


def unknown_store_type(type_name: str, name: str, types: Mapping[str, object]) -> str:
    """Why ``[stores.<name>]`` has no store class: a first-party type not installed
    (say which distribution has it), or a misspelling (say what it may mean)."""
    installed = ", ".join(sorted(types)) or "none"
    said = f"no installed store of type {type_name!r} (installed types: {installed})"
    if type_name in _DISTRIBUTIONS:
        return f"{said}; pip install {_DISTRIBUTIONS[type_name]}"
    aliases = {dist.removeprefix("tank-store-"): t for t, dist in _DISTRIBUTIONS.items()}
    guess = aliases.get(type_name) or next(
        iter(difflib.get_close_matches(type_name, [*types, *_DISTRIBUTIONS], n=1)), None
    )
    how = "" if guess in types or guess is None else f" (pip install {_DISTRIBUTIONS[guess]})"
    hint = f"; did you mean type = {guess!r}{how}?" if guess else ""
    if type_name == name:
        hint += f' (the type defaults to the table name; set type = "..." in [stores.{name}])'
    return said + hint


def store_configs(config: TankConfig, plugins: Plugins) -> list[tuple[str, type[Backend], Any]]:
    """(name, store class, built ``Config``) of every ``[stores.<name>]``, nothing
    opened; ConfigError for an unknown type, a bad section, or stores whose local
    directories clash (:mod:`tank.store_dirs`)."""
    types = plugins.store_types()
    out: list[tuple[str, type[Backend], Any]] = []
    for name, raw in config.stores.items():
        section = dict(raw)
        type_name = section.pop("type", name)
        where = config.where(f"stores.{name}")
        backend_cls = types.get(type_name)
        if backend_cls is None:
            raise ConfigError(f"{where}: {unknown_store_type(type_name, name, types)}")
        out.append((name, backend_cls, config_mod.build(backend_cls.Config, section, where=where)))
    check_store_dirs(config, out)
    return out


class StoreSet:
    """Name → configured :class:`~tank.store.Backend`, plus the default store's name."""

    def __init__(self, stores: Mapping[str, Backend], default: str, *, source: str = "") -> None:
        if default not in stores:
            where = f"{source}: " if source else ""
            raise ConfigError(
                f"{where}default_store {default!r} is not configured "
                f"(configured stores: {', '.join(sorted(stores)) or 'none'}; "
                "set default_store to one of them)"
            )
        self._stores = dict(stores)
        self.default = default

    @classmethod
    def from_config(cls, config: TankConfig, plugins: Plugins) -> StoreSet:
        configured = store_configs(config, plugins)
        stores: dict[str, Backend] = {}
        for name, backend_cls, store_config in configured:
            where = config.where(f"stores.{name}")
            try:
                backend = backend_cls(store_config, name=name)
            except BadStoreConfig as exc:
                raise ConfigError(f"{where}: {exc}") from exc
            try:
                backend.check_writable()
            except BadStoreConfig as exc:
                backend.disable_writes(exc)
                log.warning("store %s cannot be written now: %s", name, exc)
            stores[name] = backend
        return cls(stores, config.default_store, source=config.source)

    def get(self, name: str | None = None) -> Backend:
        """The store called ``name`` (default store if None); UnknownStore otherwise."""
        name = self.default if name is None else name
        try:
            return self._stores[name]
        except KeyError:
            raise UnknownStore(
                f"unknown store {name!r} (available: {', '.join(sorted(self._stores))})"
            ) from None

    def for_location(self, location: str, name: str | None = None) -> Backend:
        """The store that reads ``location``: the named one if given, else by scheme."""
        if name is not None and name in self._stores:
            backend = self._stores[name]
            backend.check_location(location)
            return backend
        scheme = scheme_of(location)
        for backend in self._stores.values():
            if backend.handles(location):
                return backend
        raise UnknownScheme(
            f"no configured store handles {scheme}:// locations "
            f"(handled: {', '.join(sorted(self.schemes())) or 'none'})",
            location=redact(location),
        )

    def schemes(self) -> set[str]:
        return {s for b in self._stores.values() for s in b.schemes}

    def __iter__(self) -> Iterator[Backend]:
        return iter(self._stores.values())

    def __len__(self) -> int:
        return len(self._stores)

    def close(self) -> None:
        for backend in self._stores.values():
            try:
                backend.close()
            except Exception:
                log.exception("closing store %s failed", backend.name)
