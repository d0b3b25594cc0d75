"""Tank's read-only store for images on web servers (``http://`` and ``https://``)."""

from tank_store_http.backend import HttpBackend

__all__ = ["HttpBackend"]
