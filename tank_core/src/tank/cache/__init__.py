"""The image cache: a local copy of images kept in remote stores (``[cache]``).

A full download of an image that is not cached streams from its store to the client
and into ``<dir>/incomplete/<id>`` at once; the copy becomes ``<dir>/entries/<id>``
only after its size and checksum matched the image record. Later downloads are served
from that file (``sendfile``, Range). See :mod:`tank.cache.entries`.
"""

from tank.cache.config import CacheConfig
from tank.cache.entries import CachedImage, ImageCache

__all__ = ["CacheConfig", "CachedImage", "ImageCache"]
