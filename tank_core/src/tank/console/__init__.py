"""The web console: static pages served by tank-api at ``/console/``.

The pages are plain HTML, CSS and JavaScript modules under ``static/`` (shipped in the
tank-core wheel, no build step). They are a client of the public Images API v2 like any
other: every request goes through ``fetch``/``XMLHttpRequest`` to ``/v2/...`` with
whatever identity the front proxy adds, so a console user sees exactly what the API shows
that user. The one thing the console asks tank-api besides v2 is ``/console/whoami``:
the identity the API took from this request's headers (never one the page invents).
"""

from __future__ import annotations

import attrs

from tank.console.assets import STATIC_DIR, console_match, serve_asset, whoami

__all__ = ["STATIC_DIR", "ConsoleConfig", "console_match", "serve_asset", "whoami"]


@attrs.frozen(kw_only=True)
class ConsoleConfig:
    """The ``[console]`` section."""

    #: Serve the console at ``/console/`` (off: 404 there, as for any unknown path).
    enabled: bool = True
