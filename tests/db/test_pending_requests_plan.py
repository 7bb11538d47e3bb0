"""The pending requests of a chunk's blocked mandates (returns.pending_request_rows) are
searched by mandate, whatever the statistics say of the queue.

Regression: the reconciliation enqueues its retries as pending in the same transaction,
after statistics that counted no pending request. PostgreSQL took the queue index
(partial, ``status = 'pending'``) for nearly empty and read it whole for each chunk, testing
every pending request against the chunk's mandates: on 100,000 returns into 1,000,000
debits the read had 73,600 pending requests to filter by its last chunk, a cost growing
with every chunk of the file."""

from __future__ import annotations

from sqlalchemy import event, text, update

from sepa_engine.db.models import DebitRequest
from sepa_engine.db.repositories import returns as repo
from tests import ledger


def test_pending_requests_of_blocked_mandates_are_searched_by_mandate_not_in_the_queue(db):
    creditor = ledger.creditor(db)
    ids = ledger.many_requests(db, creditor, 400, mandates=40)
    if not db.is_sqlite:
        # The regime of the regression: statistics taken while nothing was pending.
        with db.transaction() as s:
            s.execute(update(DebitRequest).values(status="submitted"))
            s.execute(text("ANALYZE debit_requests"))
    with db.transaction() as s:
        s.execute(update(DebitRequest).where(DebitRequest.id.in_(ids[::2])).values(status="pending"))
    with db.reader() as s:
        mandates = sorted({s.get(DebitRequest, i).mandate_id for i in ids[:6]})
    plans: list[str] = []
    with db.transaction() as s:
        connection = s.connection()
        if not db.is_sqlite:
            # A table this small would be read whole: the choice wanted is between indexes.
            s.execute(text("SET LOCAL enable_seqscan = off"))

        def explain(conn, cursor, statement, parameters, context, executemany):
            if "mandate_id" in statement and not statement.startswith("EXPLAIN"):
                prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
                raw = cursor.connection.cursor() if not db.is_sqlite else cursor.connection
                rows = raw.execute(prefix + statement, parameters).fetchall()
                plans.append("\n".join(str(row[-1]) for row in rows))

        event.listen(connection, "before_cursor_execute", explain)
        try:
            rows = repo.pending_request_rows(s, mandates, "pending")
        finally:
            event.remove(connection, "before_cursor_execute", explain)
        expected = sorted(
            r.id for r in s.query(DebitRequest).filter(DebitRequest.mandate_id.in_(mandates), DebitRequest.status == "pending")
        )
    assert [row.id for row in rows] == expected and expected
    (plan,) = plans
    assert "ix_debit_requests_mandate_id" in plan and "ix_debit_requests_queue" not in plan, plan
