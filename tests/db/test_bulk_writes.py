"""The collection run's bulk writes (set-based on PostgreSQL, executemany on SQLite) store
the same values on both backends: NULLs, dates, aware timestamps, several column sets in one
call, and a duplicate payment refused as the unique key says."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError

from sepa_engine.db.models import DebitRequest, LedgerEntry, Mandate
from sepa_engine.db.repositories import accounts as accounts_repo
from sepa_engine.db.repositories import collection as repo
from tests import ledger

STAMP = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def test_update_requests_writes_each_column_set_with_nulls_dates_and_timestamps(db):
    creditor = ledger.creditor(db)
    first, second, third = ledger.many_requests(db, creditor, 3)

    with db.transaction() as s:
        repo.update_requests(s, [
            {"id": first, "status": "assigned", "status_changed_at": STAMP, "collection_date": dt.date(2026, 11, 25),
             "sequence_type": "FRST", "reason_code": None, "amend_new_debtor_agent": True},
            {"id": second, "status": "refused", "status_changed_at": STAMP, "reason_code": "AC01", "reason": "IBAN"},
            {"id": third, "status": "assigned", "status_changed_at": STAMP, "collection_date": dt.date(2026, 11, 26),
             "sequence_type": "RCUR", "reason_code": None, "amend_new_debtor_agent": False},
        ])

    with db.reader() as s:
        rows = {r.id: r for r in s.scalars(select(DebitRequest))}
    assert (rows[first].status, rows[first].collection_date, rows[first].sequence_type) == ("assigned", dt.date(2026, 11, 25), "FRST")
    assert rows[first].amend_new_debtor_agent is True and rows[first].reason_code is None
    assert (rows[second].status, rows[second].reason_code, rows[second].collection_date) == ("refused", "AC01", None)
    assert rows[third].sequence_type == "RCUR" and rows[third].amend_new_debtor_agent is False
    assert all(r.status_changed_at == STAMP for r in rows.values())


def test_update_requests_refuses_a_naive_timestamp_on_both_backends(db):
    creditor = ledger.creditor(db)
    (request,) = ledger.many_requests(db, creditor, 1)
    with pytest.raises((StatementError, ValueError)):
        with db.transaction() as s:
            repo.update_requests(s, [{"id": request, "status": "assigned", "status_changed_at": dt.datetime(2026, 11, 23)}])  # noqa: DTZ001 - the naive value refused


def test_insert_entries_books_the_rows_and_a_second_payment_for_a_debit_is_refused(db):
    creditor = ledger.creditor(db)
    mandate = ledger.mandate(db, creditor)
    request = ledger.request(db, creditor, mandate)
    with db.reader() as s:
        account = s.scalars(select(Mandate.debtor_account_id).where(Mandate.id == mandate)).one()
    entry = {
        "creditor_id": creditor, "debtor_account_id": account, "kind": "payment", "document_number": "E2E-1",
        "issue_date": dt.date(2026, 11, 25), "amount_cents": 10_000, "label": None, "debit_request_id": request,
        "created_at": STAMP,
    }
    with db.transaction() as s:
        accounts_repo.insert_entries(s, [entry])
    with db.reader() as s:
        booked = s.scalars(select(LedgerEntry)).one()
    assert (booked.amount_cents, booked.issue_date, booked.label, booked.created_at) == (10_000, dt.date(2026, 11, 25), None, STAMP)

    with pytest.raises(IntegrityError):
        with db.transaction() as s:
            accounts_repo.insert_entries(s, [entry])


def test_one_of_finds_the_rows_of_thousands_of_keys_integers_and_strings_on_both_backends(db):
    from sepa_engine.db import bulk

    creditor = ledger.creditor(db)
    ids = ledger.many_requests(db, creditor, 3)
    with db.reader() as s:
        e2e = dict(s.execute(select(DebitRequest.id, DebitRequest.end_to_end_id)).all())
        # Absent keys beside the present ones: a chunk asks about debits that may not exist.
        by_id = s.scalars(select(DebitRequest.id).where(bulk.one_of(s, DebitRequest.id, {*ids[:2], *range(10**6, 10**6 + 3000)})))
        by_text = s.scalars(select(DebitRequest.id).where(bulk.one_of(s, DebitRequest.end_to_end_id, [e2e[ids[2]], "NOT-OURS"])))
        assert sorted(by_id) == ids[:2]
        assert list(by_text) == [ids[2]]


def test_insert_entries_keeps_quotes_backslashes_and_accents_of_labels_as_given(db):
    # PostgreSQL receives inserted rows as array literals: their quoting must not show.
    creditor = ledger.creditor(db)
    mandate = ledger.mandate(db, creditor)
    with db.reader() as s:
        account = s.scalars(select(Mandate.debtor_account_id).where(Mandate.id == mandate)).one()
    labels = ['Loyer "janvier" d\'Hélène', "C:\\quittances\\2026", "ligne\nsuivante ü €", "[1, {}]"]
    with db.transaction() as s:
        accounts_repo.insert_entries(s, [
            {"creditor_id": creditor, "debtor_account_id": account, "kind": "invoice", "document_number": f"F-{n}",
             "issue_date": dt.date(2026, 11, 25), "amount_cents": 100 + n, "label": label, "debit_request_id": None,
             "created_at": STAMP}
            for n, label in enumerate(labels)
        ])
    with db.reader() as s:
        stored = dict(s.execute(select(LedgerEntry.document_number, LedgerEntry.label)).all())
    assert stored == {f"F-{n}": label for n, label in enumerate(labels)}
