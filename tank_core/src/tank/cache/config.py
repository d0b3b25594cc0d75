"""``[cache]``: the image cache's keys."""

from __future__ import annotations

from pathlib import Path

import attrs

from tank.validators import between, positive

#: Glance's image_cache_max_size (10 GiB).
DEFAULT_MAX_SIZE = 10 << 30
#: Glance's image_cache_stall_time (one day).
DEFAULT_STALL_TIME = 86400.0


@attrs.frozen(kw_only=True)
class CacheConfig:
    """``[cache]``: a local copy of images kept in remote stores."""

    #: Keep a local copy of downloaded images (off by default).
    enabled: bool = False
    #: Where the copies are kept; default ``<data_dir>/cache``.
    dir: Path | None = None
    #: Bytes the cached images may take; the least recently used go first beyond it,
    #: and an image larger than this is never cached.
    max_size: int = attrs.field(default=DEFAULT_MAX_SIZE, validator=positive)
    #: Seconds a copy being written may go without new data before it counts as
    #: abandoned (its filler died) and is removed.
    stall_time: float = attrs.field(default=DEFAULT_STALL_TIME, validator=between(1.0, 31536000))
    #: Names of the stores whose images are cached; default every store that is not a
    #: local ``file`` store.
    stores: tuple[str, ...] | None = None
    #: Seconds between two looks at the prefetch queue by tank-api (a queued image
    #: is also fetched at once by the tank-api that queued it).
    prefetch_interval: float = attrs.field(default=300.0, validator=between(0.01, 86400))
