from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from tank import config
from tank.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tank.toml"
    path.write_text(text)
    return path


def test_embedded_defaults(tmp_path: Path) -> None:
    cfg = config.load(data_dir=tmp_path / "data", environ={})
    assert cfg.source == "<defaults>"
    assert cfg.default_store == "file"
    assert cfg.stores == {"file": {"datadir": str(tmp_path / "data" / "images")}}
    assert cfg.registry == {}


def test_file_and_env(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
default_store = "s3"
[stores.s3]
secret_key = { env = "MY_SECRET" }
[registry]
connection = "sqlite:///x.db"
""",
    )
    cfg = config.load(
        environ={"TANK_CONFIG": str(path), "TANK_DATA_DIR": str(tmp_path), "MY_SECRET": "s3cr3t"}
    )
    assert cfg.stores == {"s3": {"secret_key": "s3cr3t"}}
    assert cfg.data_dir == tmp_path
    assert cfg.registry == {"connection": "sqlite:///x.db"}


def test_missing_env_variable_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[stores.s3]\nsecret_key = { env = "NOPE_SECRET" }\n')
    with pytest.raises(ConfigError, match="NOPE_SECRET is not set"):
        config.load(path, environ={})


@pytest.mark.parametrize(
    "text,message",
    [
        ("colour = 'red'\n", "unknown key 'colour'"),
        ("default_store = 3\n", "default_store must be a string"),
        ("image_size_cap = -1\n", "image_size_cap must be a positive"),
        ("stores = 1\n", r"\[stores\] must be a table"),
        ("[stores]\nfile = 3\n", r"\[stores.file\] must be a table"),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        config.load(path, environ={})
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml", environ={})


@attrs.frozen(kw_only=True)
class StoreConfig:
    datadir: str
    chunk_size: int = attrs.field(default=1024, validator=config.positive)
    verify: bool = True
    region: str | None = None


def test_build_section() -> None:
    built = config.build(StoreConfig, {"datadir": "/x", "chunk_size": 8}, where="f [stores.a]")
    assert built == StoreConfig(datadir="/x", chunk_size=8)


@pytest.mark.parametrize(
    "section,message",
    [
        ({"datadir": "/x", "colour": 1}, r"f \[stores.a\] colour: unknown key"),
        ({}, r"f \[stores.a\] datadir: required key is missing"),
        ({"datadir": "/x", "chunk_size": "big"}, r"chunk_size: expected int"),
        ({"datadir": "/x", "chunk_size": True}, r"chunk_size: expected int"),
        ({"datadir": "/x", "verify": "yes"}, r"verify: expected bool"),
        ({"datadir": "/x", "chunk_size": 0}, r"chunk_size.*must be > 0"),
        ({"datadir": 5}, r"datadir: expected str"),
    ],
)
def test_build_errors_name_section_and_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.build(StoreConfig, section, where="f [stores.a]")
    assert config.build(StoreConfig, {"datadir": "/x", "region": None}, where="w").region is None


@attrs.frozen(kw_only=True)
class ListConfig:
    hosts: tuple[str, ...] = attrs.field(default=(), converter=tuple)


def test_list_fields_reject_a_plain_string() -> None:
    assert config.build(ListConfig, {"hosts": ["a", "b"]}, where="w").hosts == ("a", "b")
    with pytest.raises(ConfigError, match="hosts: expected a list"):
        config.build(ListConfig, {"hosts": "ab"}, where="w")
