"""The account gate (issue 12): every debit, whatever door it comes in by, passes one
account check before it is stored, and the same input gets the same refusal everywhere."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.db.models import DebitRequest, LedgerEntry
from sepa_engine.db.repositories import accounts as accounts_repo
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.db.session import Database
from sepa_engine.domain.debit_gate import Origin
from sepa_engine.services import accounts, batch_enqueue, disputes, file_enqueue, loading, on_demand, registry
from sepa_engine.services import debit_gate as debit_gate_service
from sepa_engine.services.account_inputs import DisputeInput, PayNowInput
from sepa_engine.services.batch_enqueue import EnqueueItem
from sepa_engine.services.inputs import DebitRequestInput
from tests import accounts_world as world

MANDATE = "RUM-PRE-AG-1"


@pytest.fixture
def disputed(db: Database) -> Database:
    """AG-1 owes 2,002.50, of which invoice F1 (1,450.00) is under dispute."""
    world.creditor(db)
    world.account(db)
    world.entry(db, "F1", "1450.00")
    world.entry(db, "F2", "552.50")
    with db.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("not ordered", "F1"), actor="portal",
                              idempotency_key="d-1", clock=world.clock())
    return db


def requests_stored(db: Database) -> int:
    with db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(DebitRequest)))


# --- every entry point ------------------------------------------------------------------------
def via_python(db: Database, tmp_path: Path, record: dict[str, object]) -> None:
    with db.transaction() as s:
        registry.enqueue_request(s, "pressimmo", DebitRequestInput.from_mapping(record), idempotency_key="k-1",
                                 clock=world.clock())


def via_batch(db: Database, tmp_path: Path, record: dict[str, object]) -> None:
    with db.transaction() as s:
        batch_enqueue.enqueue_requests(s, "pressimmo", [EnqueueItem("k-1", DebitRequestInput.from_mapping(record))],
                                       clock=world.clock())


def via_load(db: Database, tmp_path: Path, record: dict[str, object]) -> None:
    (tmp_path / "requests.json").write_text(
        json.dumps([{"idempotency_key": "k-1", "creditor": "pressimmo", **record}]), "utf-8"
    )
    with db.transaction() as s:
        report = loading.load_directory(s, tmp_path, clock=world.clock())
    assert report  # loading raises when a record is refused


def via_file(db: Database, tmp_path: Path, record: dict[str, object]) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(json.dumps({"idempotency_key": "k-1", **record}) + "\n", "utf-8")
    with db.transaction() as s:
        file_enqueue.enqueue_file(s, path, creditor="pressimmo", clock=world.clock())


def _reason(rule: str) -> str | None:
    # Files and directories report the reason code at the end of the rule, "... [MS02]".
    found = re.search(r"\[([A-Z0-9]{4})\]$", rule)
    return found.group(1) if found else None


ENTRY_POINTS: dict[str, Callable[[Database, Path, dict[str, object]], None]] = {
    "python": via_python, "batch": via_batch, "load": via_load, "file": via_file,
}


def refusal(entry: str, db: Database, tmp_path: Path, record: dict[str, object]) -> tuple[object, ...]:
    """(code, field, reason code) of the refusal, however the entry point reports it."""
    try:
        ENTRY_POINTS[entry](db, tmp_path, record)
    except file_enqueue.FileRejected as exc:
        (bad,) = exc.report.bad  # type: ignore[attr-defined]
        return bad.code, bad.field, _reason(bad.rule)
    except loading.LoadFailed as exc:
        (error,) = exc.load_errors
        return error.code, error.path, _reason(error.rule)
    except errors.SepaEngineError as exc:
        return exc.code, exc.field, exc.reason_code
    raise AssertionError(f"{entry}: the debit was stored")


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_raw_request_taking_money_under_dispute_is_refused_on_every_entry_point(disputed, tmp_path, entry):
    # Issue 12: "with 1,450.00 of an account's invoices under dispute, a raw request of 2,002.50
    # on that account's mandate was enqueued and collected in full".
    found = refusal(entry, disputed, tmp_path, {"mandate": MANDATE, "amount": "2002.50"})
    assert found == ("amount_exceeds_balance", "amount", "MS02")
    assert requests_stored(disputed) == 0


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_raw_request_on_an_automatic_account_is_refused_on_every_entry_point(db, tmp_path, entry):
    # Issue 12: "a raw request of 850.00 on an account in automatic mode was accepted".
    world.creditor(db)
    world.account(db)
    world.entry(db, "F1", "850.00")
    world.go_automatic(db)
    found = refusal(entry, db, tmp_path, {"mandate": "RUM-E-AG-1", "amount": "850.00"})
    assert found == ("wrong_collection_mode", "collection_mode", None)
    assert requests_stored(db) == 0


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_naming_a_disputed_invoice_is_refused_on_every_entry_point(disputed, tmp_path, entry):
    found = refusal(entry, disputed, tmp_path, {"mandate": MANDATE, "amount": "1450.00", "invoices": ["F1"]})
    assert found == ("invoice_not_payable", "invoices", "MS02")


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_money_already_requested_is_refused_on_every_entry_point(disputed, tmp_path, entry):
    with disputed.transaction() as s:
        registry.enqueue_request(s, "pressimmo", DebitRequestInput(mandate=MANDATE, amount="552.50", invoices=["F2"]),
                                 idempotency_key="first", clock=world.clock())
    assert refusal(entry, disputed, tmp_path, {"mandate": MANDATE, "amount": "552.50"}) == (
        "amount_exceeds_balance", "amount", "AM05",
    )
    assert refusal(entry, disputed, tmp_path, {"mandate": MANDATE, "amount": "1.00", "invoices": ["F2"]}) == (
        "invoice_not_payable", "invoices", "AM05",
    )


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_more_than_is_due_is_refused_on_every_entry_point(db, tmp_path, entry):
    world.creditor(db)
    world.account(db)
    assert refusal(entry, db, tmp_path, {"mandate": MANDATE, "amount": "10.00"}) == ("nothing_due", "amount", "AM09")
    world.entry(db, "F1", "100.00")
    assert refusal(entry, db, tmp_path, {"mandate": MANDATE, "amount": "100.01"}) == (
        "amount_exceeds_balance", "amount", "AM09",
    )


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_mandate_that_is_not_the_accounts_current_one_is_refused_on_every_entry_point(db, tmp_path, entry):
    world.creditor(db)
    world.account(db)
    world.entry(db, "F1", "100.00")
    with db.transaction() as s:
        registry.revoke_mandate(s, "pressimmo", MANDATE, reason="tenant left", clock=world.clock())
        registry.register_mandate(
            s, "pressimmo",
            registry.MandateInput(reference="RUM-NEW", debtor_account="AG-1", signed_on=dt.date(2026, 1, 5),
                                  iban=world.NEW_IBAN),
            idempotency_key="m-new", clock=world.clock(),
        )
    assert refusal(entry, db, tmp_path, {"mandate": MANDATE, "amount": "100.00"}) == (
        "no_usable_mandate", "mandate", "MD01",
    )


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_request_within_what_is_collectable_is_stored_on_every_entry_point(disputed, tmp_path, entry):
    ENTRY_POINTS[entry](disputed, tmp_path, {"mandate": MANDATE, "amount": "552.50"})
    assert world.position(disputed).collectable_cents == 0
    with disputed.reader() as s:
        (row,) = s.scalars(select(DebitRequest)).all()
    assert (row.amount_cents, row.pays) == (55_250, "balance")


# --- a request says what it pays ----------------------------------------------------------------
def book(db: Database) -> None:
    """Hand every pending debit to the bank and book its payment (what a published file does)."""
    with db.transaction() as s:
        for row in s.scalars(select(DebitRequest).where(DebitRequest.status == "pending")):
            row.status, row.collection_date = "submitted", row.requested_date
        s.flush()
        accounts.book_submitted_payments(s, world.clock(), creditor_code="pressimmo")


def carried(number: str = "Q-2026-11", amount: str = "850.00", key: str = "rent-11") -> DebitRequestInput:
    return DebitRequestInput(mandate=MANDATE, amount=amount, remittance=f"Loyer {number}", invoice_number=number,
                             invoice_issue_date=dt.date(2026, 11, 1), invoice_due_date=dt.date(2026, 11, 5))


def test_a_rent_request_carrying_its_invoice_leaves_the_account_owing_nothing_once_collected(db):
    # Issue 12: "every fixed-amount request is booked as a payment that pays no invoice, so every
    # demo tenant ends in credit", and "a 3,000.00 invoice added later became only 759.00 collectable".
    world.creditor(db)
    world.account(db)
    with db.transaction() as s:
        first = registry.enqueue_request(s, "pressimmo", carried(), idempotency_key="rent-11", clock=world.clock())
    assert first.created and world.position(db).balance_due_cents == 85_000
    assert world.position(db).collectable_cents == 0  # the invoice is being collected
    book(db)
    assert world.position(db).balance_due_cents == 0
    world.entry(db, "F-3000", "3000.00")
    assert world.position(db).collectable_cents == 300_000


def test_a_request_carrying_its_invoice_sent_again_books_neither_twice(db):
    world.creditor(db)
    world.account(db)
    with db.transaction() as s:
        registry.enqueue_request(s, "pressimmo", carried(), idempotency_key="rent-11", clock=world.clock())
    with db.transaction() as s:
        again = registry.enqueue_request(s, "pressimmo", carried(), idempotency_key="rent-11", clock=world.clock())
    assert not again.created
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1
    # The same invoice under a new key: it is already being collected, so it is not paid twice.
    with pytest.raises(errors.InvoiceNotPayable) as caught, db.transaction() as s:
        registry.enqueue_request(s, "pressimmo", carried(), idempotency_key="rent-11-bis", clock=world.clock())
    assert caught.value.reason_code == "AM05"
    # The same number with another amount is another invoice: refused, never booked twice.
    with pytest.raises(errors.DuplicateIdentifier) as other, db.transaction() as s:
        registry.enqueue_request(s, "pressimmo", carried(amount="900.00"), idempotency_key="rent-11-ter",
                                 clock=world.clock())
    assert other.value.field == "invoice_number"


def test_a_request_naming_its_invoices_pays_them_and_the_statement_says_so(disputed):
    with disputed.transaction() as s:
        registry.enqueue_request(s, "pressimmo", DebitRequestInput(mandate=MANDATE, amount="552.50", invoices=["F2"]),
                                 idempotency_key="k", clock=world.clock())
    book(disputed)
    with disputed.reader() as s:
        led = accounts.position(s, "pressimmo", "AG-1")
    assert (led.balance_due_cents, led.held_cents, led.collectable_cents) == (145_000, 145_000, 0)


def test_a_payment_on_account_is_stored_only_when_the_request_says_so(db):
    world.creditor(db)
    world.account(db)
    with db.transaction() as s:
        result = registry.enqueue_request(
            s, "pressimmo", DebitRequestInput(mandate=MANDATE, amount="200.00", on_account=True),
            idempotency_key="deposit", clock=world.clock(),
        )
    with db.reader() as s:
        assert s.get(DebitRequest, result.id).pays == "on_account"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"invoices": ["F1"], "on_account": True}, "on_account"),
        ({"invoices": ["F1"], "invoice_number": "X", "invoice_issue_date": "2026-11-01"}, "invoice_number"),
        ({"invoice_number": "X"}, "invoice_issue_date"),
        ({"invoice_due_date": "2026-11-01"}, "invoice_due_date"),
        ({"invoices": []}, "invoices"),
        ({"invoices": ["F1", "F1"]}, "invoices"),
        ({"invoices": ["NOPE"]}, "invoices"),
    ],
)
def test_a_request_that_says_what_it_pays_in_a_malformed_way_is_refused_naming_the_field(disputed, fields, field):
    with pytest.raises(errors.SepaEngineError) as caught, disputed.transaction() as s:
        registry.enqueue_request(
            s, "pressimmo", DebitRequestInput.from_mapping({"mandate": MANDATE, "amount": "1.00", **fields}),
            idempotency_key="k", clock=world.clock(),
        )
    assert caught.value.field == field


def test_two_requests_of_one_batch_never_take_the_same_money(disputed):
    items = [EnqueueItem(f"k{i}", DebitRequestInput(mandate=MANDATE, amount="300.00")) for i in range(2)]
    with pytest.raises(errors.AmountExceedsBalance) as caught, disputed.transaction() as s:
        batch_enqueue.enqueue_requests(s, "pressimmo", items, clock=world.clock())
    assert (caught.value.location, caught.value.reason_code) == ("items[1]", "AM05")


def test_pay_now_and_the_schedule_pass_the_same_gate(disputed):
    with pytest.raises(errors.InvoiceNotPayable) as caught, disputed.transaction() as s:
        on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(invoices=("F1",)), idempotency_key="c",
                          clock=world.clock())
    assert (caught.value.field, caught.value.reason_code) == ("invoices", "MS02")
    assert Origin.SCHEDULE.collects_automatic() and Origin.RETRY.collects_automatic()
    assert not Origin.UPSTREAM.collects_automatic() and not Origin.ON_DEMAND.collects_automatic()


# --- a dispute opened after a debit was asked for ---------------------------------------------
def test_opening_a_dispute_cancels_the_pending_debit_that_pays_the_disputed_invoice(db):
    world.creditor(db)
    world.account(db)
    world.entry(db, "F1", "100.00")
    world.entry(db, "F2", "40.00")
    with db.transaction() as s:
        named = registry.enqueue_request(s, "pressimmo", DebitRequestInput(mandate=MANDATE, amount="100.00",
                                                                           invoices=["F1"]),
                                         idempotency_key="named", clock=world.clock())
        other = registry.enqueue_request(s, "pressimmo", DebitRequestInput(mandate=MANDATE, amount="40.00",
                                                                           invoices=["F2"]),
                                         idempotency_key="other", clock=world.clock())
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("not ordered", "F1"), actor="portal",
                              idempotency_key="d-1", clock=world.clock())
    with db.reader() as s:
        assert s.get_one(DebitRequest, named.id).status == "cancelled"
        assert s.get_one(DebitRequest, other.id).status == "pending"
    assert world.position(db).collectable_cents == 0


def test_opening_a_dispute_cancels_the_newest_balance_debits_that_would_take_disputed_money(db):
    world.creditor(db)
    world.account(db)
    world.entry(db, "F1", "100.00")
    world.entry(db, "F2", "40.00")
    with db.transaction() as s:
        first = registry.enqueue_request(s, "pressimmo", DebitRequestInput(mandate=MANDATE, amount="40.00"),
                                         idempotency_key="b1", clock=world.clock())
        second = registry.enqueue_request(s, "pressimmo", DebitRequestInput(mandate=MANDATE, amount="60.00"),
                                          idempotency_key="b2", clock=world.clock())
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("not ordered", "F1"), actor="portal",
                              idempotency_key="d-1", clock=world.clock())
    with db.reader() as s:
        assert [s.get_one(DebitRequest, r.id).status for r in (first, second)] == ["pending", "cancelled"]


# --- a credit note recorded after a debit was asked for (issue 12) -----------------------------
def _debit(db, key: str, amount: str, **pays: object) -> int:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return registry.enqueue_request(s, "pressimmo", DebitRequestInput(mandate=MANDATE, amount=amount, **pays),  # type: ignore[arg-type]
                                        idempotency_key=key, clock=world.clock()).id


def _status(db, request_id: int) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        row = s.get_one(DebitRequest, request_id)
        return row.status, row.reason


def test_a_credit_note_cancels_the_pending_balance_debit_that_would_take_more_than_is_due(db):
    world.creditor(db)
    world.account(db)
    world.entry(db, "F1", "100.00")
    first, second = _debit(db, "b1", "40.00"), _debit(db, "b2", "60.00")
    world.entry(db, "AV1", "30.00", kind="credit_note")
    assert _status(db, first) == ("pending", None)
    assert _status(db, second) == ("cancelled", debit_gate_service.CREDIT_REASON)
    assert world.position(db).collectable_cents == 30_00


def test_a_credit_note_on_an_invoice_cancels_the_pending_debit_that_pays_it_in_full(db):
    world.creditor(db)
    world.account(db)
    world.entry(db, "F1", "100.00")
    world.entry(db, "F2", "40.00")
    named, other = _debit(db, "n1", "100.00", invoices=["F1"]), _debit(db, "n2", "40.00", invoices=["F2"])
    world.entry(db, "AV1", "30.00", kind="credit_note", applies_to="F1")
    assert _status(db, named) == ("cancelled", debit_gate_service.CREDIT_REASON)
    assert _status(db, other) == ("pending", None)


def test_a_credit_note_leaves_a_debit_already_at_the_bank_alone(db):
    world.creditor(db)
    world.account(db)
    world.entry(db, "F1", "100.00")
    at_bank = _debit(db, "b1", "100.00")
    with db.transaction() as s:
        s.get_one(DebitRequest, at_bank).status = "submitted"
    world.entry(db, "AV1", "30.00", kind="credit_note")
    assert _status(db, at_bank) == ("submitted", None)
    assert world.position(db).balance_due_cents == 70_00


# --- positions summed by the database --------------------------------------------------------
def _gate_positions(db: Database, references: list[str]) -> tuple[dict[str, object], dict[str, object], set[str]]:
    """Each account's position as the gate sums it (``positions``) and as it replays the
    ledger, and which accounts were read whole although only their position was asked."""
    with db.reader() as s:
        creditor = registry_repo.creditor_by_code(s, "pressimmo")
        ids = {ref: registry_repo.debtor_account_by_reference(s, creditor.id, ref).id for ref in references}
        summed_reads = accounts_repo.gate_reads(s, creditor.id, ids.values(), positions=ids.values())
        summed = debit_gate_service._facts(summed_reads)
        replayed = debit_gate_service.account_facts(s, creditor.id, set(ids.values()))
    whole = {ref for ref, i in ids.items() if i not in summed_reads.positions}
    return ({ref: summed[i].position for ref, i in ids.items()},
            {ref: replayed[i].position for ref, i in ids.items()}, whole)


def test_the_gate_sums_a_balance_debits_position_in_the_database_as_the_replayed_ledger_gives_it(db):
    world.creditor(db)
    for ref in ("AG-1", "AG-2", "AG-3"):
        world.account(db, reference=ref)
    # AG-1: invoices, a fee, a credit note and debits in flight; AG-2: nothing at all;
    # AG-3: an invoice under dispute, whose held amount needs the allocation.
    world.entry(db, "F1", "1450.00")
    world.entry(db, "F2", "552.50")
    world.entry(db, "FEE-1", "7.50", kind="fee")
    world.entry(db, "AV-1", "100.00", kind="credit_note")
    world.entry(db, "F3", "300.00", reference="AG-3")
    with db.transaction() as s:
        on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(amount="500.00"), idempotency_key="now-1", clock=world.clock())
        disputes.open_dispute(s, "pressimmo", "AG-3", DisputeInput.of("not ordered", "F3"), actor="portal",
                              idempotency_key="d-3", clock=world.clock())

    summed, replayed, whole = _gate_positions(db, ["AG-1", "AG-2", "AG-3"])

    assert summed == replayed
    assert replayed["AG-1"].balance_due_cents == 1_910_00 and replayed["AG-1"].in_flight_cents == 500_00
    assert replayed["AG-3"].held_cents == 300_00
    assert whole == {"AG-3"}


def test_a_balance_debit_decided_on_summed_positions_takes_no_money_already_requested(db):
    world.creditor(db)
    world.account(db)
    world.entry(db, "F1", "100.00")
    first = {"mandate": MANDATE, "amount": "60.00"}
    with db.transaction() as s:
        batch_enqueue.enqueue_requests(s, "pressimmo", [EnqueueItem("k-1", DebitRequestInput.from_mapping(first))],
                                       clock=world.clock())
    with db.transaction() as s, pytest.raises(errors.AmountExceedsBalance) as refused:
        batch_enqueue.enqueue_requests(
            s, "pressimmo", [EnqueueItem("k-2", DebitRequestInput.from_mapping({"mandate": MANDATE, "amount": "50.00"}))],
            clock=world.clock(),
        )
    assert refused.value.reason_code == "AM05"
    assert requests_stored(db) == 1


def _newest_invoice_facts(db: Database, references: list[str]) -> tuple[dict[str, object], dict[str, object], set[str]]:
    """Each account's newest invoice as the gate decides it for an invoice a request carries
    (from the sums, ``newest``) and as the replayed ledger gives it, and which accounts were
    read whole instead."""
    with db.reader() as s:
        creditor = registry_repo.creditor_by_code(s, "pressimmo")
        ids = {ref: registry_repo.debtor_account_by_reference(s, creditor.id, ref).id for ref in references}
        newest: dict[int, list[debit_gate_service.BookedInvoice]] = {}
        for account_id in ids.values():
            row = s.scalars(select(LedgerEntry).where(LedgerEntry.debtor_account_id == account_id,
                                                      LedgerEntry.kind == "invoice").order_by(LedgerEntry.id.desc())).first()
            newest[account_id] = [debit_gate_service.BookedInvoice(row.document_number, account_id, row.issue_date,
                                                              row.amount_cents, row.id)]
        reads = accounts_repo.gate_reads(
            s, creditor.id, ids.values(), positions=ids.values(),
            newest={i: [(b.entry_id, b.issue_date) for b in booked] for i, booked in newest.items()},
        )
        fast = debit_gate_service._facts(reads, newest=newest)
        replayed = debit_gate_service.account_facts(s, creditor.id, set(ids.values()))
    number = {i: booked[0].number for i, booked in newest.items()}
    whole = {ref for ref, i in ids.items() if i not in reads.positions}
    return ({ref: fast[i].invoices.get(number[i]) for ref, i in ids.items() if ref not in whole},
            {ref: replayed[i].invoices[number[i]] for ref, i in ids.items() if ref not in whole}, whole)


def _returned(db: Database, reference: str, number: str, cents: int, request_id: int | None) -> None:
    """A returned payment booked as a bank file may report it (not through the services,
    which only book a return of a payment the ledger holds)."""
    with db.transaction() as s:
        creditor = registry_repo.creditor_by_code(s, "pressimmo")
        account = registry_repo.debtor_account_by_reference(s, creditor.id, reference)
        s.add(LedgerEntry(creditor_id=creditor.id, debtor_account_id=account.id, kind="returned_payment",
                          document_number=number, issue_date=dt.date(2026, 10, 20), amount_cents=cents,
                          debit_request_id=request_id, created_at=world.NOW))


def test_an_invoice_a_request_carries_owes_from_the_sums_what_the_replayed_ledger_says(db):
    world.creditor(db)
    for ref in ("AG-1", "AG-2", "AG-3", "AG-4", "AG-5"):
        world.account(db, reference=ref)
    # AG-1: in credit by 100.00, which pays most of its newest invoice.
    world.entry(db, "F1", "200.00")
    world.entry(db, "AV-1", "300.00", kind="credit_note")
    world.entry(db, "F1-NEW", "120.00", issued=dt.date(2026, 11, 1))
    # AG-2: a payment of 50.00 returned for 80.00 and a return of 25.00 without its payment: the
    # 30.00 and the 25.00 raise the balance but lower no credit.
    world.entry(db, "F2", "50.00", reference="AG-2")
    with db.transaction() as s:
        on_demand.pay_now(s, "pressimmo", "AG-2", PayNowInput(amount="50.00"), idempotency_key="now-2", clock=world.clock())
        paid = s.scalars(select(DebitRequest).where(DebitRequest.idempotency_key.like("%now-2%"))).one()
        paid.status, paid.collection_date = "submitted", paid.requested_date
        s.flush()
        accounts.book_submitted_payments(s, world.clock(), creditor_code="pressimmo")
        request_id = paid.id
    world.entry(db, "AV-2", "400.00", kind="credit_note", reference="AG-2")
    _returned(db, "AG-2", "R-1", 80_00, request_id)
    _returned(db, "AG-2", "R-2", 25_00, None)
    world.entry(db, "F2-NEW", "400.00", reference="AG-2", issued=dt.date(2026, 11, 1))
    # AG-3: a return of a debit never booked as a payment (10.00, lowers no credit), then a
    # credit note of 25.00: 15.00 left over for the new invoice.
    world.entry(db, "F3", "10.00", reference="AG-3")
    with db.transaction() as s:
        unbooked = on_demand.pay_now(s, "pressimmo", "AG-3", PayNowInput(amount="10.00"), idempotency_key="now-3",
                                     clock=world.clock())
    _returned(db, "AG-3", "R-3", 10_00, unbooked.request_id)
    world.entry(db, "AV-3", "25.00", kind="credit_note", reference="AG-3")
    world.entry(db, "F3-NEW", "75.00", reference="AG-3", issued=dt.date(2026, 11, 1))
    # AG-4: an older invoice issued after the new one: the new one is not last, read whole.
    world.entry(db, "F4", "60.00", reference="AG-4", issued=dt.date(2026, 11, 15))
    world.entry(db, "AV-4", "100.00", kind="credit_note", reference="AG-4")
    world.entry(db, "F4-NEW", "90.00", reference="AG-4", issued=dt.date(2026, 11, 1))
    # AG-5: an invoice under dispute: read whole.
    world.entry(db, "F5", "60.00", reference="AG-5")
    world.entry(db, "F5-NEW", "90.00", reference="AG-5", issued=dt.date(2026, 11, 1))
    with db.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-5", DisputeInput.of("not ordered", "F5"), actor="portal",
                              idempotency_key="d-5", clock=world.clock())

    fast, replayed, whole = _newest_invoice_facts(db, ["AG-1", "AG-2", "AG-3", "AG-4", "AG-5"])

    assert fast == replayed
    assert whole == {"AG-4", "AG-5"}
    assert {ref: facts.open_cents for ref, facts in replayed.items()} == {"AG-1": 20_00, "AG-2": 50_00, "AG-3": 60_00}


def test_a_carried_invoice_on_an_account_in_credit_is_refused_for_what_the_credit_already_pays(db):
    world.creditor(db)
    world.account(db)
    world.entry(db, "AV-1", "100.00", kind="credit_note")
    carried = {"mandate": MANDATE, "amount": "150.00", "invoice_number": "F-NEW", "invoice_issue_date": "2026-11-01"}
    with db.transaction() as s, pytest.raises(errors.AmountExceedsBalance) as refused:
        batch_enqueue.enqueue_requests(s, "pressimmo", [EnqueueItem("k-1", DebitRequestInput.from_mapping(carried))],
                                       clock=world.clock())
    assert refused.value.reason_code == "AM09" and "50.00" in refused.value.rule
    assert requests_stored(db) == 0
