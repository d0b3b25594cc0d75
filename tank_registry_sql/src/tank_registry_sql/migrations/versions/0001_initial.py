"""Initial schema: images, image_properties, image_members and their indexes.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOT_NULL_SORT_KEYS = ("status", "created_at", "updated_at")
NULLABLE_SORT_KEYS = ("name", "disk_format", "container_format", "size")


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("disk_format", sa.String(20)),
        sa.Column("container_format", sa.String(20)),
        sa.Column("size", sa.BigInteger),
        sa.Column("checksum", sa.String(32)),
        sa.Column("sha256", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("is_public", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("min_ram", sa.BigInteger, nullable=False),
        sa.Column("min_disk", sa.BigInteger, nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("store", sa.String(255)),
        sa.Column("location", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("deleted_at", sa.DateTime),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for key in NOT_NULL_SORT_KEYS:
        op.create_index(f"ix_images_{key}_id", "images", [key, "id"])
    for key in NULLABLE_SORT_KEYS:
        # PostgreSQL sorts NULLs last by default; make them first as on SQLite, where
        # an index cannot say NULLS FIRST (and needs not).
        column = sa.text(f"{key} NULLS FIRST") if postgres else key
        op.create_index(f"ix_images_{key}_id", "images", [column, "id"])
    op.create_index("ix_images_owner", "images", ["owner"])
    for flag in ("is_public", "deleted"):
        # Partial: only true rows. A full boolean index lures SQLite's planner (no
        # statistics) into using it for `deleted = 0` and sorting the whole table.
        where = sa.text(flag if postgres else f"{flag} = 1")
        op.create_index(
            f"ix_images_{flag}", "images", [flag], sqlite_where=where, postgresql_where=where
        )

    op.create_table(
        "image_properties",
        sa.Column(
            "image_id",
            sa.String(36),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_image_properties_name_value",
        "image_properties",
        ["name", sa.text("substr(value, 1, 200)")],
    )

    op.create_table(
        "image_members",
        sa.Column(
            "image_id",
            sa.String(36),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("member", sa.String(255), primary_key=True),
        sa.Column("can_share", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_image_members_member", "image_members", ["member"])


def downgrade() -> None:
    op.drop_table("image_members")
    op.drop_table("image_properties")
    op.drop_table("images")
