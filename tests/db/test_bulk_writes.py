"""The collection run's bulk writes (set-based on PostgreSQL, executemany on SQLite) store
the same values on both backends: NULLs, dates, aware timestamps, several column sets in one
call, and a duplicate payment refused as the unique key says."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError

from sepa_engine.db.models import DebitRequest, LedgerEntry, Mandate
from sepa_engine.db.repositories import accounts as accounts_repo
from sepa_engine.db.repositories import collection as repo
from tests import ledger
from tests.boundary.fuzzing import EXAMPLES

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


def test_insert_invoices_returns_the_id_of_each_invoice_by_its_creditor_and_number_on_both_backends(db):
    # Two creditors may number an invoice alike; one statement may book both (a group of
    # several creditors' enqueues), and each must get its own id back.
    creditors = [ledger.creditor(db), ledger.creditor(db, "other", creditor_identifier="FR72ZZZ123457")]
    accounts = []
    for creditor in creditors:
        mandate = ledger.mandate(db, creditor)
        with db.reader() as s:
            accounts.append(s.scalars(select(Mandate.debtor_account_id).where(Mandate.id == mandate)).one())
    rows = [
        {"creditor_id": creditor, "debtor_account_id": account, "kind": "invoice", "document_number": number,
         "issue_date": dt.date(2026, 11, day), "due_date": dt.date(2026, 12, day), "amount_cents": 1_000 * day + creditor,
         "label": f"Loyer {number}", "created_at": STAMP}
        for creditor, account in zip(creditors, accounts, strict=True)
        for day, number in [(3, "F-C"), (1, "F-A"), (2, "F-B")]
    ]
    with db.transaction() as s:
        ids = accounts_repo.insert_invoices(s, rows)
    with db.reader() as s:
        stored = {(e.creditor_id, e.document_number): e for e in s.scalars(select(LedgerEntry))}

    assert sorted(ids) == sorted((c, n) for c in creditors for n in ("F-A", "F-B", "F-C"))
    assert len(set(ids.values())) == 6
    assert all(ids[key] == stored[key].id for key in ids)
    assert [stored[(creditors[1], n)].amount_cents for n in ("F-A", "F-B", "F-C")] == [1_000 + creditors[1], 2_000 + creditors[1], 3_000 + creditors[1]]
    with db.transaction() as s:
        assert accounts_repo.insert_invoices(s, []) == {}


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


def test_each_owned_key_finds_each_pair_and_nothing_for_no_pairs_on_both_backends(db):
    from sepa_engine.db import bulk

    first, second = ledger.creditor(db), ledger.creditor(db, "gim", creditor_identifier="FR72ZZZ123457", name="GIM")
    ledger.many_requests(db, first, 2)
    ledger.many_requests(db, second, 2)
    with db.reader() as s:
        keys = dict(s.execute(select(DebitRequest.id, DebitRequest.idempotency_key)).all())
        owners = dict(s.execute(select(DebitRequest.id, DebitRequest.creditor_id)).all())
        pairs = {first: [keys[i] for i in keys if owners[i] == first][:1] + ["absent"], second: [keys[i] for i in keys if owners[i] == second]}

        def found(wanted):  # type: ignore[no-untyped-def]
            query = bulk.each_owned_key(s, select(DebitRequest), DebitRequest.creditor_id, DebitRequest.idempotency_key,
                                        wanted, entity=DebitRequest)
            return sorted((r.creditor_id, r.idempotency_key) for r in s.scalars(query))

        assert found(pairs) == sorted((c, k) for c, ks in pairs.items() for k in ks if k != "absent")
        assert found({}) == [] and found({first: []}) == []


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


# Strings a bank file or an operator may put in a text column, each a trap for array syntax.
HOSTILE_TEXTS = [
    'Loyer "janvier"', "C:\\quittances\\", '\\"', '"', "\\", "NULL", "null", "", " ", "  deux espaces  ",
    "{1,2}", "a,b", "{}", "(x)", "ligne\nsuivante\ttab", "Hélène € ü 日本", "'apostrophe'", 'fin\\',
]


def _loaded(literal: str, type_name: str) -> list[object]:
    """The array text read back as psycopg reads a server's array of that type."""
    from psycopg.adapt import Transformer
    from psycopg.postgres import types
    from psycopg.pq import Format

    loader = Transformer().get_loader(types.get(type_name).array_oid, Format.TEXT)
    return loader.load(literal.encode())  # type: ignore[no-any-return]


