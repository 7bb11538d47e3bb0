"""bank profiles and ultimate parties: each creditor names its bank's profile; ultimate
creditor per creditor or per request, ultimate debtor per mandate (issue 14)

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("creditors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bank_profile", sa.String(length=8), server_default="epc", nullable=False))
        batch_op.add_column(sa.Column("ultimate_creditor_name", sa.String(length=70), nullable=True))
        batch_op.add_column(sa.Column("ultimate_creditor_id", sa.String(length=35), nullable=True))
    with op.batch_alter_table("debit_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ultimate_creditor_name", sa.String(length=70), nullable=True))
        batch_op.add_column(sa.Column("ultimate_creditor_id", sa.String(length=35), nullable=True))
    with op.batch_alter_table("mandates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ultimate_debtor_name", sa.String(length=70), nullable=True))
        batch_op.add_column(sa.Column("ultimate_debtor_id", sa.String(length=35), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mandates", schema=None) as batch_op:
        batch_op.drop_column("ultimate_debtor_id")
        batch_op.drop_column("ultimate_debtor_name")
    with op.batch_alter_table("debit_requests", schema=None) as batch_op:
        batch_op.drop_column("ultimate_creditor_id")
        batch_op.drop_column("ultimate_creditor_name")
    with op.batch_alter_table("creditors", schema=None) as batch_op:
        batch_op.drop_column("ultimate_creditor_id")
        batch_op.drop_column("ultimate_creditor_name")
        batch_op.drop_column("bank_profile")
