"""Tank's filesystem store: images as files in a local data directory (``file://``)."""

from tank_store_fs.backend import FilesystemBackend

__all__ = ["FilesystemBackend"]
