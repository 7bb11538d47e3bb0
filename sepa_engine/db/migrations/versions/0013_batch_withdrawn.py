"""batch withdrawn_by, withdrawn_at: who stopped a held file at review, and when

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: only a withdrawn file has them (its reason is in ``failure``, as a superseded
    # file's is).
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("withdrawn_by", sa.String(70), nullable=True))
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("withdrawn_at")
        batch.drop_column("withdrawn_by")
