"""What the memory store adds to the contract: its entry point, config and capacity."""

from pathlib import Path

import pytest

from tank import errors
from tank.config import build, load
from tank.errors import ConfigError
from tank.plugins import make_plugin_manager
from tank.stores import StoreSet
from tank_store_memory import MemoryBackend

MiB = 1 << 20


def test_found_through_its_entry_point(tmp_path: Path) -> None:
    """Installed, the store is configured like any other: by type name, from tank.toml."""
    (tmp_path / "tank.toml").write_text(
        'default_store = "scratch"\n[stores.scratch]\ntype = "memory"\nmax_bytes = 1048576\n'
    )
    config = load(tmp_path / "tank.toml", data_dir=tmp_path, environ={})
    stores = StoreSet.from_config(config, make_plugin_manager(environ={}))
    scratch = stores.get("scratch")
    assert isinstance(scratch, MemoryBackend)
    assert scratch.config.max_bytes == MiB


def test_bad_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match="max_bytes"):
        build(MemoryBackend.Config, {"max_bytes": 0}, where="tank.toml [stores.memory]")


def test_full_store_refuses_and_keeps_nothing() -> None:
    store = MemoryBackend(MemoryBackend.Config(max_bytes=3 * MiB))
    kept = store.add("first", iter([b"x" * (2 * MiB)]))
    with pytest.raises(errors.StorageFull, match="max_bytes"):
        store.add("second", iter([b"y" * (2 * MiB)]))
    assert store.locations() == {kept.location}
    assert store.held_bytes == 2 * MiB
    store.delete(kept.location)
    assert store.held_bytes == 0
    store.add("second", iter([b"y" * (2 * MiB)]))
