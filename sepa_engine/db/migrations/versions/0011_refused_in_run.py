"""refused requests of a run (issue 16): a partial index of the refused requests, by run and
creditor, in place of the index of every request by run.

Every file's review summary lists the requests its run refused for its creditor, with their
count and their reason codes (review.write_summary). Those three queries searched the run's
index by run and creditor and then read every request of the run to test its status: at
1,000,000 requests in ten files, ten reads of a million rows each, about 2 s a file (the
files' summaries took 30 s of a 228 s run, measured at load 5). Refusals are few, so their
index is small, and a run's other row versions (assigned, submitted) get no entry in it.

ix_debit_requests_run (run, creditor, collection date, sequence type, id) goes: those three
queries were its last readers (planning reads the run's decisions from their own table since
the run writes a request once for assignment and planning), and on PostgreSQL each row version
the run writes (assigned, then submitted) put a five-column entry in it. No run is ever
deleted, so the foreign key to runs needs no index on this side.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_REFUSED = sa.text("status = 'refused'")


def upgrade() -> None:
    op.drop_index("ix_debit_requests_run", "debit_requests")
    op.create_index(
        "ix_debit_requests_refused", "debit_requests", ["run_id", "creditor_id", "id"],
        sqlite_where=_REFUSED, postgresql_where=_REFUSED,
    )


def downgrade() -> None:
    op.drop_index("ix_debit_requests_refused", "debit_requests")
    op.create_index("ix_debit_requests_run", "debit_requests", ["run_id", "creditor_id", "collection_date", "sequence_type", "id"])
