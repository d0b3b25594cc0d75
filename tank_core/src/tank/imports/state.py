"""Import state, kept in the image's reserved ``os_glance_*`` properties as Glance keeps it.

Clients (openstacksdk, glanceclient, Horizon) read these to follow an import:

* ``os_glance_import_task``: the id of the import in flight; its presence is the lock
  that keeps a second import of the image out;
* ``os_glance_importing_to_stores``: the stores still to be written, comma-separated;
* ``os_glance_failed_import``: the stores an import failed to write;
* ``os_glance_stage_host``: set while data waits in a staging area (hidden in v2 views).

Tank adds ``os_glance_import_heartbeat``: when the tank-api running the import last
said it is alive (seconds since the epoch). A tank-api that dies mid-import stops
refreshing it; once it is older than ``[import] lease_seconds`` any tank-api sharing
the registry may fail the import and clean up (:mod:`tank.imports.recovery`). A
wall-clock time, not a monotonic one, because another process on another host reads it.

Only Tank writes these (users get 403 for ``os_glance_*``), always through the registry
with an admin context, never through :meth:`ImageService.update` (the user path).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

TASK = "os_glance_import_task"
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"
STAGE_HOST = "os_glance_stage_host"
HEARTBEAT = "os_glance_import_heartbeat"
#: Properties an import in flight holds and removes when it ends.
IN_FLIGHT = (TASK, IMPORTING, HEARTBEAT)


def store_list(value: str | None) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (Glance's format for store lists)."""
    return [s for s in (value or "").split(",") if s]


def join_stores(stores: Iterable[str]) -> str:
    return ",".join(dict.fromkeys(stores))


def heartbeat_now() -> str:
    return f"{time.time():.3f}"


def lease_expired(properties: Mapping[str, str], lease_seconds: float) -> bool:
    """Whether the import recorded in ``properties`` has not shown a sign of life for
    ``lease_seconds`` (an unreadable or missing heartbeat counts as expired)."""
    try:
        beat = float(properties.get(HEARTBEAT, ""))
    except ValueError:
        return True
    return time.time() - beat > lease_seconds


def without(properties: Mapping[str, str], *keys: str) -> dict[str, str]:
    return {k: v for k, v in properties.items() if k not in keys}
