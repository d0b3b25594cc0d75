"""Build a plugin's attrs ``Config`` from a TOML table, blaming every error on its key.

:func:`build_fields` checks the keys, shapes each value into the type its field
declares (:func:`structure`), then runs that field's converter and validators on their
own, so that ``{timeout = 5, connect_timeout = -1}`` is blamed on ``connect_timeout``.
:func:`tank.config.build` turns the :class:`Mismatch` into the user's one-line message.

TOML already gives typed values, so nothing is coerced: ``true`` is not an integer,
``1`` is not a boolean, ``"5"`` is not a number, a string is not a list of strings.
What changes is only the container or the precision a field asks for: an array becomes
the field's tuple, list or frozenset, an integer a float, a string a ``Path``. A value
that does not fit raises :class:`Mismatch` with the exact path inside the section
(``hosts[1]``, ``headers.accept``) and what was expected, by kind, never by value.

This is what cattrs's ``structure`` does, written out for the few types a config uses:
cattrs converts by default (``int("5")``, ``bool("false")`` is True, ``list("ab")``) and
would need a strict hook for every one of them.
"""

from __future__ import annotations

import collections.abc
import contextlib
import datetime
import difflib
import enum
import inspect
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any, TypeVar

import attrs

from tank.errors import ConfigError

T = TypeVar("T")

_SEQUENCES: dict[Any, type] = {
    list: list,
    tuple: tuple,
    frozenset: frozenset,
    set: set,
    collections.abc.Sequence: tuple,
    collections.abc.Set: frozenset,
    collections.abc.MutableSequence: list,
}
_MAPPINGS = {dict, Mapping, collections.abc.MutableMapping}


class Mismatch(Exception):
    """``path`` (a key inside the section, dotted and indexed) does not hold ``why``."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(path, why)
        self.path = path
        self.why = why


class FromEnv(str):
    """A string read from an environment variable (``{ env = "NAME" }``): it is a secret
    as far as messages go, so they name ``variable`` instead of showing it."""

    variable: str

    def __new__(cls, value: str, variable: str) -> FromEnv:
        self = super().__new__(cls, value)
        self.variable = variable
        return self

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return (str(self), self.variable)


def structure(value: Any, tp: Any, path: str) -> Any:
    """``value`` as type ``tp``; :class:`Mismatch` at ``path`` if it is not one."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _union(value, args, path)
    if origin is typing.Literal:
        for choice in args:  # a FromEnv is a str; True == 1 but is no int here
            if value == choice and isinstance(value, bool) == isinstance(choice, bool):
                return choice
        raise Mismatch(path, f"expected {describe(tp)}, got {kind(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise Mismatch(path, f"expected nothing, got {kind(value)}")
    if origin in _SEQUENCES or tp in _SEQUENCES:
        return _sequence(value, _SEQUENCES[origin or tp], args, path)
    if origin in _MAPPINGS or tp in _MAPPINGS:
        return _mapping(value, args, path)
    if origin is not None:
        raise TypeError(f"Tank config fields cannot be of type {tp!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return str(value)  # a plain str, not a FromEnv
    elif isinstance(tp, type) and issubclass(tp, PurePath):
        if isinstance(value, str | PurePath):
            return tp(value)
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            pass
    elif attrs.has(tp):
        return build_fields(tp, value, path)
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"Tank config fields cannot be of type {tp!r}")
    raise Mismatch(path, f"expected {describe(tp)}, got {kind(value)}")


def build_fields(cls: type[T], section: Any, path: str = "") -> T:
    """An instance of the attrs class ``cls`` from the table ``section`` at ``path``.

    Each key is shaped to its field's type, then converted and validated on its own, so
    that an error names its key; only then is ``cls`` called, and what fails there
    (``__attrs_post_init__``, checks across keys) is blamed on the section.
    """
    if not isinstance(section, Mapping):
        raise Mismatch(path, f"expected a table, got {kind(section)}")
    hints = _field_types(cls)
    fields = {f.alias: f for f in attrs.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in section:
        if key not in fields:
            known = sorted(fields)
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise Mismatch(
                _join(path, key), f"unknown key ({hint}known keys: {', '.join(known) or 'none'})"
            )
    for key, f in fields.items():
        if key not in section and f.default is attrs.NOTHING:
            raise Mismatch(_join(path, key), "required key is missing")
    inputs: dict[str, Any] = {}
    values = {f.name: _default(f) for f in fields.values() if f.name not in section}
    for key, raw in section.items():
        f = fields[key]
        where = _join(path, key)
        inputs[key] = structure(raw, _input_type(f, hints.get(f.name, Any)), where)
        if f.converter is None:
            values[f.name] = inputs[key]
            continue
        with _blame(where, f.name):
            converted = _convert(f, _plain(inputs[key]), values)
        values[f.name] = structure(converted, hints.get(f.name, Any), where)
    instance = types.SimpleNamespace(**values)  # for validators that look at self
    for key in section:
        f = fields[key]
        if f.validator is not None:
            with _blame(_join(path, key), f.name):
                f.validator(instance, f, values[f.name])
    with _blame(path, ""):
        return cls(**inputs)


def _field_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__}: cannot evaluate the type annotations of "
            f"this config class ({exc}); Tank checks values against them"
        ) from exc


