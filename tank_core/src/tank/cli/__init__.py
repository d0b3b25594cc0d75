"""Tank's command-line programs, one click group per console script.

``tank`` (client verbs, ``tank stores``), ``tank-api`` (the HTTP server) and
``tank-manage`` (database upgrades and other operator tasks).
"""
