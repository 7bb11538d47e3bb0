"""request and mandate updates without index entries on PostgreSQL (issue 16): the queue and
refused indexes are keyed on a generated column that only changes when a request enters or
leaves them, and debit_requests and mandates pages keep room for the next version of their rows.

PostgreSQL writes a new version of a row on every update. It can keep that version on the
same page and add no index entry (a heap-only tuple, "HOT") only when no column that any
index reads changes value, the predicates of partial indexes included, and the page has
room. The queue and refused indexes had ``status = ...`` predicates, so every status change
of a request (assigned -> submitted when its file is published, submitted -> settled or
returned when the bank answers) added an entry to each of the table's six other indexes,
two of them unique and checked. Their predicates now read ``indexed_status``: the status
when it is pending or refused, NULL otherwise, computed by the database (STORED on
PostgreSQL, VIRTUAL on SQLite); moving between two other statuses leaves it NULL.

``fillfactor = 50`` (PostgreSQL only) leaves half of each page of new rows free for the
next version: the submitted version of an assigned request, a returned version of a
submitted one, and a mandate's new history at every file's hand-over (no index reads those
columns either; the run updates every mandate of the file in one transaction, so a page needs
room for a new version of each of its rows). It applies to pages filled from now on; rows
already stored keep their pages.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Both copied from the models as they stood at this revision: a migration does
# not follow later changes of the model.
_INDEXED_STATUS = "CASE WHEN status IN ('pending', 'refused') THEN status END"
_FILLFACTOR = 50


def upgrade() -> None:
    # Stored on PostgreSQL, where only a stored generated column can be indexed; virtual on
    # SQLite, which cannot add a stored one to an existing table (and indexes either).
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column(
        "debit_requests",
        sa.Column("indexed_status", sa.String(12), sa.Computed(_INDEXED_STATUS, persisted=True if postgresql else None)),
    )
    _indexes("indexed_status")
    if postgresql:
        for table in ("debit_requests", "mandates"):
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("debit_requests", "mandates"):
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    _indexes("status")
    op.drop_column("debit_requests", "indexed_status")


def _indexes(column: str) -> None:
    pending, refused = sa.text(f"{column} = 'pending'"), sa.text(f"{column} = 'refused'")
    op.drop_index("ix_debit_requests_queue", "debit_requests")
    op.drop_index("ix_debit_requests_refused", "debit_requests")
    op.create_index(
        "ix_debit_requests_queue", "debit_requests", ["creditor_id", "mandate_id", "id"],
        sqlite_where=pending, postgresql_where=pending,
    )
    op.create_index(
        "ix_debit_requests_refused", "debit_requests", ["run_id", "creditor_id", "id"],
        sqlite_where=refused, postgresql_where=refused,
    )
