"""The cache in the service: built from ``[cache]``, emptied of images that go away."""

from __future__ import annotations

from typing import TYPE_CHECKING

import tank
from tank import errors
from tank.cache.entries import ImageCache
from tank.model import Context, Image, Status

if TYPE_CHECKING:
    from tank.config import TankConfig
    from tank.stores import StoreSet


def cache_from_config(config: TankConfig, stores: StoreSet) -> tuple[ImageCache, list[str]]:
    """The cache ``[cache]`` describes, and the names of the stores it caches."""
    settings = config.cache
    assert settings.dir is not None  # tank.config.load resolves it
    known = {backend.name for backend in stores}
    if settings.stores is None:
        names = sorted(b.name for b in stores if b.type_name != "file")
    else:
        unknown = sorted(set(settings.stores) - known)
        if unknown:
            raise errors.ConfigError(
                f"{config.where('cache', 'stores')}: no store named {', '.join(unknown)} "
                f"(configured stores: {', '.join(sorted(known))})"
            )
        names = list(settings.stores)
    try:
        cache = ImageCache(settings.dir, max_size=settings.max_size, stall_time=settings.stall_time)
    except OSError as exc:
        raise errors.ConfigError(
            f"{config.where('cache', 'dir')}: cannot use {settings.dir}: {exc.strerror}"
        ) from None
    return cache, names


class CacheEviction:
    """Removes the copy of an image that is deleted or no longer active."""

    def __init__(self, cache: ImageCache) -> None:
        self.cache = cache

    @tank.hookimpl
    def tank_image_deleted(self, image: Image, context: Context) -> None:
        self.cache.evict(image.id)
        self.cache.dequeue(image.id)

    @tank.hookimpl
    def tank_image_updated(self, image: Image, previous: Image, context: Context) -> None:
        if image.status is not Status.ACTIVE or image.checksum != previous.checksum:
            self.cache.evict(image.id)
