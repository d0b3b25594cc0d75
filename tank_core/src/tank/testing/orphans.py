"""Helpers for orphan tests of a store (:mod:`tank.scrubber.orphans`): a real registry
(the SQL one on SQLite, from the installed plugins) to record images in, and a scan
that returns what it found by outcome."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from pathlib import Path

from tank.config import load
from tank.model import Context, Image, Location, Status
from tank.plugins import make_plugin_manager
from tank.registry import Registry
from tank.scrubber.orphans import Finding, Outcome, Tally, scan
from tank.service import open_registry
from tank.store import Backend

ADMIN = Context.admin()


def sqlite_registry(data_dir: Path) -> Registry:
    """The SQL registry on an SQLite file in ``data_dir``, its schema up to date."""
    registry = open_registry(load(data_dir=data_dir, environ={}), make_plugin_manager())
    registry.upgrade()
    return registry


def new_id() -> str:
    return str(uuid.uuid4())


def record(
    registry: Registry,
    locations: Iterable[str] = (),
    *,
    image_id: str | None = None,
    status: Status = Status.ACTIVE,
    store: str | None = None,
) -> Image:
    """An image holding ``locations``, brought to ``status`` (``deleted`` and
    ``pending_delete`` through ``active``, keeping its locations)."""
    final = status
    if status in (Status.DELETED, Status.PENDING_DELETE):
        status = Status.ACTIVE
    image = registry.create(
        Image(
            id=image_id or new_id(),
            status=status,
            locations=[Location(url=url, store=store) for url in locations],
        )
    )
    if final is Status.DELETED:
        return registry.delete(image.id, context=ADMIN)
    if final is Status.PENDING_DELETE:
        return registry.update(image.id, {"status": final}, context=ADMIN)
    return image


def findings(
    registry: Registry,
    store: Backend,
    *,
    grace: float = 0.0,
    delete: bool = False,
    now: dt.datetime | None = None,
) -> tuple[dict[Outcome, set[str]], Tally]:
    """What a scan of ``store`` found: item names (or location when set) by outcome."""
    tally = Tally()
    found: dict[Outcome, set[str]] = {}
    for finding in scan(registry, [store], grace=grace, delete=delete, tally=tally, now=now):
        found.setdefault(finding.outcome, set()).add(_key(finding))
    return found, tally


def _key(finding: Finding) -> str:
    if finding.item is None:
        return finding.reason
    return finding.item.location or finding.item.name
