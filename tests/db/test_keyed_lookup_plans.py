"""A chunk's idempotency keys and invoice numbers are each looked up by creditor and key,
whatever the statistics say (``bulk.each_key``).

Regression: with ``key = ANY(:keys)``, statistics taken while the tables were small made
PostgreSQL search the unique indexes by creditor alone and test each of the creditor's rows
against the keys. Seen with ``auto_explain`` under the HTTP benchmark: every chunk of
enqueues read all the creditor's requests to check its idempotency keys (7,843 rows removed
by the filter for 8 keys), and all its invoices twice to book the invoices requests carry;
the cost of an enqueue grew with the ledger. (The second read is gone: the insert of the
carried invoices now returns their ids.)

The regime here is that one: statistics of a small ledger (50 rows, vacuumed and analysed),
then 2,000 more rows. (On statistics of an empty table whose indexes are bloated by the test
suite's DELETEs, the planner may still search another index: no query form forces an index on
PostgreSQL.)"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, text

from sepa_engine.db.models import DebitRequest, LedgerEntry, Mandate
from sepa_engine.db.repositories import accounts as accounts_repo
from sepa_engine.db.repositories import registry as registry_repo
from tests import ledger
from tests.db.plans import plans_of

STAMP = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone.utc)
ROWS = 2_000


def _fill(db, creditor: int, rows: range, e2e: str = "E2E-K") -> None:  # type: ignore[no-untyped-def]
    mandate = ledger.mandate(db, creditor)
    with db.reader() as s:
        account = s.get(Mandate, mandate).debtor_account_id
    with db.transaction() as s:
        s.execute(insert(DebitRequest), [
            {"creditor_id": creditor, "mandate_id": mandate, "idempotency_key": f"key-{n}", "content_hash": "x" * 64,
             "end_to_end_id": f"{e2e}-{n}", "amount_cents": 100 + n, "requested_date": dt.date(2026, 11, 24),
             "status": "pending", "status_changed_at": STAMP, "created_at": STAMP}
            for n in rows
        ])
        s.execute(insert(LedgerEntry), [
            {"creditor_id": creditor, "debtor_account_id": account, "kind": "invoice", "document_number": f"F-{n}",
             "issue_date": dt.date(2026, 11, 1), "amount_cents": 100 + n, "created_at": STAMP}
            for n in rows
        ])


def _analyse(db) -> None:  # type: ignore[no-untyped-def]
    if not db.is_sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE debit_requests"))
            connection.execute(text("VACUUM ANALYZE ledger_entries"))


def test_keys_and_invoice_numbers_are_searched_by_creditor_and_key_on_statistics_of_a_small_ledger(db):
    creditor = ledger.creditor(db)
    _fill(db, creditor, range(ROWS, ROWS + 50))
    _analyse(db)
    _fill(db, creditor, range(ROWS))
    keys = [f"key-{n}" for n in range(0, 40, 5)] + ["key-unknown"]
    numbers = [f"F-{n}" for n in range(0, 40, 5)] + ["F-unknown"]

    with db.transaction() as s, plans_of(s, "idempotency_key", sqlite=db.is_sqlite) as key_plans:
        requests = registry_repo.requests_by_idempotency_keys(s, creditor, keys)
    with db.transaction() as s, plans_of(s, "document_number", sqlite=db.is_sqlite) as number_plans:
        invoices = {n: row for (_, n), row in accounts_repo.invoices_by_creditor_numbers(s, {creditor: numbers}).items()}

    assert sorted(requests) == sorted(keys[:-1]) and all(r.creditor_id == creditor for r in requests.values())
    assert sorted(invoices) == sorted(numbers[:-1])
    assert len(key_plans) == 1 and len(number_plans) == 1
    for plan, column in [(key_plans[0], "idempotency_key"), *((p, "document_number") for p in number_plans)]:
        if db.is_sqlite:
            assert f"{column}=?" in plan, plan
        else:
            # The key is a condition of the index search, each key its own search; never a
            # filter over the creditor's rows.
            assert f"({column})::text = (wanted.value)::text" in plan and "Filter" not in plan, plan


def test_several_creditors_keys_and_numbers_are_each_searched_by_their_own_creditor_and_key(db):
    # The HTTP batcher's group asks for several creditors' keys in one statement; the two
    # creditors here hold the same keys and numbers, each unique within its creditor only.
    first = ledger.creditor(db)
    second = ledger.creditor(db, "gim", creditor_identifier="FR72ZZZ123457", name="GIM")
    _fill(db, first, range(ROWS, ROWS + 50))
    _fill(db, second, range(ROWS, ROWS + 50), e2e="E2E-G")
    _analyse(db)
    _fill(db, first, range(ROWS))
    _fill(db, second, range(ROWS), e2e="E2E-G")
    keys = {first: ["key-0", "key-5", "key-unknown"], second: ["key-5", "key-10"]}
    numbers = {first: ["F-0", "F-unknown"], second: ["F-0", "F-15"]}

    with db.transaction() as s, plans_of(s, "idempotency_key", sqlite=db.is_sqlite) as key_plans:
        requests = registry_repo.requests_by_creditor_keys(s, keys)
    with db.transaction() as s, plans_of(s, "document_number", sqlite=db.is_sqlite) as number_plans:
        invoices = accounts_repo.invoices_by_creditor_numbers(s, numbers)

    assert sorted(requests) == sorted([(first, "key-0"), (first, "key-5"), (second, "key-5"), (second, "key-10")])
    assert all(row.creditor_id == c and row.idempotency_key == k for (c, k), row in requests.items())
    assert sorted(invoices) == sorted([(first, "F-0"), (second, "F-0"), (second, "F-15")])
    assert all(row.creditor_id == c and row.document_number == n for (c, n), row in invoices.items())
    assert len(key_plans) == 1 and len(number_plans) == 1
    for plan, column in [(key_plans[0], "idempotency_key"), (number_plans[0], "document_number")]:
        if db.is_sqlite:
            # One index search per creditor's term of the OR, by creditor and key.
            assert plan.count(f"{column}=?") == 2 and "creditor_id=?" in plan, plan
        else:
            assert "(creditor_id = wanted.owner)" in plan and f"({column})::text = (wanted.value)::text" in plan, plan
            assert "Filter" not in plan, plan
