"""the records' dossiers and sync states shown in Sales Management: a key/value table for
what the connector found out (how the tenant shows an extra field's value) and, per link,
what its status fields show

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "setting",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "status_shown",
        sa.Column(
            "link_id",
            sa.Integer,
            sa.ForeignKey("link.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("context", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("status_shown")
    op.drop_table("setting")