def test_array_literal_reads_back_as_the_values_it_was_given_for_every_type_it_writes():
    # Differential: the text bulk.py sends instead of a list must read as that list would.
    from decimal import Decimal

    from sepa_engine.db.bulk import array_literal

    cases: list[tuple[str, list[object]]] = [
        ("text", [*HOSTILE_TEXTS, None]),
        ("int8", [0, -1, 2**31, -(2**63), None, 10**18]),
        ("bool", [True, False, None]),
        ("numeric", [Decimal("0.01"), Decimal("-12345678901234567890.5"), Decimal("1E+2"), None]),
        ("date", [dt.date(2026, 11, 25), None, dt.date(1, 1, 1)]),
        # The same instant in two offsets, repeated, as a chunk's one instant is.
        ("timestamptz", [STAMP, STAMP.astimezone(dt.timezone.utc), STAMP.replace(microsecond=123456), None, STAMP]),
        ("date", [dt.date(2026, 11, 25)] * 3 + [dt.datetime(2026, 11, 25, 9, tzinfo=dt.timezone.utc).date()]),
    ]
    for type_name, values in cases:
        literal = array_literal(values)
        assert literal is not None, type_name
        assert _loaded(literal, type_name) == values, type_name
    # Mixed columns (a bool among ints) are written element by element.
    assert _loaded(array_literal([1, True, None]) or "", "text") == ["1", "true", None]


def test_array_literal_leaves_naive_timestamps_floats_and_other_types_to_the_driver():
    import enum

    from sepa_engine.db.bulk import array_literal

    class Status(enum.StrEnum):
        SENT = "sent"

    assert array_literal([dt.datetime(2026, 11, 25, 9, 0), None]) is None  # noqa: DTZ001 - naive on purpose
    assert array_literal([STAMP, dt.datetime(2026, 11, 25, 9, 0)]) is None  # noqa: DTZ001 - naive on purpose
    assert array_literal([0.1]) is None
    assert array_literal([Status.SENT]) is None
    assert array_literal([b"bytes"]) is None


def test_bulk_inserts_and_updates_store_hostile_text_as_given_on_both_backends(db):
    # PostgreSQL gets these rows as array literals (db/bulk.py), SQLite by executemany.
    from sepa_engine.db.repositories import returns as returns_repo

    creditor = ledger.creditor(db)
    mandate = ledger.mandate(db, creditor)
    requests = ledger.many_requests(db, creditor, len(HOSTILE_TEXTS))
    with db.reader() as s:
        account = s.scalars(select(Mandate.debtor_account_id).where(Mandate.id == mandate)).one()
    with db.transaction() as s:
        returns_repo.insert_ledger_entries(s, [
            {"creditor_id": creditor, "debtor_account_id": account, "kind": "invoice", "document_number": f"F-{n}-{text[:20]}",
             "issue_date": dt.date(2026, 11, 25), "amount_cents": 100 + n, "label": text, "debit_request_id": None,
             "created_at": STAMP}
            for n, text in enumerate(HOSTILE_TEXTS)
        ])
        returns_repo.update_requests(s, [
            {"b_id": request, "status": "returned", "status_changed_at": STAMP, "reason_code": "AM04", "reason": text}
            for request, text in zip(requests, HOSTILE_TEXTS, strict=True)
        ])
    with db.reader() as s:
        labels = dict(s.execute(select(LedgerEntry.amount_cents, LedgerEntry.label)).all())
        numbers = set(s.scalars(select(LedgerEntry.document_number)))
        reasons = dict(s.execute(select(DebitRequest.id, DebitRequest.reason).where(DebitRequest.id.in_(requests))).all())
    assert labels == {100 + n: text for n, text in enumerate(HOSTILE_TEXTS)}
    assert numbers == {f"F-{n}-{text[:20]}" for n, text in enumerate(HOSTILE_TEXTS)}
    assert reasons == dict(zip(requests, HOSTILE_TEXTS, strict=True))


# Any text PostgreSQL can store (UTF-8 without NUL: no lone surrogate, which the input rules
# refuse anyway), any integer a BIGINT holds, with NULLs.
_CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_TEXTS = st.lists(st.one_of(st.none(), st.text(alphabet=_CHARACTERS)), max_size=12)
_INTEGERS = st.lists(st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)), max_size=12)


@given(st.one_of(_TEXTS.map(lambda values: ("text", values)), _INTEGERS.map(lambda values: ("int8", values))))
@settings(max_examples=EXAMPLES * 10, deadline=None)
def test_array_literal_of_any_text_or_bigint_reads_back_as_the_same_values(typed):
    # Property behind the hostile list above: whatever a bank file or an operator writes,
    # the literal bulk.py builds is read by PostgreSQL's array parser as exactly that list.
    from sepa_engine.db.bulk import array_literal

    type_name, values = typed
    literal = array_literal(values)
    assert literal is not None
    assert _loaded(literal, type_name) == values
