"""Glance's cache API (``/v2/cache``, Glance 2024.1+): list, queue and remove cached
images. Admins only; 404 when the cache is off ("not supported at this site")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tank import errors
from tank.api.paths import image_id_of
from tank.cache import ImageCache
from tank.cache.prefetch import entry_is_valid
from tank.model import Context, Status
from tank.web import Request, Response

if TYPE_CHECKING:
    from tank.api.app import Api

CLEAR_TARGET = "x-image-cache-clear-target"


def _cache(api: Api, ctx: Context) -> ImageCache:
    if not ctx.is_admin:
        raise errors.Forbidden("managing the image cache is for admins only")
    cache = api.service.cache
    if cache is None:
        raise errors.NotFound("caching via API is not supported at this site ([cache] is off)")
    return cache


def state(api: Api, req: Request, ctx: Context) -> Response:
    """``GET /v2/cache``: the cached images (Glance's fields) and the queued ids."""
    cache = _cache(api, ctx)
    return Response.json(
        {
            "cached_images": [entry.as_json() for entry in cache.cached()],
            "queued_images": cache.queued(),
        }
    )


def clear(api: Api, req: Request, ctx: Context) -> Response:
    """``DELETE /v2/cache``: empty the cache, the queue or both
    (``x-image-cache-clear-target``: ``cache``, ``queue``, ``both`` or empty)."""
    cache = _cache(api, ctx)
    target = req.headers.get(CLEAR_TARGET, "").strip().lower()
    if target not in ("", "both", "cache", "queue"):
        raise errors.Invalid(
            f"{CLEAR_TARGET} must be 'cache', 'queue', 'both' or empty, not {target[:40]!r}"
        )
    if target in ("", "both", "cache"):
        cache.clear()
    if target in ("", "both", "queue"):
        cache.clear_queue()
    return Response.empty(204)


def queue(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    """``PUT /v2/cache/{image_id}``: queue an active image for prefetching (202)."""
    image = api.service.get(image_id_of(image_id), context=ctx)
    if image.deleted:
        raise errors.NotFound(f"image {image.id} is deleted")
    cache = _cache(api, ctx)
    if image.status is not Status.ACTIVE:
        raise errors.Invalid(
            f"only active images can be queued for caching (image {image.id} is {image.status})"
        )
    if not api.service.cacheable(image):
        raise errors.Invalid(f"image {image.id} is in no store the cache serves")
    cache.queue(image.id)
    if api.service.prefetcher is not None:
        api.service.prefetcher.wake()
    return Response.empty(202)


def remove(api: Api, req: Request, ctx: Context, image_id: str) -> Response:
    """``DELETE /v2/cache/{image_id}``: drop an image from the cache and the queue;
    404 if the image neither exists nor is cached or queued."""
    image_id = image_id_of(image_id)
    try:
        api.service.get(image_id, context=ctx)
        exists = True
    except errors.NotFound:
        exists = False
    cache = _cache(api, ctx)
    if not exists and not (cache.is_cached(image_id) or image_id in cache.queued()):
        raise errors.NotFound(f"no image with id {image_id!r}")
    cache.evict(image_id)
    cache.dequeue(image_id)
    return Response.empty(204)


def clean(api: Api, req: Request, ctx: Context) -> Response:
    """``POST /v2/cache/clean``: remove stalled fills and copies of images that are no
    longer active."""
    cache = _cache(api, ctx)
    cache.clean(lambda image_id, size: entry_is_valid(api.service, image_id, size))
    return Response.empty(204)


def prune(api: Api, req: Request, ctx: Context) -> Response:
    """``POST /v2/cache/prune``: remove least recently used copies beyond ``max_size``."""
    files, size = _cache(api, ctx).prune()
    return Response.json({"total_files_pruned": files, "total_bytes_pruned": size})
