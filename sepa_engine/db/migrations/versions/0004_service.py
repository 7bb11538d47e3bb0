"""service: approval of files, job runs (issue 7), API tokens (issue 8)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("creditors") as batch:
        batch.add_column(sa.Column("requires_approval", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("approved_by", sa.String(70), nullable=True))
        batch.add_column(_ts("approved_at", nullable=True))
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(40), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("host", sa.String(100), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index(op.f("ix_job_runs_job"), "job_runs", ["job"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(70), nullable=False),
        sa.Column("access", sa.String(5), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "api_token_creditors",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("creditor_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"], name=op.f("fk_api_token_creditors_token_id_api_tokens")),
        sa.ForeignKeyConstraint(["creditor_id"], ["creditors.id"], name=op.f("fk_api_token_creditors_creditor_id_creditors")),
        sa.PrimaryKeyConstraint("token_id", "creditor_id", name=op.f("pk_api_token_creditors")),
    )
    op.create_index(op.f("ix_api_token_creditors_creditor_id"), "api_token_creditors", ["creditor_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_api_token_creditors_creditor_id"), table_name="api_token_creditors")
    op.drop_table("api_token_creditors")
    op.drop_table("api_tokens")
    op.drop_index(op.f("ix_job_runs_job"), table_name="job_runs")
    op.drop_table("job_runs")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
    with op.batch_alter_table("creditors") as batch:
        batch.drop_column("requires_approval")
