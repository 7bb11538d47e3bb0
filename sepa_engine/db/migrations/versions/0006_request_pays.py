"""request pays: what a debit request pays (invoices, the balance, or on account) (issue 12)

Revision ID: 0006
Revises: 0008 (the highest revision on main when this landed)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: requests stored before the account gate said nothing of what they paid.
    with op.batch_alter_table("debit_requests") as batch:
        batch.add_column(sa.Column("pays", sa.String(10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("debit_requests") as batch:
        batch.drop_column("pays")
