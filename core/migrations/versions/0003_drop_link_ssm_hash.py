"""links no longer carry an SSM-side hash: the agreed record (``base``) serves both sides

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("link") as batch:
        batch.drop_column("ssm_hash")


def downgrade() -> None:
    with op.batch_alter_table("link") as batch:
        batch.add_column(sa.Column("ssm_hash", sa.String(length=64), nullable=True))
