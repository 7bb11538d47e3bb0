"""write path (issue 16): composite foreign keys that check a request's block and batch, and a
ledger entry's account and creditor, in one probe each; the queue and retry indexes hold only
the rows they are read for.

* debit_requests (block_id, batch_id) -> payment_blocks (id, batch_id) replaces the two single
  foreign keys, with a CHECK that both are set or neither (a foreign key with a NULL column is
  not checked). A request's block must belong to its batch.
* ledger_entries (creditor_id, debtor_account_id) -> debtor_accounts (creditor_id, id) replaces
  the two single foreign keys. An entry's creditor must be its account's.
* ix_debit_requests_queue holds pending requests only, ix_debit_requests_retry_of_id retries
  only: on PostgreSQL every other row version the run writes gets no entry in them.
  uq_ledger_entries_creditor_idempotency becomes a unique index of the keyed entries only
  (payments and returns carry no key; NULLs never conflicted).

SQLite rebuilds debit_requests and ledger_entries (batch mode) with foreign keys off, which
``migrate.upgrade`` arranges, and checks every foreign key before committing.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'pending'")
_RETRY = sa.text("retry_of_id IS NOT NULL")
_KEYED = sa.text("idempotency_key IS NOT NULL")


def upgrade() -> None:
    op.create_index("uq_payment_blocks_id_batch", "payment_blocks", ["id", "batch_id"], unique=True)
    op.create_index("uq_debtor_accounts_creditor_id", "debtor_accounts", ["creditor_id", "id"], unique=True)
    with op.batch_alter_table("debit_requests") as batch:
        batch.drop_constraint("fk_debit_requests_batch_id_batches", type_="foreignkey")
        batch.drop_constraint("fk_debit_requests_block_id_payment_blocks", type_="foreignkey")
        batch.create_foreign_key(
            "fk_debit_requests_block_batch_payment_blocks", "payment_blocks", ["block_id", "batch_id"], ["id", "batch_id"]
        )
        batch.create_check_constraint(op.f("ck_debit_requests_block_with_batch"), "(block_id IS NULL) = (batch_id IS NULL)")
        batch.drop_index("ix_debit_requests_queue")
        batch.drop_index("ix_debit_requests_retry_of_id")
    op.create_index(
        "ix_debit_requests_queue", "debit_requests", ["creditor_id", "mandate_id", "id"],
        sqlite_where=_PENDING, postgresql_where=_PENDING,
    )
    op.create_index(
        "ix_debit_requests_retry_of_id", "debit_requests", ["retry_of_id"],
        sqlite_where=_RETRY, postgresql_where=_RETRY,
    )
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_constraint("fk_ledger_entries_creditor_id_creditors", type_="foreignkey")
        batch.drop_constraint("fk_ledger_entries_debtor_account_id_debtor_accounts", type_="foreignkey")
        batch.create_foreign_key(
            "fk_ledger_entries_account_creditor_debtor_accounts", "debtor_accounts",
            ["creditor_id", "debtor_account_id"], ["creditor_id", "id"],
        )
        batch.drop_constraint("uq_ledger_entries_creditor_idempotency", type_="unique")
    op.create_index(
        "uq_ledger_entries_creditor_idempotency", "ledger_entries", ["creditor_id", "idempotency_key"], unique=True,
        sqlite_where=_KEYED, postgresql_where=_KEYED,
    )


def downgrade() -> None:
    op.drop_index("uq_ledger_entries_creditor_idempotency", "ledger_entries")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.create_unique_constraint("uq_ledger_entries_creditor_idempotency", ["creditor_id", "idempotency_key"])
        batch.drop_constraint("fk_ledger_entries_account_creditor_debtor_accounts", type_="foreignkey")
        batch.create_foreign_key("fk_ledger_entries_creditor_id_creditors", "creditors", ["creditor_id"], ["id"])
        batch.create_foreign_key(
            "fk_ledger_entries_debtor_account_id_debtor_accounts", "debtor_accounts", ["debtor_account_id"], ["id"]
        )
    op.drop_index("ix_debit_requests_retry_of_id", "debit_requests")
    op.drop_index("ix_debit_requests_queue", "debit_requests")
    with op.batch_alter_table("debit_requests") as batch:
        batch.drop_constraint(op.f("ck_debit_requests_block_with_batch"), type_="check")
        batch.drop_constraint("fk_debit_requests_block_batch_payment_blocks", type_="foreignkey")
        batch.create_foreign_key("fk_debit_requests_batch_id_batches", "batches", ["batch_id"], ["id"])
        batch.create_foreign_key("fk_debit_requests_block_id_payment_blocks", "payment_blocks", ["block_id"], ["id"])
        batch.create_index("ix_debit_requests_queue", ["creditor_id", "status", "mandate_id", "id"])
        batch.create_index("ix_debit_requests_retry_of_id", ["retry_of_id"])
    op.drop_index("uq_debtor_accounts_creditor_id", "debtor_accounts")
    op.drop_index("uq_payment_blocks_id_batch", "payment_blocks")
