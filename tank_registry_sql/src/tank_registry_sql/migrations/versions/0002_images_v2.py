"""Images API v2: visibility, os_hidden, tags, multihash, virtual_size, several
locations per image, member status.

``is_public`` becomes ``visibility`` (true → public, false → shared, which keeps v1's
rule that members see a non-public image); ``sha256`` becomes the multihash
(``os_hash_algo`` sha256); ``store`` + ``location`` become a JSON list of locations
(a location without a store was registered by URL: Tank does not own its data).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.add_column("images", sa.Column("virtual_size", sa.BigInteger))
    op.add_column("images", sa.Column("os_hash_algo", sa.String(64)))
    op.add_column("images", sa.Column("os_hash_value", sa.String(256)))
    # NOT NULL columns need a default to be added to existing rows (on SQLite too,
    # which cannot change a column's nullability afterwards); every write sets them.
    for table, column in (
        ("images", sa.Column("visibility", sa.String(20), server_default="shared")),
        ("images", sa.Column("os_hidden", sa.Boolean, server_default=sa.false())),
        ("images", sa.Column("locations", sa.Text, server_default="[]")),
        ("images", sa.Column("tags", sa.Text, server_default="[]")),
        ("image_members", sa.Column("status", sa.String(20), server_default="pending")),
    ):
        column.nullable = False
        op.add_column(table, column)

    op.execute(
        "UPDATE images SET visibility = CASE WHEN is_public THEN 'public' ELSE 'shared' END, "
        "os_hash_value = sha256, "
        "os_hash_algo = CASE WHEN sha256 IS NULL THEN NULL ELSE 'sha256' END"
    )
    images = sa.table(
        "images",
        sa.column("id", sa.String),
        sa.column("store", sa.String),
        sa.column("location", sa.Text),
        sa.column("locations", sa.Text),
    )
    rows = bind.execute(
        sa.select(images.c.id, images.c.store, images.c.location).where(
            images.c.location.is_not(None)
        )
    ).all()
    if rows:
        bind.execute(
            images.update().where(images.c.id == sa.bindparam("image_id")),
            [
                {
                    "image_id": row.id,
                    "locations": json.dumps(
                        [
                            {
                                "url": row.location,
                                "store": row.store,
                                "owned": row.store is not None,
                                "metadata": {},
                            }
                        ]
                    ),
                }
                for row in rows
            ],
        )

    # SQLite (3.35+) and PostgreSQL both drop unindexed columns in place; the one index
    # on a dropped column goes first. (Alembic's batch mode would rebuild the table and
    # lose the partial indexes' WHERE clauses on SQLite.)
    op.drop_index("ix_images_is_public", "images")
    for name in ("is_public", "sha256", "store", "location"):
        op.execute(f"ALTER TABLE images DROP COLUMN {name}")
    for flag in ("os_hidden",):
        where = sa.text(flag if postgres else f"{flag} = 1")
        op.create_index(
            f"ix_images_{flag}", "images", [flag], sqlite_where=where, postgresql_where=where
        )
    where = sa.text("visibility IN ('public', 'community')")
    op.create_index(
        "ix_images_visibility",
        "images",
        ["visibility"],
        sqlite_where=where,
        postgresql_where=where,
    )

    op.create_table(
        "image_tags",
        sa.Column(
            "image_id",
            sa.String(36),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(255), primary_key=True),
    )
    op.create_index("ix_image_tags_tag", "image_tags", ["tag"])


def downgrade() -> None:
    raise NotImplementedError("Tank's registry migrations go forward only")
