"""batch held_at: when a file was put in outbox/pending/ for approval (issue 17)

Revision ID: 0009
Revises: 0006 (the head on main when this landed)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: only held files have it, and files held before this migration never said when
    # (their review keeps showing the time they were written).
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("held_at")
