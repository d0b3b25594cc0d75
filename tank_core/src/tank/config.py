"""Configuration: one TOML file plus environment variables, passed in explicitly.

```toml
data_dir = "/var/lib/tank"          # optional; --data-dir or TANK_DATA_DIR win
default_store = "file"              # optional when only one store is configured
image_size_cap = 1099511627776      # bytes (1 TiB, Glance's default)

[registry]                          # sql (default) or a remote registry
connection = "postgresql+psycopg://tank@db/tank"

[stores.file]                       # [stores.<name>]; type defaults to the name
datadir = "/var/lib/tank/images"

[stores.s3]
secret_key = { env = "TANK_S3_SECRET" }   # secrets come from the environment

[import]                            # interoperable import (Images API v2)
steps = ["decompress", "convert"]
convert_to = "raw"

[scrubber]                          # cleaning up: crashed uploads, delayed delete
upload_lease = 60                   # seconds
delayed_delete = false              # DELETE keeps the data as pending_delete ...
scrub_time = 0                      # ... for this many seconds, then a scrub removes it
orphan_grace = 86400                # seconds before unreferenced data is an orphan

[cache]                             # local copies of remote images (tank.cache)
enabled = true
max_size = 10737418240              # bytes

[notifications]                     # Glance's events (tank.notify)
sinks = ["log", "webhook"]
[notifications.webhook]
url = "https://hooks.example.com/tank"
secret = { env = "TANK_WEBHOOK_SECRET" }

[image_format]                      # uploaded data must be its disk_format (Glance's keys)
require_image_format_match = true
[quotas]                            # per-project limits (unset or -1: unlimited)
image_count_total = 100
image_size_total = 10240            # MiB, as in Glance's unified limits

[quotas.projects.<project_id>]      # one project's own limits; unset keys: [quotas]
image_count_total = 1000
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

from tank.cache.config import CacheConfig
from tank.errors import ConfigError
from tank.model import RESERVED_PREFIX
from tank.structure import FromEnv, Mismatch, build_fields, env_values, kind
from tank.validators import between, http_url, not_negative, one_of, positive, power_of_two

__all__ = [
    "CacheConfig",
    "ImageFormatConfig",
    "ImportConfig",
    "QuotaLimits",
    "QuotasConfig",
    "ScrubberConfig",
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
IMPORT_METHODS = ("glance-direct", "web-download", "copy-image")
#: Formats ``qemu-img convert`` may write for ``[import] convert_to``.
CONVERT_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd")


def _methods(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for method in value:
        if method not in IMPORT_METHODS:
            raise ValueError(
                f"{attribute.name}: unknown import method {method!r} "
                f"(known: {', '.join(IMPORT_METHODS)})"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"{attribute.name}: a method is listed twice")


def _step_names(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for name in value:
        if not name.isidentifier():
            raise ValueError(f"{attribute.name}: {name!r} is not a step name")


@attrs.frozen(kw_only=True)
class ImportConfig:
    """``[import]``: interoperable import (``POST /v2/images/{id}/import``)."""

    #: The import methods offered (``GET /v2/info/import`` lists them).
    methods: tuple[str, ...] = attrs.field(default=IMPORT_METHODS, validator=_methods)
    #: Import steps run on the data in this order (``decompress``, ``convert``,
    #: ``inject_metadata`` or a plugin's); each may have an ``[import.<step>]`` table.
    steps: tuple[str, ...] = attrs.field(default=(), validator=_step_names)
    #: Where staged data waits; default ``<data_dir>/staging``.
    staging_dir: Path | None = None
    #: Let web-download fetch from loopback, private and link-local addresses.
    allow_private_networks: bool = False
    #: The disk format the ``convert`` step writes.
    convert_to: str | None = attrs.field(default=None, validator=one_of(*CONVERT_FORMATS))
    #: Imports running at once (a bounded pool; more wait their turn).
    workers: int = attrs.field(default=2, validator=positive)
    #: Properties the ``inject_metadata`` step sets on every imported image.
    inject_properties: dict[str, str] = attrs.field(factory=dict)
    #: web-download: seconds to connect, and seconds each read may wait for data.
    web_download_timeout: float = attrs.field(default=60.0, validator=between(0.001, 3600))
    #: web-download: seconds the whole download may take (a server trickling data just
    #: fast enough to beat ``web_download_timeout`` cannot hold a worker for longer).
    web_download_deadline: float = attrs.field(default=3600.0, validator=between(0.001, 604800))
    #: Seconds an import in flight stays claimed without a heartbeat: a tank-api that
    #: died mid-import is noticed this long after its last heartbeat, and the import is
    #: failed (and cleaned up) by any tank-api sharing the registry.
    lease_seconds: float = attrs.field(default=300.0, validator=between(1.0, 86400))
    #: The ``[import.<step>]`` tables, raw until their step is known
    #: (:func:`tank.imports.steps.build_steps`); not a key of its own.
    step_options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, alias="_steps")


@attrs.frozen(kw_only=True)
class ScrubberConfig:
    """``[scrubber]``: what is cleaned up after a tank-api died mid-upload, and
    delayed delete (Glance's keys and defaults, see :mod:`tank.scrubber`)."""

    #: Seconds an upload in progress stays claimed without a heartbeat (the uploading
    #: tank-api refreshes it while data flows): once it is older, any tank-api sharing
    #: the registry marks the image ``killed`` and removes its partial data.
    upload_lease: float = attrs.field(default=60.0, validator=between(1.0, 86400))
    #: DELETE marks an image with data ``pending_delete`` and keeps the data (it can be
    #: restored: ``tank-manage restore``) until a scrub pass removes it.
    delayed_delete: bool = False
    #: Seconds an image stays ``pending_delete`` before a scrub pass removes its data.
    scrub_time: float = attrs.field(default=0.0, validator=not_negative)
    #: Seconds between scrub passes (``tank-manage scrub --daemon``, ``in_api``).
    interval: float = attrs.field(default=300.0, validator=between(0.1, 86400))
    #: tank-api runs the scrub pass every ``interval`` itself; with several tank-api
    #: processes on one registry, one of them at a time (elected through the registry).
    in_api: bool = False
    #: Seconds data must have been left alone before ``tank-manage scrub --orphans``
    #: may take it for an orphan (:mod:`tank.scrubber.orphans`).
    orphan_grace: float = attrs.field(default=86400.0, validator=not_negative)


#: The GPT safety checks ``[image_format] gpt_safety_checks_nonfatal`` may name.
GPT_CHECKS = ("mbr", "gptmbr")


def _gpt_checks(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for name in value:
        if name not in GPT_CHECKS:
            raise ValueError(
                f"{attribute.name}: unknown GPT safety check {name!r} "
                f"(known: {', '.join(GPT_CHECKS)})"
            )


@attrs.frozen(kw_only=True)
class ImageFormatConfig:
    """``[image_format]``: inspection of uploaded data (:mod:`tank.image_format`), with
    Glance's keys, defaults and meaning."""

    #: Refuse data whose detected format is not the image's ``disk_format``.
    require_image_format_match: bool = True
    #: GPT safety checks whose failure only logs a warning.
    gpt_safety_checks_nonfatal: tuple[str, ...] = attrs.field(default=(), validator=_gpt_checks)


def _limit(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < -1:
        raise ValueError(f"{attribute.name} must be -1 (unlimited), 0 (nothing allowed) or more")


@attrs.frozen(kw_only=True)
class QuotaLimits:
    """The four limits of Glance's unified limits; ``None`` (unset) or -1: unlimited.
    Sizes are MiB (Keystone's unit for Glance's ``image_size_total`` and
    ``image_stage_total``); 0 allows nothing."""

    #: Images of the project that are not deleted or killed.
    image_count_total: int | None = attrs.field(default=None, validator=_limit)
    #: Images being uploaded, staged or imported at once.
    image_count_uploading: int | None = attrs.field(default=None, validator=_limit)
    #: MiB of image data in the stores (an image's size once per location).
    image_size_total: int | None = attrs.field(default=None, validator=_limit)
    #: MiB of data in the staging area (v2 stage and web-download).
    image_stage_total: int | None = attrs.field(default=None, validator=_limit)

    def over(self, defaults: QuotaLimits) -> QuotaLimits:
        """These limits, each unset one taken from ``defaults``."""
        return QuotaLimits(
            **{
                f.name: getattr(defaults, f.name) if getattr(self, f.name) is None
                else getattr(self, f.name)
                for f in attrs.fields(QuotaLimits)
            }
        )  # fmt: skip

    def in_units(self) -> dict[str, int]:
        """The limited resources, sizes in bytes (what registries enforce)."""
        out = {}
        for f in attrs.fields(QuotaLimits):
            value = getattr(self, f.name)
            if value is not None and value >= 0:
                out[f.name] = (
                    value << 20 if f.name.endswith(("size_total", "stage_total")) else value
                )
        return out


@attrs.frozen(kw_only=True)
class QuotasConfig(QuotaLimits):
    """``[quotas]``: the default limits of every project, ``[quotas.projects.<id>]``
    tables with one project's own, and whether admins are held to them."""

    #: Requests by admins are not checked (they may also act for other projects).
    admins_exempt: bool = True
    #: ``[quotas.projects.<project_id>]``: keys set there replace the defaults above.
    projects: dict[str, QuotaLimits] = attrs.field(factory=dict)

    def limits_of(self, project: str | None) -> QuotaLimits:
        defaults = QuotaLimits(**{f.name: getattr(self, f.name) for f in attrs.fields(QuotaLimits)})
        own = self.projects.get(project) if project is not None else None
        return defaults if own is None else own.over(defaults)


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
    #: ``[console]``, raw until tank-api builds :class:`tank.console.ConsoleConfig`.
    console: Mapping[str, Any] = attrs.field(factory=dict)
    imports: ImportConfig = attrs.field(factory=ImportConfig)
    scrubber: ScrubberConfig = attrs.field(factory=ScrubberConfig)
    #: ``[notifications]`` raw (:mod:`tank.notify.notifier` builds it with the sinks).
    notifications: Mapping[str, Any] = attrs.field(factory=dict)
    image_format: ImageFormatConfig = attrs.field(factory=ImageFormatConfig)
    quotas: QuotasConfig = attrs.field(factory=QuotasConfig)
    #: ``[cache]``, with ``dir`` resolved.
    cache: CacheConfig = attrs.field(factory=CacheConfig)

    def where(self, section: str, key: str | None = None) -> str:
        """``file [section] key``: the prefix of every configuration error message."""
        return f"{self.source} [{section}]" + (f" {key}" if key else "")


@attrs.frozen(kw_only=True)
class _TopLevel:
    """The file's top-level keys; plugin tables stay raw until their plugin is known."""

    #: Tank's own directory: the embedded SQLite registry, staging, and the ``file``
    #: store's images when no store is configured (``--data-dir`` and ``TANK_DATA_DIR``
    #: win; default ``./tank-data``).
    data_dir: str | None = None
    #: The store uploads go to unless a request names one; default: the only store
    #: configured, else ``file``.
    default_store: str | None = None
    #: Bytes: the largest image accepted (Glance's image_size_cap, 1 TiB).
    image_size_cap: int = attrs.field(default=DEFAULT_IMAGE_SIZE_CAP, validator=positive)
    registry: dict[str, Any] = attrs.field(factory=dict)
    stores: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    api: dict[str, Any] = attrs.field(factory=dict)
    console: dict[str, Any] = attrs.field(factory=dict)
    scrubber: dict[str, Any] = attrs.field(factory=dict)
    notifications: dict[str, Any] = attrs.field(factory=dict)
    image_format: dict[str, Any] = attrs.field(factory=dict)
    quotas: dict[str, Any] = attrs.field(factory=dict)
    cache: dict[str, Any] = attrs.field(factory=dict)


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
    raw_import = raw.pop("import", {})  # a Python keyword: it cannot be a field name
    top = build(_TopLevel, resolve_env(raw, env, where=source), where=source)
    chosen_dir = data_dir or env.get("TANK_DATA_DIR") or top.data_dir or DEFAULT_DATA_DIR
    root = Path(chosen_dir).expanduser().absolute()
    imports = _import_config(resolve_env(raw_import, env, where=source), root, source)
    scrubber = build(ScrubberConfig, top.scrubber, where=f"{source} [scrubber]")
    cache = build(CacheConfig, top.cache, where=f"{source} [cache]")
    cache_dir = root / "cache" if cache.dir is None else cache.dir.expanduser().absolute()
    cache = attrs.evolve(cache, dir=cache_dir)
    stores = top.stores or {"file": {"datadir": str(root / "images")}}
    default_store = top.default_store
    if default_store is None:
        default_store = next(iter(stores)) if len(stores) == 1 else "file"
    image_format = build(ImageFormatConfig, top.image_format, where=f"{source} [image_format]")
    quotas = build(QuotasConfig, top.quotas, where=f"{source} [quotas]")
    return TankConfig(
        source=source,
        data_dir=root,
        default_store=default_store,
        image_size_cap=top.image_size_cap,
        registry=top.registry,
        stores=stores,
        api=top.api,
        console=top.console,
        imports=imports,
        scrubber=scrubber,
        notifications=top.notifications,
        image_format=image_format,
        quotas=quotas,
        cache=cache,
    )


def _import_config(raw: Any, data_dir: Path, source: str) -> ImportConfig:
    """``[import]``: its own keys strictly; a table under any other name is a step's
    ``[import.<step>]``, kept raw until the step is known."""
    where = f"{source} [import]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source} import: expected a table, got {kind(raw)}")
    own = {str(f.alias) for f in attrs.fields(ImportConfig) if f.alias != "_steps"}
    if "_steps" in raw:
        raise ConfigError(f"{where} _steps: unknown key (known keys: {', '.join(sorted(own))})")
    keys = {k: v for k, v in raw.items() if k in own or not isinstance(v, Mapping)}
    tables = {k: v for k, v in raw.items() if k not in keys}
    settings = build(ImportConfig, keys, where=where)
    for key in settings.inject_properties:
        if key.startswith(RESERVED_PREFIX):
            raise ConfigError(
                f"{where} inject_properties: {key!r} is reserved ({RESERVED_PREFIX}* "
                "properties are set only by Tank)"
            )
    staging = settings.staging_dir
    staging = data_dir / "staging" if staging is None else staging.expanduser().absolute()
    return attrs.evolve(settings, staging_dir=staging, _steps=tables)


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
