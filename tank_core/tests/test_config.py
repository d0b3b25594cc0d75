from __future__ import annotations

import enum
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest

from tank import config
from tank.api import ApiConfig
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


TOP_KEYS = (
    "api, cache, console, data_dir, default_store, image_format, image_size_cap, "
    "notifications, quotas, registry, scrubber, stores"
)


@pytest.mark.parametrize(
    "text,message",
    [
        ("colour = 'red'\n", f"colour: unknown key (known keys: {TOP_KEYS})"),
        ("stores_ = {}\n", f"stores_: unknown key (did you mean stores? known keys: {TOP_KEYS})"),
        ("default_store = 3\n", "default_store: expected a string, got an integer"),
        ("image_size_cap = -1\n", "image_size_cap: must be > 0"),
        ("image_size_cap = true\n", "image_size_cap: expected an integer, got a boolean"),
        ("data_dir = 5\n", "data_dir: expected a string, got an integer"),
        ("stores = 1\n", "stores: expected a table, got an integer"),
        ("[stores]\nfile = 3\n", "stores.file: expected a table, got an integer"),
        ("api = []\n", "api: expected a table, got an array"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    assert str(info.value) == f"{path} {message}"


def test_scrubber_delayed_delete_keys(tmp_path: Path) -> None:
    defaults = config.load(environ={}).scrubber  # Glance's defaults
    assert (defaults.delayed_delete, defaults.scrub_time, defaults.interval) == (False, 0, 300)
    assert defaults.in_api is False
    path = write(
        tmp_path,
        "[scrubber]\ndelayed_delete = true\nscrub_time = 3600\ninterval = 60\nin_api = true\n",
    )
    got = config.load(path, environ={}).scrubber
    assert (got.delayed_delete, got.scrub_time, got.interval, got.in_api) == (True, 3600, 60, True)


def test_scrubber_upload_lease(tmp_path: Path) -> None:
    assert config.load(environ={}).scrubber.upload_lease == 60.0  # the default
    path = write(tmp_path, "[scrubber]\nupload_lease = 5\n")
    assert config.load(path, environ={}).scrubber.upload_lease == 5.0


@pytest.mark.parametrize(
    "text,message",
    [
        ("[scrubber]\nupload_lease = 0\n", "[scrubber] upload_lease: must be from 1.0 to 86400"),
        ("[scrubber]\nupload_lease = '60'\n", "[scrubber] upload_lease: expected a number"),
        ("[scrubber]\nlease = 60\n", "[scrubber] lease: unknown key"),
        ("[scrubber]\ndelayed_delete = 1\n", "[scrubber] delayed_delete: expected a boolean"),
        ("[scrubber]\nscrub_time = -1\n", "[scrubber] scrub_time: must be >= 0"),
        ("[scrubber]\nscrub_time = 'soon'\n", "[scrubber] scrub_time: expected a number"),
        ("[scrubber]\ninterval = 0\n", "[scrubber] interval: must be from 0.1 to 86400"),
        ("[scrubber]\nin_api = 'yes'\n", "[scrubber] in_api: expected a boolean"),
        ("scrubber = 1\n", "scrubber: expected a table, got an integer"),
    ],
)
def test_bad_scrubber_section(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    assert str(info.value).startswith(f"{path} {message}"), str(info.value)


def test_quotas_defaults_and_project_overrides(tmp_path: Path) -> None:
    default = config.load(environ={}).quotas
    assert default.admins_exempt is True
    assert default.limits_of("any").in_units() == {}  # nothing limited
    path = write(
        tmp_path,
        "[quotas]\nimage_count_total = 10\nimage_size_total = 2\nadmins_exempt = false\n"
        "[quotas.projects.p1]\nimage_count_total = -1\nimage_stage_total = 0\n",
    )
    quotas = config.load(path, environ={}).quotas
    assert quotas.admins_exempt is False
    assert quotas.limits_of("other").in_units() == {
        "image_count_total": 10,
        "image_size_total": 2 << 20,  # MiB in the file, bytes enforced
    }
    assert quotas.limits_of("p1").in_units() == {
        "image_size_total": 2 << 20,
        "image_stage_total": 0,
    }
    assert quotas.limits_of(None).in_units() == quotas.limits_of("other").in_units()


@pytest.mark.parametrize(
    "text,message",
    [
        ("[quotas]\nimage_count_total = -2\n", "[quotas] image_count_total: must be -1"),
        ("[quotas]\nimage_size_total = '10G'\n", "[quotas] image_size_total: expected an integer"),
        ("[quotas]\nimage_total = 1\n", "[quotas] image_total: unknown key"),
        (
            "[quotas.projects.p]\nadmins_exempt = true\n",
            "[quotas] projects.p.admins_exempt: unknown key",
        ),
        ("[quotas.projects]\np = 1\n", "[quotas] projects.p: expected a table, got an integer"),
    ],
)
def test_bad_quotas_section(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    assert str(info.value).startswith(f"{path} {message}"), str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "this is = not toml [")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
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
        (
            {"datadir": "/x", "colour": 1},
            "colour: unknown key (known keys: chunk_size, datadir, region, verify)",
        ),
        (
            {"datadir": "/x", "chunk": 1},
            "chunk: unknown key (did you mean chunk_size? known keys:"
            " chunk_size, datadir, region, verify)",
        ),
        ({}, "datadir: required key is missing"),
        ({"datadir": "/x", "chunk_size": "big"}, "chunk_size: expected an integer, got a string"),
        ({"datadir": "/x", "chunk_size": True}, "chunk_size: expected an integer, got a boolean"),
        ({"datadir": "/x", "chunk_size": 1.5}, "chunk_size: expected an integer, got a float"),
        ({"datadir": "/x", "verify": "yes"}, "verify: expected a boolean, got a string"),
        ({"datadir": "/x", "verify": 1}, "verify: expected a boolean, got an integer"),
        ({"datadir": "/x", "chunk_size": 0}, "chunk_size: must be > 0"),
        ({"datadir": 5}, "datadir: expected a string, got an integer"),
        ({"datadir": "/x", "region": 5}, "region: expected a string, got an integer"),
    ],
)
def test_build_errors_name_section_and_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.build(StoreConfig, section, where="f [stores.a]")
    assert str(info.value) == f"f [stores.a] {message}"
    assert config.build(StoreConfig, {"datadir": "/x", "region": None}, where="w").region is None


@attrs.frozen(kw_only=True)
class ListConfig:
    hosts: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    names: list[str] = attrs.field(factory=list)


def test_list_fields_reject_a_plain_string() -> None:
    assert config.build(ListConfig, {"hosts": ["a", "b"]}, where="w").hosts == ("a", "b")
    with pytest.raises(ConfigError, match=r"^w hosts: expected an array, got a string$"):
        config.build(ListConfig, {"hosts": "ab"}, where="w")
    with pytest.raises(ConfigError, match=r"^w names\[1\]: expected a string, got an integer$"):
        config.build(ListConfig, {"names": ["a", 1]}, where="w")


@attrs.frozen(kw_only=True)
class Timeouts:
    timeout: float = attrs.field(default=60.0, validator=config.positive)
    connect_timeout: float = attrs.field(default=3.0, validator=config.positive)
    retries: int = attrs.field(default=2, validator=config.not_negative)
    seed: int = attrs.field(default=0, validator=config.between(0, 32))


@pytest.mark.parametrize(
    "section,message",
    [
        ({"timeout": 5, "connect_timeout": -1}, "connect_timeout: must be > 0"),
        ({"connect_timeout": 5, "timeout": -1}, "timeout: must be > 0"),
        ({"timeout": 5, "retries": -1}, "retries: must be >= 0"),
        ({"seed": 33}, "seed: must be from 0 to 32"),
    ],
)
def test_the_key_whose_value_is_wrong_is_blamed(section: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.build(Timeouts, section, where="f [stores.a]")
    assert str(info.value) == f"f [stores.a] {message}"


def test_integers_are_taken_for_floats() -> None:
    built = config.build(Timeouts, {"timeout": 5, "retries": 0}, where="w")
    assert built.timeout == 5.0 and isinstance(built.timeout, float)


#: A plugin's config module as a third party might write it, with or without postponed
#: annotations (which make every annotation a string).
THIRD_PARTY = """
import attrs
from tank.config import positive

@attrs.frozen(kw_only=True)
class Config:
    hosts: list[str] = attrs.field(factory=list)
    headers: dict[str, str] = attrs.field(factory=dict)
    limit: int | None = None
    retries: int = 3
    verbose: bool = False
    timeout: float = attrs.field(default=5.0, validator=positive)
"""


@pytest.fixture(params=["", "from __future__ import annotations\n"], ids=["plain", "future"])
def third_party(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    module = types.ModuleType("tank_third_party_config")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(request.param + THIRD_PARTY, "third_party.py", "exec"), module.__dict__)
    return module.Config


@pytest.mark.parametrize(
    "section,message",
    [
        ({"hosts": "a.example"}, "hosts: expected an array, got a string"),
        ({"hosts": ["a.example", 2]}, "hosts[1]: expected a string, got an integer"),
        ({"headers": {"accept": 1}}, "headers.accept: expected a string, got an integer"),
        ({"headers": ["accept"]}, "headers: expected a table, got an array"),
        ({"limit": "10"}, "limit: expected an integer, got a string"),
        ({"limit": True}, "limit: expected an integer, got a boolean"),
        ({"retries": True}, "retries: expected an integer, got a boolean"),
        ({"verbose": 1}, "verbose: expected a boolean, got an integer"),
        ({"timeout": "5"}, "timeout: expected a number, got a string"),
        ({"timeout": 0}, "timeout: must be > 0"),
    ],
)
def test_third_party_configs_are_type_checked(
    third_party: type, section: dict, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config.build(third_party, section, where="tank.toml [stores.x]")
    assert str(info.value) == f"tank.toml [stores.x] {message}"


def test_third_party_config_builds(third_party: type) -> None:
    section = {"hosts": ["a"], "headers": {"accept": "*/*"}, "limit": 10, "timeout": 2}
    built = config.build(third_party, section, where="w")
    assert (built.hosts, built.headers, built.limit, built.timeout) == (
        ["a"],
        {"accept": "*/*"},
        10,
        2.0,
    )


def _echoing(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if " " in value:
        raise ValueError(f"{attribute.name}: {value!r} has a space")


@attrs.frozen(kw_only=True)
class SecretConfig:
    name: str = attrs.field(validator=_echoing)
    password: str = attrs.field(repr=False)
    port: int = 1
    url: str | None = attrs.field(default=None, validator=config.http_url)

    def __attrs_post_init__(self) -> None:
        if self.password == self.name:
            raise ValueError(f"password must differ from name {self.name!r}")


@pytest.mark.parametrize(
    "table,message",
    [
        ('name = { env = "SECRET" }\npassword = "p"', "name: <$SECRET> has a space"),
        (
            'name = "n"\npassword = "p"\nport = { env = "SECRET" }',
            "port: expected an integer, got a string (from environment variable SECRET)",
        ),
        (
            'name = "n"\npassword = "p"\nurl = { env = "SECRET" }',
            "url: must be an http:// or https:// URL with a host",
        ),
        (
            'name = { env = "TWIN" }\npassword = { env = "TWIN" }',
            ": password must differ from name <$TWIN>",
        ),
    ],
)
def test_values_from_the_environment_never_show(tmp_path: Path, table: str, message: str) -> None:
    secret = "hunter2 is: 'the password'"
    path = write(tmp_path, f"[stores.x]\n{table}\n")
    cfg = config.load(path, data_dir=tmp_path, environ={"SECRET": secret, "TWIN": "hunter2"})
    with pytest.raises(ConfigError) as info:
        config.build(SecretConfig, cfg.stores["x"], where=cfg.where("stores.x"))
    assert str(info.value) == f"{path} [stores.x]{'' if message[0] == ':' else ' '}{message}"
    assert "hunter2" not in str(info.value)


def test_built_configs_hold_plain_strings(tmp_path: Path) -> None:
    path = write(tmp_path, '[stores.x]\nname = "n"\npassword = { env = "SECRET" }\n')
    cfg = config.load(path, data_dir=tmp_path, environ={"SECRET": "s3cr3t"})
    built = config.build(SecretConfig, cfg.stores["x"], where=cfg.where("stores.x"))
    assert built.password == "s3cr3t" and type(built.password) is str


@pytest.mark.parametrize(
    "key,value,why",
    [
        ("threads", 0, "must be from 1 to 4096"),
        ("threads", 100_000, "must be from 1 to 4096"),  # started threads until it failed
        ("header_timeout", float("nan"), "must be from 0.001 to 3600"),  # never timed out
        ("header_timeout", float("inf"), "must be from 0.001 to 3600"),
        ("max_connections_per_client", -1, "must be >= 0"),
    ],
)
def test_api_server_values_are_bounded(key: str, value: float, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.build(ApiConfig, {key: value}, where="tank.toml [api]")
    assert str(info.value) == f"tank.toml [api] {key}: {why}"
    assert config.build(ApiConfig, {"threads": 4}, where="w").threads == 4


MULTIHASH_CHOICES = (
    "must be one of: blake2b, blake2s, sha1, sha224, sha256, sha384, sha3_224, sha3_256, "
    "sha3_384, sha3_512, sha512 (md5 is always computed as the checksum; shake_* need a "
    "digest length)"
)


@pytest.mark.parametrize(
    "value,why",
    [
        ("sha-512", MULTIHASH_CHOICES),
        ("SHA512", MULTIHASH_CHOICES),  # os_hash_algo is what clients pass to hashlib.new
        ("md5", MULTIHASH_CHOICES),
        ("shake_128", MULTIHASH_CHOICES),
        (512, "expected a string, got an integer"),
    ],
)
def test_hashing_algorithm_is_a_guaranteed_hashlib_name(value: object, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.build(ApiConfig, {"hashing_algorithm": value}, where="tank.toml [api]")
    assert str(info.value) == f"tank.toml [api] hashing_algorithm: {why}"
    assert config.build(ApiConfig, {}, where="w").hashing_algorithm == "sha256"
    built = config.build(ApiConfig, {"hashing_algorithm": "sha3_256"}, where="w")
    assert built.hashing_algorithm == "sha3_256"


@pytest.mark.parametrize(
    "line,message",
    [
        ("threads = 0", "threads: must be from 1 to 4096"),
        ('hashing_algorithm = "sha-512"', f"hashing_algorithm: {MULTIHASH_CHOICES}"),
    ],
)
def test_tank_api_refuses_bad_api_values_in_one_line(
    tmp_path: Path, line: str, message: str
) -> None:
    exe = shutil.which("tank-api", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("tank-api is not installed in this environment")
    path = write(tmp_path, f"[api]\n{line}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANK_")}
    done = subprocess.run(
        [exe, "--config", str(path), "--data-dir", str(tmp_path / "data"), "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr == f"Error: {path} [api] {message}\n"


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@attrs.frozen(kw_only=True)
class Shapes:
    style: Literal["path", "virtual"] = "path"
    mode: Mode = Mode.SAFE
    where: Path = Path("/")
    pair: tuple[str, int] = ("a", 1)
    limits: dict[str, int] = attrs.field(factory=dict)
    timeouts: Timeouts = attrs.field(factory=Timeouts)


def test_literals_enums_paths_and_nested_tables() -> None:
    section = {
        "style": "virtual",
        "mode": "fast",
        "where": "/srv",
        "pair": ["b", 2],
        "limits": {"a": 1},
        "timeouts": {"timeout": 1},
    }
    built = config.build(Shapes, section, where="w")
    assert built == Shapes(
        style="virtual",
        mode=Mode.FAST,
        where=Path("/srv"),
        pair=("b", 2),
        limits={"a": 1},
        timeouts=Timeouts(timeout=1.0),
    )


@pytest.mark.parametrize(
    "section,message",
    [
        ({"style": "sideways"}, "style: expected one of 'path', 'virtual', got a string"),
        ({"mode": "slow"}, "mode: expected one of 'fast', 'safe', got a string"),
        ({"where": 1}, "where: expected a path (a string), got an integer"),
        ({"pair": ["b"]}, "pair: expected an array of 2 items, got 1"),
        ({"pair": ["b", True]}, "pair[1]: expected an integer, got a boolean"),
        ({"limits": {"a": "1"}}, "limits.a: expected an integer, got a string"),
        ({"timeouts": {"connect_timeout": 0}}, "timeouts.connect_timeout: must be > 0"),
        ({"timeouts": {"tmeout": 1}}, "timeouts.tmeout: unknown key (did you mean timeout?"),
    ],
)
def test_nested_values_are_blamed_by_their_path(section: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.build(Shapes, section, where="w")
    assert str(info.value).startswith(f"w {message}")


def test_a_literal_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[api]\nstyle = { env = "STYLE" }\n')
    cfg = config.load(path, data_dir=tmp_path, environ={"STYLE": "virtual"})
    built = config.build(Shapes, cfg.api, where=cfg.where("api"))
    assert built.style == "virtual" and type(built.style) is str
