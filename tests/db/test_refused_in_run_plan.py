"""What a run refused is read from the refused requests' own index (migration 0011), not by
testing the status of every request of the run.

Regression: every file's review summary lists, counts and groups by reason the requests its
run refused for its creditor. Those queries searched the run's index by run and creditor,
then read each of the run's requests to test its status: a 1,000,000-request run in ten
files read a million rows three times per file, 30 s of the run at load 5."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import event, text

from sepa_engine.db.repositories import collection as collection_repo
from sepa_engine.db.repositories import review as review_repo

INDEX = "ix_debit_requests_refused"

READS: dict[str, Callable] = {
    "the summary's refused list and count": lambda s: review_repo.refused_for_creditor_in_run(s, 7, 1, 50),
    "the summary's reason codes": lambda s: review_repo.refused_reasons(s, 7, 1),
    "the batch's refused requests": lambda s: collection_repo.refused_of_creditor_in_run(s, 7, 1),
    "the run report's refusals": lambda s: collection_repo.refused_in_run(s, 7, 20),
    "the run report's count": lambda s: collection_repo.count_refused_in_run(s, 7),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_a_runs_refusals_are_read_from_the_refused_index(db, read):
    plans: list[str] = []
    with db.transaction() as s:
        connection = s.connection()
        if not db.is_sqlite:
            # Empty tables: without this PostgreSQL would rightly scan them whole. With it,
            # the choice is between indexes, which is what this test is about.
            s.execute(text("SET LOCAL enable_seqscan = off"))

        def explain(conn, cursor, statement, parameters, context, executemany):
            if "debit_requests" in statement and not statement.startswith("EXPLAIN"):
                prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
                raw = cursor.connection.cursor() if not db.is_sqlite else cursor.connection
                rows = raw.execute(prefix + statement, parameters).fetchall()
                plans.append("\n".join(str(row[-1]) for row in rows))

        event.listen(connection, "before_cursor_execute", explain)
        try:
            read(s)
        finally:
            event.remove(connection, "before_cursor_execute", explain)

    assert plans
    for plan in plans:
        assert INDEX in plan, plan
