"""Fetching URLs that users give Tank, guarded against server-side request forgery.

:mod:`tank.net.hosts` decides which hosts may be reached (standard library only);
:mod:`tank.net.transport` builds the requests session that enforces it on every
connection. The http store and web-download imports both use them, so the guard exists
once. Nothing here is imported by this package itself: importing :mod:`tank.net.hosts`
must not import requests.
"""
