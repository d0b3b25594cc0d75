"""Configuration: one TOML file plus environment variables, passed in explicitly.

```toml
data_dir = "/var/lib/tank"          # optional; --data-dir or TANK_DATA_DIR win
default_store = "file"
image_size_cap = 1099511627776      # bytes (1 TiB, Glance's default)

[registry]                          # sql (default) or a remote registry
connection = "postgresql+psycopg://tank@db/tank"

[stores.file]                       # [stores.<name>]; type defaults to the name
datadir = "/var/lib/tank/images"

[stores.s3]
secret_key = { env = "TANK_S3_SECRET" }   # secrets come from the environment
```

Each plugin declares an attrs ``Config`` class; :func:`build` turns its section into one
and reports unknown keys and bad values with file, section and key. Nothing else in
Tank reads files or the environment for configuration.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from tank.errors import ConfigError
from tank.structure import FromEnv, Mismatch, build_fields, env_values
from tank.validators import between, http_url, not_negative, one_of, positive, power_of_two

__all__ = [
    "TankConfig",
    "between",
    "build",
    "http_url",
    "load",
    "not_negative",
    "one_of",
    "positive",
    "power_of_two",
    "resolve_env",
]

T = TypeVar("T")

DEFAULT_DATA_DIR = "tank-data"
DEFAULT_IMAGE_SIZE_CAP = 1 << 40


@attrs.frozen(kw_only=True)
class TankConfig:
    """The whole configuration, with raw per-plugin sections still to be :func:`build`-t."""

    source: str
    data_dir: Path
    default_store: str = "file"
    image_size_cap: int = DEFAULT_IMAGE_SIZE_CAP
    registry: Mapping[str, Any] = attrs.field(factory=dict)
    stores: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    api: Mapping[str, Any] = attrs.field(factory=dict)

    def where(self, section: str, key: str | None = None) -> str:
        """``file [section] key``: the prefix of every configuration error message."""
        return f"{self.source} [{section}]" + (f" {key}" if key else "")


@attrs.frozen(kw_only=True)
class _TopLevel:
    """The file's top-level keys; plugin tables stay raw until their plugin is known."""

    data_dir: str | None = None
    default_store: str = "file"
    #: Bytes.
    image_size_cap: int = attrs.field(default=DEFAULT_IMAGE_SIZE_CAP, validator=positive)
    registry: dict[str, Any] = attrs.field(factory=dict)
    stores: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    api: dict[str, Any] = attrs.field(factory=dict)


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> TankConfig:
    """Read the config file (``path`` or ``$TANK_CONFIG``) and apply embedded defaults.

    Without a file, Tank runs on embedded defaults: an SQLite registry and a filesystem
    store named ``file``, both inside ``data_dir``.
    """
    env = os.environ if environ is None else environ
    path = path or env.get("TANK_CONFIG") or None
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {source} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {source}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    top = build(_TopLevel, resolve_env(raw, env, where=source), where=source)
    chosen_dir = data_dir or env.get("TANK_DATA_DIR") or top.data_dir or DEFAULT_DATA_DIR
    root = Path(chosen_dir).expanduser().absolute()
    return TankConfig(
        source=source,
        data_dir=root,
        default_store=top.default_store,
        image_size_cap=top.image_size_cap,
        registry=top.registry,
        stores=top.stores or {"file": {"datadir": str(root / "images")}},
        api=top.api,
    )


def resolve_env(value: Any, environ: Mapping[str, str], *, where: str) -> Any:
    """Replace every ``{ env = "NAME" }`` table with the value of that variable.

    The value comes back marked as from the environment, so that :func:`build` never
    shows it in a message (it names the variable instead); the built objects hold plain
    strings.
    """
    if isinstance(value, Mapping):
        if list(value) == ["env"]:
            name = value["env"]
            if name not in environ:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return FromEnv(environ[name], name)
        return {k: resolve_env(v, environ, where=where) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, environ, where=where) for v in value]
    return value


def build(cls: type[T], section: Mapping[str, Any], *, where: str) -> T:
    """Instantiate the attrs class ``cls`` (a plugin's ``Config``) from a config section.

    ``where`` is ``"file [section]"``. Every value must have its field's annotated type
    (``int``, ``float``, ``bool``, ``str``, ``Path``, ``X | None``, ``Literal``, enums,
    ``list``/``tuple``/``frozenset`` of them, ``dict[str, X]``, nested attrs classes),
    strictly: ``true`` is no integer, ``1`` no boolean. A field with a converter takes
    what the converter's first argument is annotated with (``Any``: anything). Then each
    key's converter and validators run on their own. Whatever fails becomes one
    :class:`ConfigError` line, ``where key: why`` (``where: why`` for a check across
    keys), in which a value from the environment is never shown.
    """
    try:
        return build_fields(cls, section)
    except Mismatch as bad:
        why = bad.why
        for secret in sorted(env_values(section), key=len, reverse=True):
            if secret:
                shown = f"<${secret.variable}>"
                why = why.replace(repr(str(secret)), shown).replace(str(secret), shown)
        raise ConfigError(f"{where} {bad.path}: {why}" if bad.path else f"{where}: {why}") from None
