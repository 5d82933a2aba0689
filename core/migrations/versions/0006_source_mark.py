"""a Sage -> SSM pass remembers what its tables looked like when it ended (latest
modification time of each watched table, row count): the next pass with nothing changed
reads nothing

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dossier_entity") as batch:
        batch.add_column(sa.Column("source_mark", sa.String(400), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dossier_entity") as batch:
        batch.drop_column("source_mark")