def _input_type(f: attrs.Attribute[Any], field_type: Any) -> Any:
    """What a key takes: its converter's argument type if annotated (``Any`` lets the
    converter decide), else the field's own type."""
    converter: Any = getattr(f.converter, "converter", f.converter)  # attrs.Converter
    if converter is None:
        return field_type
    try:
        first = next(iter(inspect.signature(converter).parameters))
        return typing.get_type_hints(converter).get(first, field_type)
    except (ValueError, TypeError, NameError, AttributeError, StopIteration):
        # builtins such as tuple have no signature; a name that does not resolve
        return field_type


def _convert(f: attrs.Attribute[Any], value: Any, values: dict[str, Any]) -> Any:
    converter: Any = f.converter
    wrapped = getattr(converter, "converter", None)
    if wrapped is None:
        return converter(value)
    extra: list[Any] = []  # attrs.Converter(takes_self=..., takes_field=...)
    if converter.takes_self:
        extra.append(types.SimpleNamespace(**values))
    if converter.takes_field:
        extra.append(f)
    return wrapped(value, *extra)


def _default(f: attrs.Attribute[Any]) -> Any:
    default: Any = f.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return None if default.takes_self else default.factory()
    return default


@contextlib.contextmanager
def _blame(path: str, name: str) -> Iterator[None]:
    """Turn what a converter, validator or the class raised into a Mismatch at ``path``,
    dropping the field name its message starts with (the path already says it)."""
    try:
        yield
    except (TypeError, ValueError, ConfigError) as exc:
        why = str(exc) or type(exc).__name__
        for prefix in (f"{name}: ", f"'{name}' ", f"{name} ") if name else ():
            if why.startswith(prefix):
                why = why[len(prefix) :]
                break
        raise Mismatch(path, why) from None


def _plain(value: Any) -> Any:
    """``value`` with every FromEnv made a plain str, for converters: what they make
    keeps no marker. (``str`` fields are plain already; ``Any`` ones keep what was read,
    which is how the top-level keeps the plugin tables marked until they are built.)"""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def env_values(value: Any) -> list[FromEnv]:
    """Every string in ``value`` that came from the environment."""
    if isinstance(value, FromEnv):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in env_values(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in env_values(v)]
    return []


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _union(value: Any, arms: tuple[Any, ...], path: str) -> Any:
    if value is None and type(None) in arms:
        return None
    deeper: list[Mismatch] = []
    for arm in arms:
        if arm is type(None):
            continue
        try:
            return structure(value, arm, path)
        except Mismatch as exc:
            if exc.path != path:  # the value had this arm's shape; its inside is wrong
                deeper.append(exc)
    if deeper:
        raise deeper[0]
    raise Mismatch(path, f"expected {_either(arms)}, got {kind(value)}")


def _sequence(value: Any, container: type, args: tuple[Any, ...], path: str) -> Any:
    if not isinstance(value, list | tuple):
        raise Mismatch(path, f"expected an array, got {kind(value)}")
    if container is tuple and args and args[-1] is not Ellipsis:  # tuple[int, str]
        if len(value) != len(args):
            raise Mismatch(path, f"expected an array of {len(args)} items, got {len(value)}")
        return tuple(
            structure(v, t, f"{path}[{i}]")
            for i, (v, t) in enumerate(zip(value, args, strict=True))
        )
    item = args[0] if args else Any
    return container(structure(v, item, f"{path}[{i}]") for i, v in enumerate(value))


def _mapping(value: Any, args: tuple[Any, ...], path: str) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise Mismatch(path, f"expected a table, got {kind(value)}")
    key_type, value_type = args or (Any, Any)
    shaped = {}
    for key, item in value.items():
        inner = f"{path}.{key}" if path else str(key)
        shaped[structure(key, key_type, inner)] = structure(item, value_type, inner)
    return shaped


def describe(tp: Any) -> str:
    """What a value of type ``tp`` is called in a TOML file."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _either(typing.get_args(tp))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return "a path (a string)"
    if origin in _SEQUENCES or tp in _SEQUENCES:
        return "an array"
    if origin in _MAPPINGS or tp in _MAPPINGS or attrs.has(tp):
        return "a table"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _either(arms: tuple[Any, ...]) -> str:
    named = [describe(arm) for arm in arms if arm is not type(None)]
    return " or ".join(dict.fromkeys(named))  # list[str] | tuple[str, ...]: "an array"


def kind(value: Any) -> str:
    """What ``value`` is, as TOML calls it: never the value itself."""
    if isinstance(value, FromEnv):
        return f"a string (from environment variable {value.variable})"
    for types_, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list | tuple, "an array"),
        (Mapping, "a table"),
        (datetime.datetime | datetime.date | datetime.time, "a date or time"),
    ):
        if isinstance(value, types_):
            return name
    return "nothing" if value is None else type(value).__name__
