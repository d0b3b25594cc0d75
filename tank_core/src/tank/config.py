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

T = TypeVar("T")

DEFAULT_DATA_DIR = "tank-data"
DEFAULT_IMAGE_SIZE_CAP = 1 << 40
_TOP_KEYS = {"data_dir", "default_store", "image_size_cap", "registry", "stores", "api"}


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
    raw = resolve_env(raw, env, where=source)
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})"
        )
    chosen_dir = data_dir or env.get("TANK_DATA_DIR") or raw.get("data_dir") or DEFAULT_DATA_DIR
    root = Path(chosen_dir).expanduser().absolute()
    stores = raw.get("stores", {})
    registry = raw.get("registry", {})
    for name, value in (("stores", stores), ("registry", registry), ("api", raw.get("api", {}))):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table")
    for name, section in stores.items():
        if not isinstance(section, Mapping):
            raise ConfigError(f"{source}: [stores.{name}] must be a table")
    if not stores:
        stores = {"file": {"datadir": str(root / "images")}}
    default_store = raw.get("default_store", "file")
    if not isinstance(default_store, str):
        raise ConfigError(f"{source}: default_store must be a string")
    cap = raw.get("image_size_cap", DEFAULT_IMAGE_SIZE_CAP)
    if not isinstance(cap, int) or isinstance(cap, bool) or cap <= 0:
        raise ConfigError(f"{source}: image_size_cap must be a positive integer (bytes)")
    return TankConfig(
        source=source,
        data_dir=root,
        default_store=default_store,
        image_size_cap=cap,
        registry=registry,
        stores=stores,
        api=raw.get("api", {}),
    )


def resolve_env(value: Any, environ: Mapping[str, str], *, where: str) -> Any:
    """Replace every ``{ env = "NAME" }`` table with the value of that variable."""
    if isinstance(value, Mapping):
        if list(value) == ["env"]:
            name = value["env"]
            if name not in environ:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return environ[name]
        return {k: resolve_env(v, environ, where=where) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, environ, where=where) for v in value]
    return value


def build(cls: type[T], section: Mapping[str, Any], *, where: str) -> T:
    """Instantiate the attrs class ``cls`` from a config section.

    ``where`` is ``"file [section]"``. Unknown keys, missing required keys and values
    that a field's converter or validator rejects become a :class:`ConfigError` naming
    the key.
    """
    fields = {f.name: f for f in attrs.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(section) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"{where} {unknown[0]}: unknown key (known keys: {known})")
    missing = [
        name for name, f in fields.items() if f.default is attrs.NOTHING and name not in section
    ]
    if missing:
        raise ConfigError(f"{where} {missing[0]}: required key is missing")
    for key, value in section.items():
        expected = fields[key].type
        _check_type(where, key, value, expected)
    try:
        return cls(**section)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        bad = _culprit(exc, section)
        raise ConfigError(f"{where}{' ' + bad if bad else ''}: {exc}") from None


def _check_type(where: str, key: str, value: Any, expected: Any) -> None:
    text = expected if isinstance(expected, str) else getattr(expected, "__name__", "")
    if str(text).startswith(("tuple[", "list[", "frozenset[")):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} {key}: expected a list, got {type(value).__name__}")
        return
    simple: dict[str, Any] = {"int": int, "bool": bool, "str": str, "float": (int, float)}
    kind = simple.get(str(text).replace(" | None", ""))
    if kind is None:
        return
    if value is None and "None" in str(text):
        return
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        # The type, never the value: the key may hold a secret.
        raise ConfigError(
            f"{where} {key}: expected {str(text).replace(' | None', '')}, "
            f"got {type(value).__name__}"
        )


def _culprit(exc: BaseException, section: Mapping[str, Any]) -> str:
    for arg in exc.args:
        if isinstance(arg, str):
            for key in section:
                if key in arg:
                    return key
    return ""


def positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator for sizes and counts in config sections."""
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value}")
