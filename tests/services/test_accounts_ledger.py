"""The account ledger: entries, balance, booking of debits, returns, statements, scoping."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import DebitRequest, LedgerEntry
from sepa_engine.ids import SequentialIds
from sepa_engine.services import accounts, on_demand, statements
from sepa_engine.services.account_inputs import LedgerEntryInput, PayNowInput
from sepa_engine.services.collection import run_collection
from tests import accounts_world as world

D = dt.date


@pytest.fixture
def setup(db):  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    return db


def pay(db, key: str, **data: object) -> on_demand.PaymentResult:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(**data), idempotency_key=key, clock=world.clock())  # type: ignore[arg-type]


def book(db) -> accounts.BookingReport:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return accounts.book_submitted_payments(s, world.clock())


FIRST_COLLECTION = D(2026, 11, 24)


def submit(db, request_id: int, collection_date: D = FIRST_COLLECTION) -> None:  # type: ignore[no-untyped-def]
    """What the collection run does when it publishes a file (tested for real below)."""
    with db.transaction() as s:
        row = s.get_one(DebitRequest, request_id)
        row.status, row.collection_date = "submitted", collection_date


def test_the_balance_due_adds_invoices_and_fees_and_takes_off_credit_notes(setup):
    world.entry(setup, "F1", "100.00")
    world.entry(setup, "F2", "50.00", issued=D(2026, 10, 15))
    world.entry(setup, "FEE-1", "7.50", kind="fee")
    world.entry(setup, "AV-1", "20.00", kind="credit_note", applies_to="F2")
    position = world.position(setup)
    assert (position.balance_due_cents, position.collectable_cents) == (13_750, 13_750)


def test_recording_the_same_entry_twice_with_its_key_changes_nothing(setup):
    first = world.entry(setup, "F1", "100.00")
    again = world.entry(setup, "F1", "100.00")
    assert first.created and not again.created and again.id == first.id
    with setup.transaction() as s, pytest.raises(errors.IdempotencyConflict):
        accounts.record_entry(
            s, "pressimmo", "AG-1", LedgerEntryInput(kind="invoice", number="F1", issue_date=D(2026, 10, 1), amount="101.00"),
            idempotency_key="invoice-F1", clock=world.clock(),
        )
    assert world.position(setup).balance_due_cents == 10_000


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"kind": "payment"}, errors.InvalidFormat, "kind"),
        ({"kind": "bill"}, errors.InvalidFormat, "kind"),
        ({"amount": "0"}, errors.InvalidAmount, "amount"),
        ({"amount": "-5.00"}, errors.InvalidAmount, "amount"),
        ({"amount": "5.001"}, errors.InvalidAmount, "amount"),
        ({"number": "X" * 36}, errors.InvalidLength, "number"),
        ({"due_date": D(2026, 9, 1)}, errors.InvalidDate, "due_date"),
        ({"applies_to": "F0"}, errors.InvalidFormat, "applies_to"),
    ],
)
def test_malformed_entries_are_refused_with_their_field(setup, overrides, error, field):
    values: dict[str, object] = {"kind": "invoice", "number": "F9", "issue_date": D(2026, 10, 1), "amount": "10.00"}
    values.update(overrides)
    with setup.transaction() as s, pytest.raises(error) as caught:
        accounts.record_entry(s, "pressimmo", "AG-1", LedgerEntryInput(**values), idempotency_key="k", clock=world.clock())  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_document_number_is_unique_per_creditor_and_kind(setup):
    world.account(setup, "pressimmo", "AG-2")
    world.entry(setup, "F1", "100.00")
    with pytest.raises(errors.DuplicateIdentifier):
        _other_key_same_number(setup)
    # A credit note may carry the number of an invoice.
    assert world.entry(setup, "F1", "10.00", kind="credit_note").created


def _other_key_same_number(db) -> None:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        accounts.record_entry(
            s, "pressimmo", "AG-2", LedgerEntryInput(kind="invoice", number="F1", issue_date=D(2026, 10, 1), amount="1.00"),
            idempotency_key="another-key", clock=world.clock(),
        )


def test_nothing_of_one_creditor_is_visible_from_another(db):
    world.creditor(db, "pressimmo")
    world.creditor(db, "poliris")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00")
    with db.transaction() as s:
        for call in (
            lambda: accounts.position(s, "poliris", "AG-1"),
            lambda: accounts.show_account(s, "poliris", "AG-1"),
            lambda: statements.statement(s, "poliris", "AG-1", clock=world.clock()),
            lambda: on_demand.pay_now(s, "poliris", "AG-1", PayNowInput(amount="1.00"), idempotency_key="x", clock=world.clock()),
            lambda: accounts.record_entry(
                s, "poliris", "AG-1", LedgerEntryInput(kind="invoice", number="F2", issue_date=D(2026, 10, 1), amount="1.00"),
                idempotency_key="y", clock=world.clock()),
        ):
            with pytest.raises(errors.NotFound) as caught:
                call()
            assert caught.value.field == "account" and "poliris" in caught.value.rule
    # The same key and number at another creditor are another creditor's business.
    world.account(db, "poliris", "AG-1")
    assert world.entry(db, "F1", "30.00", creditor_code="poliris").created
    assert world.position(db, "poliris").balance_due_cents == 3_000
    assert world.position(db, "pressimmo").balance_due_cents == 10_000


def test_a_debit_is_booked_as_a_payment_once_when_it_reaches_the_bank(setup):
    world.entry(setup, "F1", "100.00")
    paid = pay(setup, "click-1", amount="60.00")
    assert book(setup).booked == 0  # pending: in flight, not a payment
    assert world.position(setup).in_flight_cents == 6_000

    submit(setup, paid.request_id)
    first, second = book(setup), book(setup)

    assert (first.booked, first.amount_cents, second.booked) == (1, 6_000, 0)
    position = world.position(setup)
    assert (position.balance_due_cents, position.in_flight_cents, position.collectable_cents) == (4_000, 0, 4_000)
    with setup.reader() as s:
        payment = s.scalars(select(LedgerEntry).where(LedgerEntry.kind == "payment")).one()
    assert (payment.document_number, payment.debit_request_id, payment.issue_date) == (
        paid.end_to_end_id, paid.request_id, D(2026, 11, 24)
    )


def test_the_collection_run_books_the_payment_when_it_publishes_the_file(setup, tmp_path: Path, database_url):
    world.entry(setup, "F1", "100.00")
    world.entry(setup, "F2", "50.00", issued=D(2026, 10, 15))
    paid = pay(setup, "click-1", invoices=("F2",))
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    report = run_collection(setup, settings, FixedClock(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)), SequentialIds())
    assert report.assigned == 1
    (outcome,) = report.files

    # Booked by the run itself, in its publication transaction: a catch-up books nothing twice.
    with setup.transaction() as s:
        again = accounts.book_submitted_payments(s, world.clock(), batch_id=outcome.batch_id)
    assert again.booked == 0
    with setup.reader() as s:
        assert s.scalars(select(LedgerEntry).where(LedgerEntry.kind == "payment")).one().debit_request_id == paid.request_id
    with setup.reader() as s:
        unpaid = statements.statement(s, "pressimmo", "AG-1", clock=world.clock())
    assert [(line.number, line.open_cents) for line in unpaid.lines] == [("F1", 10_000)]
    assert "Invoice F2" in outcome.path.read_text() and paid.remittance == "Invoice F2"


RUN_AT = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)


def _collect_three(db, tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    world.entry(db, "F1", "100.00")
    paid = [pay(db, f"click-{n}", amount=amount) for n, amount in enumerate(("10.00", "20.00", "30.05"))]
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    (outcome,) = run_collection(db, settings, FixedClock(RUN_AT), SequentialIds()).files
    return paid, outcome


def _payments(db) -> list[LedgerEntry]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return list(s.scalars(select(LedgerEntry).where(LedgerEntry.kind == "payment").order_by(LedgerEntry.debit_request_id)))


def test_publishing_a_file_books_each_debit_once_with_its_end_to_end_id_date_amount_and_label(setup, tmp_path, database_url):
    paid, outcome = _collect_three(setup, tmp_path, database_url)

    payments = _payments(setup)
    with setup.reader() as s:
        requests = {r.id: r for r in s.scalars(select(DebitRequest).where(DebitRequest.batch_id == outcome.batch_id))}
    assert [p.debit_request_id for p in payments] == sorted(p.request_id for p in paid) == sorted(requests)
    for payment in payments:
        request = requests[payment.debit_request_id]
        assert (payment.document_number, payment.issue_date, payment.amount_cents, payment.label) == (
            request.end_to_end_id, request.collection_date, request.amount_cents, request.remittance
        )
        assert payment.creditor_id == request.creditor_id and payment.created_at == RUN_AT
    assert world.position(setup).balance_due_cents == 10_000 - 6_005


def test_booking_a_file_again_books_only_its_debits_missing_from_the_ledger_and_reports_their_sum(
    setup, tmp_path, database_url
):
    paid, outcome = _collect_three(setup, tmp_path, database_url)
    with setup.transaction() as s:
        s.execute(delete(LedgerEntry).where(LedgerEntry.debit_request_id.in_([paid[1].request_id, paid[2].request_id])))

    with setup.transaction() as s:
        report = accounts.book_submitted_payments(s, world.clock(), batch_id=outcome.batch_id)

    assert (report.booked, report.amount_cents) == (2, 2_000 + 3_005)
    assert sorted(p.debit_request_id for p in _payments(setup)) == sorted(p.request_id for p in paid)


def test_a_file_whose_set_based_booking_collides_is_booked_by_chunks_once_and_nothing_half_applied(
    setup, tmp_path, database_url, monkeypatch
):
    paid, outcome = _collect_three(setup, tmp_path, database_url)
    with setup.transaction() as s:
        s.execute(delete(LedgerEntry).where(LedgerEntry.kind == "payment"))
    real = accounts.repo.book_batch_payments

    def collides(session, *args):  # type: ignore[no-untyped-def]
        # The statement's rows are written, then a concurrent booking's unique key fails it.
        real(session, *args)
        raise IntegrityError("INSERT INTO ledger_entries", {}, Exception("uq_ledger_entries_request_kind"))

    monkeypatch.setattr(accounts.repo, "book_batch_payments", collides)
    with setup.transaction() as s:
        report = accounts.book_submitted_payments(s, world.clock(), batch_id=outcome.batch_id)

    assert (report.booked, report.amount_cents) == (3, 6_005)
    assert sorted(p.debit_request_id for p in _payments(setup)) == sorted(p.request_id for p in paid)


def test_a_payment_without_selection_settles_the_oldest_invoices_first(setup):
    world.entry(setup, "F-NEW", "50.00", issued=D(2026, 10, 15))
    world.entry(setup, "F-OLD", "100.00", issued=D(2026, 9, 1))
    submit(setup, pay(setup, "click-1", amount="120.00").request_id)
    book(setup)
    with setup.reader() as s:
        unpaid = statements.statement(s, "pressimmo", "AG-1", clock=world.clock())
    assert [(line.number, line.open_cents) for line in unpaid.lines] == [("F-NEW", 3_000)]


def test_a_returned_payment_reopens_what_the_debit_paid(setup):
    world.entry(setup, "F1", "100.00")
    paid = pay(setup, "click-1", invoices=("F1",))
    submit(setup, paid.request_id)
    with setup.transaction() as s:
        # Booking is done by the return itself when the payment was not booked yet.
        returned = accounts.record_returned_payment(
            s, "pressimmo", paid.end_to_end_id, returned_on=D(2026, 12, 2), reason_code="AM04",
            idempotency_key="return-1", clock=world.clock(),
        )
        again = accounts.record_returned_payment(
            s, "pressimmo", paid.end_to_end_id, returned_on=D(2026, 12, 2), reason_code="AM04",
            idempotency_key="return-1", clock=world.clock(),
        )
    assert returned.created and not again.created and returned.kind == "returned_payment"
    position = world.position(setup)
    assert (position.balance_due_cents, position.collectable_cents) == (10_000, 10_000)
    with setup.reader() as s:
        unpaid = statements.statement(s, "pressimmo", "AG-1", clock=world.clock())
        kinds = s.execute(select(LedgerEntry.kind, func.count()).group_by(LedgerEntry.kind)).all()
    assert [(line.number, line.open_cents) for line in unpaid.lines] == [("F1", 10_000)]
    assert dict(kinds) == {"invoice": 1, "payment": 1, "returned_payment": 1}


def test_a_debit_that_never_reached_the_bank_cannot_be_returned(setup):
    world.entry(setup, "F1", "100.00")
    paid = pay(setup, "click-1", amount="10.00")
    with setup.transaction() as s, pytest.raises(errors.AccountError) as caught:
        accounts.record_returned_payment(
            s, "pressimmo", paid.end_to_end_id, returned_on=D(2026, 12, 2), idempotency_key="r", clock=world.clock()
        )
    assert caught.value.field == "end_to_end_id"


# --- statements ----------------------------------------------------------------------------
@pytest.fixture
def history(setup):  # type: ignore[no-untyped-def]
    world.entry(setup, "F-2025-10", "80.00", issued=D(2025, 10, 1))  # older than 12 months
    world.entry(setup, "F-2026-01", "100.00", issued=D(2026, 1, 10))
    world.entry(setup, "F-2026-06", "50.00", issued=D(2026, 6, 10))
    world.entry(setup, "AV-2026-07", "20.00", issued=D(2026, 7, 1), kind="credit_note", applies_to="F-2026-06")
    submit(setup, pay(setup, "click-1", invoices=("F-2025-10", "F-2026-01")).request_id, D(2026, 11, 24))
    book(setup)
    world.entry(setup, "F-2026-11", "30.00", issued=D(2026, 11, 2))
    return setup


def test_the_default_statement_lists_the_unpaid_invoices_with_a_running_total(history):
    with history.reader() as s:
        result = statements.statement(s, "pressimmo", "AG-1", clock=world.clock())
    assert result.kind == "unpaid"
    assert [(line.number, line.open_cents, line.balance_cents) for line in result.lines] == [
        ("F-2026-06", 3_000, 3_000), ("F-2026-11", 3_000, 6_000)
    ]
    assert result.balance_due_cents == 6_000


def test_the_full_statement_shows_every_entry_of_twelve_months_with_the_running_balance(history):
    with history.reader() as s:
        result = statements.statement(s, "pressimmo", "AG-1", clock=world.clock(), all_entries=True)
    assert result.date_from == D(2025, 11, 20) and result.opening_balance_cents == 8_000
    assert [(line.number, line.signed_cents, line.balance_cents) for line in result.lines] == [
        ("F-2026-01", 10_000, 18_000),
        ("F-2026-06", 5_000, 23_000),
        ("AV-2026-07", -2_000, 21_000),
        ("F-2026-11", 3_000, 24_000),
        (result.lines[4].number, -18_000, 6_000),
    ]
    assert result.lines[4].kind == "payment" and result.closing_balance_cents == 6_000


def test_a_statement_can_be_narrowed_by_dates_or_a_document_number_keeping_true_balances(history):
    with history.reader() as s:
        by_dates = statements.statement(
            s, "pressimmo", "AG-1", clock=world.clock(), all_entries=True, date_from=D(2026, 6, 1), date_to=D(2026, 7, 31)
        )
        by_number = statements.statement(s, "pressimmo", "AG-1", clock=world.clock(), all_entries=True, document="F-2026-06")
    assert [(line.number, line.balance_cents) for line in by_dates.lines] == [("F-2026-06", 23_000), ("AV-2026-07", 21_000)]
    assert by_dates.opening_balance_cents == 18_000
    assert [(line.number, line.balance_cents, line.open_cents) for line in by_number.lines] == [("F-2026-06", 23_000, 3_000)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"all_entries": True, "date_from": D(2025, 11, 19)}, "from"),
        ({"date_from": D(2026, 6, 1), "date_to": D(2026, 5, 1)}, "to"),
        ({"document": " "}, "document"),
    ],
)
def test_statement_filters_outside_the_rules_are_refused(history, kwargs, field):
    with history.reader() as s, pytest.raises(errors.SepaEngineError) as caught:
        statements.statement(s, "pressimmo", "AG-1", clock=world.clock(), **kwargs)
    assert caught.value.field == field


def test_the_statement_exports_as_csv_and_json(history):
    with history.reader() as s:
        result = statements.statement(s, "pressimmo", "AG-1", clock=world.clock(), all_entries=True)
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [(r["number"], r["debit"], r["credit"], r["balance"]) for r in rows[2:4]] == [
        ("AV-2026-07", "", "20.00", "210.00"), ("F-2026-11", "30.00", "", "240.00")
    ]
    document = result.to_dict()
    assert document["opening_balance"] == "80.00" and document["lines"][0]["balance"] == "180.00"


# --- statements a customer can trust (issue 12) ------------------------------------------------
def test_a_payment_in_collection_shows_as_such_dated_when_its_file_went_to_the_bank(setup):
    # Issue 12: "a payment is dated at its future collection date as soon as the file is published".
    world.entry(setup, "F1", "20.00")
    submit(setup, pay(setup, "click-1", invoices=("F1",)).request_id, D(2026, 12, 7))
    book(setup)
    with setup.reader() as s:
        result = statements.statement(s, "pressimmo", "AG-1", clock=world.clock(), all_entries=True)
    payment = result.lines[-1]
    assert (payment.kind, payment.date, payment.status, payment.collection_date) == (
        "payment", D(2026, 11, 20), "in_collection", D(2026, 12, 7)
    )
    line = result.to_dict()["lines"][-1]
    assert (line["date"], line["status"], line["collection_date"]) == ("2026-11-20", "in_collection", "2026-12-07")


def test_a_reject_is_dated_after_the_payment_it_undoes_and_the_running_balance_follows(setup):
    # Issue 12: "a pain.002 reject is booked as a returned payment dated before that payment
    # (LOC-0004: 2026-12-03 returned_payment 20.00, then 2026-12-07 payment -20.00)".
    world.entry(setup, "F1", "20.00")
    request_id = pay(setup, "click-1", invoices=("F1",)).request_id
    submit(setup, request_id, D(2026, 12, 7))
    later = FixedClock(dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.timezone.utc))
    with setup.transaction() as s:
        accounts.book_submitted_payments(s, later)
        row = s.get_one(DebitRequest, request_id)
        row.status = "rejected"
        accounts.record_returned_payment(s, "pressimmo", row.end_to_end_id, returned_on=D(2026, 11, 30),
                                         reason_code="AM04", idempotency_key="rej-1", clock=later)
    with setup.reader() as s:
        result = statements.statement(s, "pressimmo", "AG-1", clock=later, all_entries=True)
    assert [(line.kind, line.date, line.balance_cents, line.status) for line in result.lines] == [
        ("invoice", D(2026, 10, 1), 2_000, None),
        ("payment", D(2026, 12, 2), 0, "rejected"),
        ("returned_payment", D(2026, 12, 2), 2_000, None),
    ]
    assert result.closing_balance_cents == result.balance_due_cents == 2_000


def test_settled_and_in_flight_payments_are_told_apart_and_csv_says_what_json_says(setup):
    world.entry(setup, "F1", "20.00")
    world.entry(setup, "F2", "30.00")
    first = pay(setup, "click-1", invoices=("F1",)).request_id
    second = pay(setup, "click-2", invoices=("F2",)).request_id
    submit(setup, first)
    submit(setup, second)
    book(setup)
    with setup.transaction() as s:
        s.get_one(DebitRequest, first).status = "settled"
    with setup.reader() as s:
        result = statements.statement(s, "pressimmo", "AG-1", clock=world.clock(), all_entries=True)
    assert [line.status for line in result.lines if line.kind == "payment"] == ["settled", "in_collection"]
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    lines = result.to_dict()["lines"]
    assert [(r["number"], r["date"], r["status"], r["collection_date"], r["balance"]) for r in rows] == [
        (line["number"], line["date"], line["status"] or "", line["collection_date"] or "", line["balance"]) for line in lines
    ]


def test_a_payment_on_account_says_so_on_the_statement(setup):
    from sepa_engine.services import registry
    from sepa_engine.services.inputs import DebitRequestInput

    with setup.transaction() as s:
        result = registry.enqueue_request(s, "pressimmo", DebitRequestInput(mandate="RUM-PRE-AG-1", amount="15.00",
                                                                            on_account=True),
                                          idempotency_key="deposit", clock=world.clock())
    submit(setup, result.id)
    book(setup)
    with setup.reader() as s:
        (line,) = statements.statement(s, "pressimmo", "AG-1", clock=world.clock(), all_entries=True).lines
    assert (line.kind, line.on_account, line.balance_cents) == ("payment", True, -1_500)


def test_a_payment_whose_collection_day_is_past_without_a_bank_answer_shows_as_collected(setup):
    world.entry(setup, "F1", "20.00")
    submit(setup, pay(setup, "click-1", invoices=("F1",)).request_id, D(2026, 11, 24))
    book(setup)
    later = FixedClock(dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc))
    with setup.reader() as s:
        (_, payment) = statements.statement(s, "pressimmo", "AG-1", clock=later, all_entries=True).lines
    assert (payment.status, payment.collection_date) == ("collected", D(2026, 11, 24))
