"""Sphinx configuration of Tank's documentation site (``nox -s docs``).

The guides include the READMEs' sections rather than copying them, the API reference is
autodoc over the public ``tank`` modules, and the configuration reference is generated
from each installed plugin's ``Config`` class (``_ext/tank_config_reference.py``).
Warnings are errors (``sphinx-build -W``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import tank

project = "Tank"
author = "The Tank developers"
release = tank.__version__
version = release
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "tank_config_reference",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
# The READMEs link to files of the repository (other READMEs, source files), which are
# not pages of this site; they stay plain links.
suppress_warnings = ["myst.xref_missing", "myst.header"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Annotations name types only imported under TYPE_CHECKING; they stay text.
nitpicky = False
intersphinx_mapping: dict[str, tuple[str, None]] = {}
html_theme = "alabaster"
html_title = f"Tank {release}"
