"""Configuration mistakes a new user made, and the messages that must set them right."""

from __future__ import annotations

from pathlib import Path

import pytest

from tank import config
from tank.errors import ConfigError
from tank.plugins import make_plugin_manager
from tank.service import open_registry
from tank.stores import StoreSet


def load(tmp_path: Path, text: str) -> config.TankConfig:
    path = tmp_path / "tank.toml"
    path.write_text(text)
    return config.load(path, data_dir=tmp_path / "data", environ={})


def stores_of(cfg: config.TankConfig) -> StoreSet:
    return StoreSet.from_config(cfg, make_plugin_manager())


def test_the_only_store_is_the_default(tmp_path: Path) -> None:
    cfg = load(tmp_path, f'[stores.local]\ntype = "file"\ndatadir = "{tmp_path}/i"\n')
    assert cfg.default_store == "local"
    assert stores_of(cfg).default == "local"


def test_several_stores_without_default_still_mean_file(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        f'[stores.a]\ntype = "file"\ndatadir = "{tmp_path}/a"\n'
        f'[stores.b]\ntype = "file"\ndatadir = "{tmp_path}/b"\n',
    )
    with pytest.raises(ConfigError) as info:
        stores_of(cfg)
    said = str(info.value)
    assert said.startswith(f"{tmp_path / 'tank.toml'}: default_store 'file' is not configured")
    assert "configured stores: a, b" in said


def test_missing_default_store_names_the_file(tmp_path: Path) -> None:
    cfg = load(tmp_path, f'default_store = "s3"\n[stores.file]\ndatadir = "{tmp_path}/i"\n')
    with pytest.raises(ConfigError, match=r"tank\.toml: default_store 's3' is not configured"):
        stores_of(cfg)


def test_misspelled_store_table_suggests_the_type(tmp_path: Path) -> None:
    cfg = load(tmp_path, f'[stores.fiel]\ndatadir = "{tmp_path}/i"\n')
    with pytest.raises(ConfigError) as info:
        stores_of(cfg)
    said = str(info.value)
    assert "[stores.fiel]: no installed store of type 'fiel'" in said
    assert "did you mean type = 'file'?" in said
    assert "installed types: " in said and "file" in said
    assert "pip install tank-store-fiel" not in said


def test_distribution_name_as_type_points_to_the_type(tmp_path: Path) -> None:
    cfg = load(tmp_path, f'[stores.file]\ntype = "fs"\ndatadir = "{tmp_path}/i"\n')
    with pytest.raises(ConfigError) as info:
        stores_of(cfg)
    said = str(info.value)
    assert "did you mean type = 'file'?" in said
    assert "pip install" not in said  # tank-store-fs is installed: no reason to install it


def test_first_party_type_not_installed_names_its_distribution(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[stores.big]\ntype = "rbd"\npool = "x"\n')
    pm = make_plugin_manager(blocked=["rbd"])
    with pytest.raises(ConfigError, match="pip install tank-store-rbd"):
        StoreSet.from_config(cfg, pm)


def test_url_and_connection_together(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[registry]\nurl = "http://127.0.0.1:9"\nconnection = "sqlite://"\n')
    with pytest.raises(ConfigError) as info:
        open_registry(cfg, make_plugin_manager())
    assert str(info.value) == (
        f"{tmp_path / 'tank.toml'} [registry]: give url (a remote registry over HTTP) or "
        "connection (an SQL database), not both"
    )
