"""retry pre-notifications: a re-presentation is pre-notified like a scheduled debit, without
a schedule slot or period, and each notice says which kind it is (issue 14 item 3). The MD06
hold (mandate status 'held') needs no change: the status column takes it as it is.

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
    with op.batch_alter_table("prenotifications", schema=None) as batch_op:
        batch_op.alter_column("slot_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("period", existing_type=sa.String(length=7), nullable=True)
        batch_op.add_column(sa.Column("kind", sa.String(length=8), server_default="schedule", nullable=False))


def downgrade() -> None:
    op.execute("DELETE FROM prenotifications WHERE kind != 'schedule'")
    with op.batch_alter_table("prenotifications", schema=None) as batch_op:
        batch_op.drop_column("kind")
        batch_op.alter_column("period", existing_type=sa.String(length=7), nullable=False)
        batch_op.alter_column("slot_id", existing_type=sa.Integer(), nullable=False)
