"""Interoperable import (``POST /v2/images/{id}/import``): its building blocks.

* :mod:`~tank.imports.web`: web-download's fetch, through the SSRF guard of :mod:`tank.net`;
* :mod:`~tank.imports.staging`: the staging area, where data waits and steps work;
* :mod:`~tank.imports.steps`: the import step contract and how ``[import] steps`` is built;
  :mod:`~tank.imports.decompress`, :mod:`~tank.imports.convert` and
  :mod:`~tank.imports.inject` are the built-in steps, registered by
  :mod:`~tank.imports.plugin` like any plugin's;
* :mod:`~tank.imports.runner`: the bounded pool imports run in, in the background.

The service layer puts them together; nothing here changes the registry.
"""
