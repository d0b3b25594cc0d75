"""Starting points for plugin authors: ``tank plugin new store NAME`` writes a package.

The templates are files beside this module (``store/*.tmpl``, package data), not strings
in code: each reads as the file it becomes, and editing one needs no escaping. They are
filled with :class:`string.Template` (``$name``), whose ``$`` never appears in the
Python, TOML and Markdown they hold, unlike ``str.format``'s braces.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path

import attrs

import tank

#: Lower-case letters and digits, words joined by ``_`` or ``-``; starts with a letter.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")
MAX_NAME_LENGTH = 40

#: template (under ``store/``) -> path in the new package; ``{package}`` is filled in.
STORE_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "conftest.py.tmpl": "conftest.py",
    "package_init.py.tmpl": "src/{package}/__init__.py",
    "tests/test_contract.py.tmpl": "tests/test_contract.py",
}


class ScaffoldError(ValueError):
    """A name the scaffold refuses; the message says what to do."""


class TargetExists(ScaffoldError):
    """The package folder exists already: the scaffold never writes over anything."""


@attrs.frozen
class StoreNames:
    """Every spelling of one store name: type, URI scheme, package, distribution, class."""

    name: str
    scheme: str
    package: str
    dist: str
    cls: str

    @classmethod
    def parse(cls, text: str) -> StoreNames:
        if text.startswith(("tank-store-", "tank_store_")):
            raise ScaffoldError(
                f"give the store's own name, without the prefix: {text[len('tank-store-') :]!r}"
            )
        if len(text) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(text):
            raise ScaffoldError(
                f"{text!r} is not a store name: use lower-case letters and digits, starting "
                f"with a letter, words joined by '_' or '-' (at most {MAX_NAME_LENGTH} "
                "characters), e.g. 'mydisk' or 'object_store'"
            )
        name = text.replace("-", "_")
        return cls(
            name=name,
            scheme=name.replace("_", "-"),
            package=f"tank_store_{name}",
            dist=f"tank-store-{name.replace('_', '-')}",
            cls="".join(word.capitalize() for word in name.split("_")),
        )


def new_store(text: str, parent: Path, taken: dict[str, str] | None = None) -> Path:
    """Write a store package named after ``text`` into ``parent``; return its folder.

    ``taken`` maps store types and URI schemes already installed to their owner: a
    package clashing with one could never be installed beside it.
    """
    names = StoreNames.parse(text)
    for key in (names.name, names.scheme):
        if taken and key in taken:
            raise ScaffoldError(
                f"{key!r} is already a store type or URI scheme here ({taken[key]}): "
                "pick another name"
            )
    target = parent / names.dist
    major, minor, *_ = tank.__version__.split(".")
    values = {
        **attrs.asdict(names),
        "core_requirement": f"tank-core>={major}.{minor},<{major}.{int(minor) + 1}",
    }
    templates = resources.files(__name__) / "store"
    rendered = {
        out.format(package=names.package): string.Template(
            templates.joinpath(template).read_text(encoding="utf-8")
        ).substitute(values)
        for template, out in STORE_FILES.items()
    }
    rendered[f"src/{names.package}/py.typed"] = ""
    parent.mkdir(parents=True, exist_ok=True)
    try:
        target.mkdir()
    except FileExistsError:
        raise TargetExists(f"{target} already exists: nothing was written") from None
    for relative, content in rendered.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return target
