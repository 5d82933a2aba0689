"""what the service's change probes saw: per dossier and side, the probes made, when a
change was last seen, and how long each change took to reach the other side

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watch",
        sa.Column("dossier_id", sa.String(32), primary_key=True),
        sa.Column("side", sa.String(8), primary_key=True),
        sa.Column("probes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_probe_at", sa.DateTime(), nullable=True),
        sa.Column("last_change_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "latency",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dossier_id", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("synced_at", sa.DateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
    )
    op.create_index("ix_latency_dossier_synced", "latency", ["dossier_id", "synced_at"])


def downgrade() -> None:
    op.drop_index("ix_latency_dossier_synced", table_name="latency")
    op.drop_table("latency")
    op.drop_table("watch")
