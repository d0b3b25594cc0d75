"""Which filter a filtered listing on SQLite starts from.

SQLite keeps no statistics unless ANALYZE runs, and even then (built without STAT4, as
Debian and CPython build it) only an average count per value: it cannot tell that
``status=killed`` matches a sixth of 100,000 images while ``status=saving`` matches
none. Left alone it starts every filtered listing from the filter's index and sorts
every match (60-100 ms for 15,000 of them), even where walking the sort order would fill
the page after a few hundred rows; ANALYZE turns that around and walks all 100,000 rows
for a value that matches nothing.

So a filtered listing first counts each filter's matches in the filter's own index, up
to a cap: ``sqrt(limit * images)``, where starting from the filter (sorting at most the
cap's rows) and walking the sort order (about ``limit * images / matches`` rows) cost
the same. The rarest filter under the cap leads (``unlikely()``, and its subquery as a
list); every other one is checked row by row (``likely()``, its subquery correlated).
With none under the cap the sort order is walked. A count reads at most the cap's index
entries (index-only, ~0.1 ms for 100,000 images). PostgreSQL keeps real statistics and
is left to its own planner.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import sqlalchemy as sa

from tank_registry_sql.queries import column_filter, property_match, tag_match
from tank_registry_sql.schema import ImageRow, PropertyRow, TagRow

#: Image columns whose equality filters are counted (each has an index of its own);
#: ``id``, ``name`` and the checksums are selective enough to lead whatever they match.
COUNTED_COLUMNS = ("status", "disk_format", "container_format", "owner")
#: The fewest rows a leading filter may match: below it a sort costs nothing.
MIN_CAP = 200


@attrs.frozen
class Plan:
    """Which counted filter leads (``None``: none, walk the sort order).

    Filters are named as in :class:`tank.model.ListQuery`, with ``tags:<tag>`` for one
    tag of the ``tags`` filter."""

    lead: str | None

    def wrap(self, name: str, condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        """``condition`` with SQLite's hint of how often it holds."""
        hint = sa.func.unlikely if name == self.lead else sa.func.likely
        return hint(condition)

    def leads(self, name: str) -> bool:
        return name == self.lead


def plan(conn: sa.Connection, filters: Mapping[str, Any], limit: int) -> Plan | None:
    """The plan of a listing with ``filters`` (None when no filter is counted)."""
    counted = dict(_countable(filters))
    if not counted:
        return None
    images = conn.execute(
        sa.select(sa.func.max(sa.literal_column("rowid"))).select_from(ImageRow)
    ).scalar()
    cap = max(MIN_CAP, math.isqrt(max(1, limit) * int(images or 0)) + 1)
    lead, fewest = None, cap
    for name, matching in counted.items():
        found = conn.execute(
            sa.select(sa.func.count()).select_from(matching.limit(fewest).subquery())
        ).scalar_one()
        if found < fewest:
            lead, fewest = name, found
    return Plan(lead)


def _countable(filters: Mapping[str, Any]) -> Iterator[tuple[str, sa.Select[Any]]]:
    """``(name, select of one row per match)`` for each counted filter: the same
    conditions the listing uses (:mod:`.queries`), on the filter's own table."""
    table = ImageRow.__table__
    for key in COUNTED_COLUMNS:
        if key in filters:
            match = column_filter(table.c[key], filters[key])
            yield key, sa.select(sa.literal(1)).select_from(ImageRow).where(match)
    for tag in filters.get("tags", ()):
        yield f"tags:{tag}", sa.select(sa.literal(1)).select_from(TagRow).where(*tag_match(tag))
    for key, value in filters.items():
        if key.startswith("property-"):
            rows = sa.select(sa.literal(1)).select_from(PropertyRow)
            yield key, rows.where(*property_match(key, value))
