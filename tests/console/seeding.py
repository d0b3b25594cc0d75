"""Many images at once, straight into a tank-api's SQLite registry (executemany): the
console's scale tests and ``bench/console.py`` need 10,000-100,000 images, which would
take far too long through the API one by one. Only the registry rows are written (the
images are ``active`` with a made-up location that is never read)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import sqlalchemy as sa

from tank_registry_sql.registry import SqlRegistry
from tank_registry_sql.schema import ImageRow, TagRow

STATUSES = ("active", "active", "active", "queued", "deactivated", "killed")
FORMATS = ("qcow2", "raw", "vmdk", "iso")


def seed(data_dir: Path, count: int, *, owners: int = 20, prefix: str = "seeded") -> None:
    """Add ``count`` images to the registry of the tank-api whose data dir is
    ``data_dir`` (its schema must exist: the server answered a request). Image ``i`` is
    named ``{prefix}-{i:06d}``, owned by ``project-{i % owners}``, tagged ``{prefix}``
    and ``every-7`` when ``i % 7 == 0``."""
    registry = SqlRegistry(SqlRegistry.Config(), data_dir=data_dir)
    engine = sa.create_engine(registry.url)
    base = dt.datetime(2024, 1, 1)
    batch = 10_000
    try:
        with engine.begin() as conn:
            for first in range(0, count, batch):
                rows, tags = [], []
                for i in range(first, min(first + batch, count)):
                    image_id = str(uuid.uuid4())
                    status = STATUSES[i % len(STATUSES)]
                    stamp = base + dt.timedelta(seconds=i)
                    image_tags = [prefix] + (["every-7"] if i % 7 == 0 else [])
                    has_data = status in ("active", "deactivated")
                    rows.append(
                        {
                            "id": image_id,
                            "name": f"{prefix}-{i:06d}",
                            "disk_format": FORMATS[i % len(FORMATS)],
                            "container_format": "bare",
                            "size": (1 << 20) * (1 + i % 4096) if has_data else None,
                            "virtual_size": None,
                            "checksum": None,
                            "os_hash_algo": None,
                            "os_hash_value": None,
                            "status": status,
                            "visibility": "private" if i % 3 else "public",
                            "os_hidden": False,
                            "owner": f"project-{i % owners}",
                            "min_ram": 0,
                            "min_disk": 0,
                            "protected": False,
                            "locations": json.dumps(
                                [
                                    {
                                        "url": f"file:///nonexistent/{image_id}",
                                        "store": "file",
                                        "owned": True,
                                        "metadata": {},
                                    }
                                ]
                                if has_data
                                else []
                            ),
                            "tags": json.dumps(image_tags),
                            "created_at": stamp,
                            "updated_at": stamp,
                            "deleted_at": None,
                            "deleted": False,
                        }
                    )
                    tags += [{"image_id": image_id, "tag": tag} for tag in image_tags]
                conn.execute(sa.insert(ImageRow), rows)
                conn.execute(sa.insert(TagRow), tags)
    finally:
        engine.dispose()
        registry.close()
