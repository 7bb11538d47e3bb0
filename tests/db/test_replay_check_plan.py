"""The reconciliation's replay check (returns.entry_hashes_by_keys) looks each key up in the
ledger's idempotency index by creditor and key, whatever plan the database makes.

Regression: after migration 0010 made that index partial, a 1,000,000-debit reconciliation
searched it by creditor alone and tested every entry against a chunk's 2,000 keys (2 s a
chunk), on statistics taken while no entry had a key. The engine plans every statement for
its own values (psycopg never prepares them, db/session.py); this test forces the
generic plan instead, the worst case, and still wants one index search per key."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event, insert, text

from sepa_engine.db.models import LedgerEntry, Mandate
from sepa_engine.db.repositories import returns as repo
from tests import ledger

STAMP = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone.utc)
INDEX = "uq_ledger_entries_creditor_idempotency"


def _keyed_entries(db, creditor: int, count: int) -> None:
    mandate = ledger.mandate(db, creditor)
    with db.reader() as s:
        account = s.get(Mandate, mandate).debtor_account_id
    with db.transaction() as s:
        s.execute(insert(LedgerEntry), [
            {"creditor_id": creditor, "debtor_account_id": account, "kind": "invoice", "document_number": f"F-{n}",
             "issue_date": dt.date(2026, 11, 1), "amount_cents": 100 + n, "idempotency_key": f"key-{n}",
             "content_hash": f"h{n}", "created_at": STAMP}
            for n in range(count)
        ])


def test_replay_check_searches_the_idempotency_index_by_creditor_and_key_in_any_plan(db):
    creditor = ledger.creditor(db)
    if not db.is_sqlite:
        # The regime of the regression: statistics taken while no entry had a key (a ledger of
        # payments), keyed entries added since.
        _keyed_entries(db, creditor, 1)
        with db.transaction() as s:
            s.execute(text("DELETE FROM ledger_entries"))
            s.execute(text("ANALYZE ledger_entries"))
    _keyed_entries(db, creditor, 2_000)
    keys = [f"key-{n}" for n in range(0, 30, 3)] + ["key-unknown"]
    plans: list[str] = []
    with db.transaction() as s:
        connection = s.connection()
        if db.is_sqlite:
            def explain(conn, cursor, statement, parameters, context, executemany):
                if "idempotency_key" in statement and not statement.startswith("EXPLAIN"):
                    rows = cursor.connection.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
                    plans.append(" ".join(str(row[-1]) for row in rows))

            event.listen(connection, "before_cursor_execute", explain)
            try:
                found = repo.entry_hashes_by_keys(s, creditor, keys)
            finally:
                event.remove(connection, "before_cursor_execute", explain)
        else:
            # The plan the executor really ran, as a notice: a generic plan forced, the
            # statement prepared by psycopg at its first run.
            raw = connection.connection.driver_connection
            s.execute(text("LOAD 'auto_explain'"))
            for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_level = notice",
                            "plan_cache_mode = force_generic_plan"):
                s.execute(text(f"SET LOCAL {setting}"))
            handler = lambda notice: plans.append(notice.message_primary or "")  # noqa: E731
            raw.add_notice_handler(handler)
            threshold, raw.prepare_threshold = raw.prepare_threshold, 0
            try:
                for _ in range(2):  # prepared at the first run, the generic plan at the second
                    found = repo.entry_hashes_by_keys(s, creditor, keys)
            finally:
                raw.prepare_threshold = threshold
                raw.remove_notice_handler(handler)

    assert found == {f"key-{n}": f"h{n}" for n in range(0, 30, 3)}
    ran = [plan for plan in plans if INDEX in plan]
    assert ran, plans
    if db.is_sqlite:
        assert "(creditor_id=? AND idempotency_key=?)" in ran[-1]
    else:
        plan = ran[-1]
        assert "Index Cond: ((creditor_id = " in plan and "(idempotency_key)::text = (wanted.value)" in plan, plan

