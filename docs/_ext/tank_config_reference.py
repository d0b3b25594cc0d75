"""``.. tank-config-reference::``: every configuration key, generated from the code.

Each section's keys come from an attrs ``Config`` class: Tank's own sections (``[api]``,
``[import]``, ``[scrubber]``, ...) and the ``Config`` of every installed store, registry and
import step plugin. Type, default and meaning (the field's ``#:`` comment) are read from
the class and its source, so the reference cannot drift from the code. A top-level table
of ``tank.config`` with no section class here, or a key without a ``#:`` comment, is a
build warning (and the docs build treats warnings as errors).
"""

from __future__ import annotations

import importlib
from typing import Any

import attrs
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

log = logging.getLogger(__name__)

#: Tank's own sections: top-level table -> "module:Class". Plugin tables (registry,
#: stores, import steps) are found through the plugin manager instead.
CORE_SECTIONS = {
    "api": "tank.api.app:ApiConfig",
    "cache": "tank.cache.config:CacheConfig",
    "console": "tank.console:ConsoleConfig",
    "import": "tank.config:ImportConfig",
    "scrubber": "tank.config:ScrubberConfig",
    "notifications": "tank.notify.notifier:NotificationsConfig",
    "image_format": "tank.config:ImageFormatConfig",
    "quotas": "tank.config:QuotasConfig",
}
#: Tables inside a core section, one per name: "section.TABLE" -> "module:Class".
CORE_SUBTABLES = {"quotas.projects.PROJECT": "tank.config:QuotaLimits"}
#: Top-level tables whose sections are plugins' (documented per installed plugin).
PLUGIN_TABLES = {"registry", "stores"}


def _load(path: str) -> type:
    module, _, name = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def _docs_of(cls: type) -> dict[str, str]:
    """The ``#:`` comments of ``cls``'s fields, its base classes' included."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not attrs.has(klass):
            continue
        found = ModuleAnalyzer.for_module(klass.__module__).find_attr_docs()
        docs.update(
            {
                attr: " ".join(line.strip() for line in lines).strip()
                for (scope, attr), lines in found.items()
                if scope == klass.__qualname__
            }
        )
    return docs


def _default(field: attrs.Attribute[Any]) -> str:
    default = field.default
    if default is attrs.NOTHING:
        return "*required*"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return "*computed*"
        default = default.factory()
    if attrs.has(type(default)):
        return "*(a table)*"
    return f"``{default!r}``"


def _type(field: attrs.Attribute[Any]) -> str:
    kind = field.type
    text = kind if isinstance(kind, str) else getattr(kind, "__name__", repr(kind))
    return f"``{text}``"


def _table(title: str, cls: type, where: str, skip: frozenset[str] = frozenset()) -> list[str]:
    docs = _docs_of(cls)
    lines = [title, "~" * len(title), ""]
    intro = (cls.__doc__ or "").strip().splitlines()
    if intro:
        lines += [intro[0], ""]
    fields = [
        f for f in attrs.fields(cls) if not f.name.startswith("_") and f.init and f.name not in skip
    ]
    if not fields:
        return [*lines, "No keys.", ""]
    lines += [".. list-table::", "   :header-rows: 1", "   :widths: 20 15 15 50", ""]
    lines += ["   * - key", "     - type", "     - default", "     - meaning"]
    for field in fields:
        key = str(field.alias or field.name)
        doc = docs.get(field.name, "")
        if not doc:
            log.warning("config reference: %s key %r has no #: comment", where, key)
        lines += [
            f"   * - ``{key}``",
            f"     - {_type(field)}",
            f"     - {_default(field)}",
            f"     - {doc or '(undocumented)'}",
        ]
    return [*lines, ""]


def reference_lines() -> list[str]:
    from tank import config as config_mod
    from tank.plugins import make_plugin_manager

    top = {f.name for f in attrs.fields(config_mod._TopLevel)} | {"import"}
    tables = {
        f.name
        for f in attrs.fields(config_mod._TopLevel)
        if isinstance(f.default, attrs.Factory)  # type: ignore[arg-type]
    } | {"import"}
    for table in sorted(tables - set(CORE_SECTIONS) - PLUGIN_TABLES):
        log.warning("config reference: top-level table [%s] has no section class listed", table)
    lines = ["Top level", "---------", ""]
    lines += _table("Top-level keys", config_mod._TopLevel, "top level", frozenset(tables))[3:]
    for table in sorted(set(CORE_SECTIONS) & top):
        cls = _load(CORE_SECTIONS[table])
        lines += [f"[{table}]", "-" * (len(table) + 2), ""]
        lines += _table(f"[{table}] keys", cls, f"[{table}]")[3:]
    for table, path in sorted(CORE_SUBTABLES.items()):
        lines += [f"[{table}]", "-" * (len(table) + 2), ""]
        lines += _table(f"[{table}] keys", _load(path), f"[{table}]")[3:]
    plugins = make_plugin_manager(environ={})
    lines += ["[registry]", "----------", "", "One section; ``kind`` picks the registry.", ""]
    for kind, cls in sorted(plugins.registry_types().items()):
        lines += _table(f"kind = {kind!r}", cls.Config, f"[registry] kind {kind}")
    lines += ["[stores.NAME]", "-------------", ""]
    lines += ["One section per store; ``type`` (default: NAME) picks the store class.", ""]
    for kind, cls in sorted(plugins.store_types().items()):
        lines += _table(f"type = {kind!r}", cls.Config, f"[stores] type {kind}")
    lines += ["[notifications.SINK]", "--------------------", ""]
    lines += ["Options of each notification sink named in ``[notifications] sinks``.", ""]
    for name, cls in sorted(plugins.sink_types().items()):
        lines += _table(f"{name}", cls.Config, f"[notifications.{name}]")
    lines += ["[import.STEP]", "-------------", "", "Options of each import step.", ""]
    for name, cls in sorted(plugins.import_step_types().items()):
        lines += _table(f"{name}", cls.Config, f"[import.{name}]")
    return lines


class ConfigReference(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(
            self.state, StringList(reference_lines(), "tank-config-reference"), container
        )
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("tank-config-reference", ConfigReference)
    return {"parallel_read_safe": True}
