"""reconciliation: return files, applied returns, exceptions, reason-code policies

Revision ID: 0003
Revises: 0002

``batches.status`` is widened to 20 characters for the bank lifecycle
("partly_rejected", 15) on PostgreSQL; SQLite does not enforce the length.
``models.Batch.status`` should say String(20) too (owned by another change).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "return_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("message", sa.String(40), nullable=True),
        sa.Column("message_id", sa.String(100), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("already_applied", sa.Integer(), nullable=False),
        sa.Column("exceptions", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        _ts("imported_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_files")),
        sa.UniqueConstraint("sha256", name=op.f("uq_return_files_sha256")),
    )
    op.create_table(
        "applied_returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("natural_key", sa.String(120), nullable=False),
        sa.Column("return_file_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("debit_request_id", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("end_to_end_id", sa.String(35), nullable=True),
        sa.Column("reason_code", sa.String(40), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("fees_cents", sa.BigInteger(), nullable=True),
        sa.Column("booking_date", sa.Date(), nullable=True),
        sa.Column("effects", sa.Text(), nullable=True),
        _ts("applied_at"),
        sa.ForeignKeyConstraint(["return_file_id"], ["return_files.id"], name=op.f("fk_applied_returns_return_file_id_return_files")),
        sa.ForeignKeyConstraint(["debit_request_id"], ["debit_requests.id"], name=op.f("fk_applied_returns_debit_request_id_debit_requests")),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_applied_returns_batch_id_batches")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applied_returns")),
        sa.UniqueConstraint("natural_key", name=op.f("uq_applied_returns_natural_key")),
    )
    op.create_index("ix_applied_returns_batch_kind", "applied_returns", ["batch_id", "kind"])
    op.create_index(op.f("ix_applied_returns_return_file_id"), "applied_returns", ["return_file_id"])
    op.create_index(op.f("ix_applied_returns_debit_request_id"), "applied_returns", ["debit_request_id"])
    op.create_table(
        "return_exceptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("return_file_id", sa.Integer(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("end_to_end_id", sa.String(35), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("resolution", sa.String(40), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(70), nullable=True),
        _ts("resolved_at", nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["return_file_id"], ["return_files.id"], name=op.f("fk_return_exceptions_return_file_id_return_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_exceptions")),
    )
    op.create_index("ix_return_exceptions_status", "return_exceptions", ["status", "id"])
    op.create_index(op.f("ix_return_exceptions_return_file_id"), "return_exceptions", ["return_file_id"])
    op.create_table(
        "reason_code_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creditor_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(4), nullable=False),
        sa.Column("mandate_effect", sa.String(8), nullable=True),
        sa.Column("max_retries", sa.Integer(), nullable=True),
        sa.Column("opens_dispute", sa.Boolean(), nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["creditor_id"], ["creditors.id"], name=op.f("fk_reason_code_policies_creditor_id_creditors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reason_code_policies")),
        sa.UniqueConstraint("creditor_id", "code", name="uq_reason_code_policies_creditor_code"),
    )
    # SQLite does not enforce VARCHAR lengths, and a batch rebuild of a table that others
    # reference is exactly what the earlier revisions avoid: widen only where it matters.
    if op.get_bind().dialect.name != "sqlite":
        with op.batch_alter_table("batches") as batch:
            batch.alter_column("status", existing_type=sa.String(12), type_=sa.String(20), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        with op.batch_alter_table("batches") as batch:
            batch.alter_column("status", existing_type=sa.String(20), type_=sa.String(12), existing_nullable=False)
    op.drop_table("reason_code_policies")
    op.drop_index("ix_return_exceptions_status", table_name="return_exceptions")
    op.drop_index(op.f("ix_return_exceptions_return_file_id"), table_name="return_exceptions")
    op.drop_table("return_exceptions")
    op.drop_index("ix_applied_returns_batch_kind", table_name="applied_returns")
    op.drop_index(op.f("ix_applied_returns_return_file_id"), table_name="applied_returns")
    op.drop_index(op.f("ix_applied_returns_debit_request_id"), table_name="applied_returns")
    op.drop_table("applied_returns")
    op.drop_table("return_files")
