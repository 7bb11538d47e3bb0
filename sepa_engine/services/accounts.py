"""Customer accounts: reading an account (position, overview), the entries a creditor
records, and the payments and returns booked from debits.

The arithmetic (balance due, collectable balance, allocation) and the reasons reads are made
in a fixed order are in ``account_ledger``. Services never commit: the caller owns the
transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock
from sepa_engine.db.models import Creditor, DebtorAccount, LedgerEntry
from sepa_engine.db.repositories import accounts as repo
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.db.repositories import returns as returns_repo
from sepa_engine.domain import money
from sepa_engine.domain.accounts import CollectionMode, EntryKind, Position, entry_kind
from sepa_engine.domain.mandate import MandateStatus
from sepa_engine.domain.masking import mask_iban
from sepa_engine.services import idempotency
from sepa_engine.services.account_inputs import DETAIL_FIELDS, LedgerEntryInput
from sepa_engine.services.account_ledger import account_of, check_input, creditor_of, fit, load_ledger, signed_amount

log = structlog.get_logger("sepa_engine.accounts")

BOOKING_CHUNK = 5_000


# --- results -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PositionResult:
    creditor_code: str
    account_reference: str
    balance_due_cents: int
    held_cents: int
    in_flight_cents: int
    collectable_cents: int

    def to_dict(self) -> dict[str, object]:
        return {
            "creditor": self.creditor_code,
            "account": self.account_reference,
            "balance_due": signed_amount(self.balance_due_cents),
            "under_dispute": money.format_cents(self.held_cents),
            "requested": money.format_cents(self.in_flight_cents),
            "collectable": money.format_cents(self.collectable_cents),
        }


@dataclass(frozen=True, slots=True)
class EntryResult:
    id: int
    creditor_code: str
    account_reference: str
    kind: str
    number: str
    amount_cents: int
    issue_date: dt.date
    due_date: dt.date | None
    created: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "creditor": self.creditor_code,
            "account": self.account_reference,
            "kind": self.kind,
            "number": self.number,
            "amount": money.format_cents(self.amount_cents),
            "issue_date": self.issue_date.isoformat(),
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class BookingReport:
    booked: int
    amount_cents: int

    def to_dict(self) -> dict[str, object]:
        return {"booked": self.booked, "amount": money.format_cents(self.amount_cents)}


@dataclass(frozen=True, slots=True)
class MandateView:
    reference: str
    status: str
    kind: str
    signed_on: dt.date
    iban: str  # masked
    signed_electronically: bool
    signed_at: dt.datetime | None = None
    signer_name: str | None = None
    evidence_id: str | None = None


@dataclass(frozen=True, slots=True)
class AccountView:
    creditor_code: str
    reference: str
    name: str
    customer_reference: str | None
    collection_mode: str
    schedule_frequency: str | None
    schedule_day: int | None
    automatic_since: dt.date | None
    details: dict[str, str | None]
    mandate: MandateView | None
    position: PositionResult
    # What a portal shows: the "pay my balance" button only when this is true.
    can_pay_now: bool

    def to_dict(self) -> dict[str, object]:
        mandate = None
        if self.mandate is not None:
            mandate = {
                "reference": self.mandate.reference,
                "status": self.mandate.status,
                "kind": self.mandate.kind,
                "signed_on": self.mandate.signed_on.isoformat(),
                "iban": self.mandate.iban,
                "signed_electronically": self.mandate.signed_electronically,
                "signed_at": self.mandate.signed_at.isoformat() if self.mandate.signed_at else None,
                "signer_name": self.mandate.signer_name,
                "evidence_id": self.mandate.evidence_id,
            }
        return {
            "creditor": self.creditor_code,
            "account": self.reference,
            "name": self.name,
            "customer_reference": self.customer_reference,
            "collection_mode": self.collection_mode,
            "schedule": (
                {"frequency": self.schedule_frequency, "day": self.schedule_day,
                 "since": self.automatic_since.isoformat() if self.automatic_since else None}
                if self.collection_mode == CollectionMode.AUTOMATIC.value
                else None
            ),
            "details": dict(self.details),
            "mandate": mandate,
            "position": self.position.to_dict(),
            "can_pay_now": self.can_pay_now,
        }


# --- reading an account --------------------------------------------------------------------
def position(session: Session, creditor_code: str, account_reference: str) -> PositionResult:
    creditor = creditor_of(session, creditor_code)
    account = account_of(session, creditor, account_reference)
    return _position_result(creditor, account, load_ledger(session, account).position)


def _position_result(creditor: Creditor, account: DebtorAccount, pos: Position) -> PositionResult:
    return PositionResult(
        creditor.code, account.reference, pos.balance_due_cents, pos.held_cents, pos.in_flight_cents, pos.collectable_cents
    )


def show_account(session: Session, creditor_code: str, account_reference: str) -> AccountView:
    creditor = creditor_of(session, creditor_code)
    account = account_of(session, creditor, account_reference)
    pos = load_ledger(session, account).position
    mandate = repo.mandate_in_force(session, account)
    view = None
    if mandate is not None:
        signature = repo.signature_of(session, mandate)
        view = MandateView(
            mandate.reference, mandate.status, mandate.kind, mandate.signed_on, mask_iban(mandate.iban),
            signature is not None,
            signature.signed_at if signature else None,
            signature.signer_name if signature else None,
            signature.evidence_id if signature else None,
        )
    can_pay = (
        account.collection_mode == CollectionMode.ON_DEMAND.value
        and pos.collectable_cents > 0
        and mandate is not None
        and MandateStatus(mandate.status) is MandateStatus.ACTIVE
    )
    return AccountView(
        creditor.code, account.reference, account.name, account.customer_reference, account.collection_mode,
        account.schedule_frequency, account.schedule_day, account.automatic_since,
        {name: getattr(account, name) for name in DETAIL_FIELDS if name != "customer_reference"},
        view, _position_result(creditor, account, pos), can_pay,
    )


# --- entries the creditor records ----------------------------------------------------------
def record_entry(
    session: Session,
    creditor_code: str,
    account_reference: str,
    data: LedgerEntryInput,
    *,
    idempotency_key: str,
    clock: Clock,
) -> EntryResult:
    """Record an invoice, a credit note or a fee on an account."""
    key = idempotency.check_key(idempotency_key)
    check_input(data, LedgerEntryInput)
    creditor = creditor_of(session, creditor_code)
    kind = entry_kind(data.kind)
    if not kind.is_recorded_upstream():
        raise errors.InvalidFormat(
            "kind", kind.value, "is booked by the engine from debits and bank returns, not recorded directly"
        )
    number = fit("number", data.number, LedgerEntry.document_number)
    cents = money.parse_amount(data.amount, "amount")
    if data.due_date is not None and data.due_date < data.issue_date:
        raise errors.InvalidDate("due_date", data.due_date.isoformat(), "is before the issue date")
    if data.applies_to is not None and kind is not EntryKind.CREDIT_NOTE:
        raise errors.InvalidFormat("applies_to", data.applies_to, "is only for credit notes")
    label = fit("label", data.label, LedgerEntry.label) if data.label is not None else None
    reference = fit("account", account_reference, DebtorAccount.reference)
    digest = idempotency.content_hash(
        {
            "account": reference,
            "kind": kind.value,
            "number": number,
            "issue_date": data.issue_date,
            "due_date": data.due_date,
            "amount_cents": cents,
            "label": label,
            "applies_to": data.applies_to,
        }
    )
    existing = repo.entry_by_idempotency_key(session, creditor.id, key)
    if existing is not None:
        idempotency.ensure_same(existing, digest, key)
        return _entry_result(creditor, account_of(session, creditor, reference), existing, created=False)
    account = repo.lock_account(session, account_of(session, creditor, reference))
    applies_to_id = None
    if data.applies_to is not None:
        targets = repo.items_by_number(session, account, [data.applies_to])
        if not targets:
            raise errors.NotFound("applies_to", data.applies_to, f"is not an invoice of account {account.reference}")
        applies_to_id = targets[0].id
    if repo.entry_by_number(session, creditor.id, kind, number) is not None:
        raise _duplicate_number(creditor, kind, number)

    def write() -> LedgerEntry:
        return registry_repo.add(
            session,
            LedgerEntry(
                creditor_id=creditor.id,
                debtor_account_id=account.id,
                kind=kind.value,
                document_number=number,
                issue_date=data.issue_date,
                due_date=data.due_date,
                amount_cents=cents,
                label=label,
                applies_to_id=applies_to_id,
                idempotency_key=key,
                content_hash=digest,
                created_at=clock.now(),
            ),
        )

    row, created = idempotency.write_once(
        session, write, lambda: repo.entry_by_idempotency_key(session, creditor.id, key), digest, key,
        lambda: _duplicate_number(creditor, kind, number),
    )
    if created:
        withdrawn: list[int] = []
        if kind is EntryKind.CREDIT_NOTE:
            # Less is due: debits still waiting that would now take more than is due go (issue 12).
            from sepa_engine.services import debit_gate

            session.flush()
            withdrawn = debit_gate.withdraw_credited(session, creditor, account.id, now=clock.now())
        log.info("ledger.recorded", creditor=creditor.code, kind=kind.value, entry_id=row.id,
                 withdrawn_debits=len(withdrawn))
    return _entry_result(creditor, account, row, created)


def _duplicate_number(creditor: Creditor, kind: EntryKind, number: str) -> errors.SepaEngineError:
    return errors.DuplicateIdentifier("number", number, f"is already a {kind.value} of creditor {creditor.code}")


def _entry_result(creditor: Creditor, account: DebtorAccount, row: LedgerEntry, created: bool) -> EntryResult:
    return EntryResult(
        row.id, creditor.code, account.reference, row.kind, row.document_number, row.amount_cents, row.issue_date,
        row.due_date, created,
    )


# --- booking what reached the bank ---------------------------------------------------------
def book_submitted_payments(
    session: Session,
    clock: Clock,
    *,
    batch_id: int | None = None,
    creditor_code: str | None = None,
    chunk_size: int = BOOKING_CHUNK,
) -> BookingReport:
    """Book a payment entry for every debit that reached the bank and has none yet.

    Idempotent: a debit has at most one payment entry (unique per request), so calling
    this again books nothing twice. ``batch_id`` limits the work to one published file
    (what the collection run passes); without it every creditor (or ``creditor_code``) is
    scanned, which is how jobs and the CLI catch up.
    """
    if creditor_code is not None:
        creditor_ids = [creditor_of(session, creditor_code).id]
    elif batch_id is not None:
        creditor_ids = [repo.creditor_of_batch(session, batch_id)]
    else:
        creditor_ids = [creditor.id for creditor in repo.creditors(session)]
    booked = cents = 0
    for creditor_id in creditor_ids:
        if batch_id is not None:
            count, total = _book_batch(session, clock.now(), creditor_id, batch_id, chunk_size)
        else:
            count, total = _book(session, clock.now(), creditor_id, chunk_size=chunk_size)
        booked, cents = booked + count, cents + total
    if booked:
        log.info("ledger.payments_booked", count=booked, amount_cents=cents, batch_id=batch_id)
    return BookingReport(booked, cents)


def _book_batch(session: Session, now: dt.datetime, creditor_id: int, batch_id: int, chunk_size: int) -> tuple[int, int]:
    """One published file's payments in one statement (``repo.book_batch_payments``): the
    hand-over of a file of 100,000 debits booked them in 20 chunks read out and sent back,
    with a Python dict per debit (BENCHMARKS.md, "Handing a file over, set-based")."""
    try:
        with session.begin_nested():
            return repo.book_batch_payments(session, creditor_id, batch_id, now)
    except IntegrityError:
        # Another booking (the catch-up job, ``accounts book``) took some of these meanwhile:
        # the chunked path reads what is left and books it.
        return _book(session, now, creditor_id, batch_id=batch_id, chunk_size=chunk_size)


def _book(
    session: Session,
    now: dt.datetime,
    creditor_id: int,
    *,
    batch_id: int | None = None,
    request_id: int | None = None,
    chunk_size: int = BOOKING_CHUNK,
) -> tuple[int, int]:
    booked = cents = 0
    after = 0
    while True:
        rows = repo.unbooked_requests(
            session, creditor_id=creditor_id, batch_id=batch_id, request_id=request_id, after_id=after, limit=chunk_size
        )
        if not rows:
            return booked, cents
        try:
            with session.begin_nested():
                # Core executemany: a published file may hold a million debits.
                repo.insert_entries(session, [_payment_entry(row, now) for row in rows])
        except IntegrityError:
            # Another booking took some of these meanwhile; read the chunk again.
            continue
        booked += len(rows)
        cents += sum(row.amount_cents for row in rows)
        after = rows[-1].request_id


def _payment_entry(row: repo.UnbookedRow, now: dt.datetime) -> dict[str, object]:
    return {
        "creditor_id": row.creditor_id,
        "debtor_account_id": row.debtor_account_id,
        "kind": EntryKind.PAYMENT.value,
        # The end-to-end id is what the debtor's bank statement shows for this debit.
        "document_number": row.end_to_end_id,
        "issue_date": row.collection_date or row.requested_date,
        "amount_cents": row.amount_cents,
        "label": row.remittance,
        "debit_request_id": row.request_id,
        "created_at": now,
    }


def record_returned_payment(
    session: Session,
    creditor_code: str,
    end_to_end_id: str,
    *,
    returned_on: dt.date,
    reason_code: str | None = None,
    amount_cents: int | None = None,
    idempotency_key: str,
    clock: Clock,
) -> EntryResult:
    """Book the return of a debit (for reconciliation): the money is owed again.

    The debit's payment is booked first if it was not yet; the return then lowers that
    payment's credit, so the invoices it paid are open again.
    """
    key = idempotency.check_key(idempotency_key)
    creditor = creditor_of(session, creditor_code)
    e2e = fit("end_to_end_id", end_to_end_id, LedgerEntry.document_number)
    request = repo.request_by_end_to_end_id(session, creditor.id, e2e)
    if request is None:
        raise errors.NotFound("end_to_end_id", e2e, f"is not a debit of creditor {creditor.code}")
    cents = request.amount_cents if amount_cents is None else money.check_cents(amount_cents)
    if cents > request.amount_cents:
        raise errors.InvalidAmount("amount", money.format_cents(cents), "is more than the debit returned")
    digest = idempotency.content_hash(
        {"end_to_end_id": e2e, "returned_on": returned_on, "reason_code": reason_code, "amount_cents": cents}
    )
    existing = repo.entry_by_idempotency_key(session, creditor.id, key)
    account = repo.lock_account(session, repo.account_of_request(session, request))
    if existing is not None:
        idempotency.ensure_same(existing, digest, key)
        return _entry_result(creditor, account, existing, created=False)
    if repo.payment_of_request(session, request) is None:
        if request.status not in repo.REACHED_BANK:
            raise errors.AccountError("end_to_end_id", e2e, f"never reached the bank (status {request.status}): nothing was paid")
        _book(session, clock.now(), creditor.id, request_id=request.id)

    def write() -> LedgerEntry:
        return registry_repo.add(
            session,
            LedgerEntry(
                creditor_id=creditor.id, debtor_account_id=account.id, kind=EntryKind.RETURNED_PAYMENT.value,
                document_number=e2e, issue_date=returned_on, amount_cents=cents,
                label=fit("reason_code", reason_code, LedgerEntry.label) if reason_code else None,
                debit_request_id=request.id, idempotency_key=key, content_hash=digest, created_at=clock.now(),
            ),
        )

    row, created = idempotency.write_once(
        session, write, lambda: repo.entry_by_idempotency_key(session, creditor.id, key), digest, key,
        lambda: errors.DuplicateIdentifier("end_to_end_id", e2e, "already has a returned payment"),
    )
    return _entry_result(creditor, account, row, created)



@dataclass(frozen=True, slots=True)
class ReturnedPayment:
    """One argument set of ``record_returned_payment``, for ``record_returned_payments``."""

    end_to_end_id: str
    returned_on: dt.date
    idempotency_key: str
    reason_code: str | None = None
    amount_cents: int | None = None


def record_returned_payments(
    session: Session, creditor_code: str, items: Sequence[ReturnedPayment], *, clock: Clock,
    debits: Mapping[str, returns_repo.ReturnedDebitRow] | None = None,
) -> int:
    """``record_returned_payment`` for many debits of one creditor, in a few statements.

    The same checks, errors and entries, in the same order, as calling it for each item in
    turn: a replayed key is recognised (or refused as a conflict), a missing payment is
    booked first, and the rows go to the ledger in one executemany, payment before return
    for each debit. When a unique constraint fails (a concurrent writer), the items are
    recorded one by one instead, which settles each race as the single call does.
    Returns the number of returned-payment entries created.

    ``debits`` are the items' debits by end-to-end id when the caller read them in this
    transaction, as ``returns_repo.returned_debit_rows`` reads them (the reconciliation's
    segment holds them, and the payments read just before): they are not read again.
    """
    if not items:
        return 0
    creditor = creditor_of(session, creditor_code)
    if debits is None:
        requests = returns_repo.returned_debit_rows(
            session, creditor.id, {item.end_to_end_id for item in items}, EntryKind.PAYMENT.value
        )
    else:
        requests = {e2e: row for e2e, row in debits.items() if row.creditor_id == creditor.id}
    existing = returns_repo.entry_hashes_by_keys(
        session, creditor.id, {item.idempotency_key for item in items if isinstance(item.idempotency_key, str)}
    )
    seen: dict[str, str] = {}
    planned: list[tuple[ReturnedPayment, repo.UnbookedRow | None, dict[str, object]]] = []
    accounts: set[int] = set()
    paid: set[int] = set()
    # The table's columns, not the mapped attributes: their lengths are read per item.
    columns = LedgerEntry.__table__.c
    for item in items:
        key = idempotency.check_key(item.idempotency_key)
        e2e = fit("end_to_end_id", item.end_to_end_id, columns.document_number)
        request = requests.get(e2e)
        if request is None:
            raise errors.NotFound("end_to_end_id", e2e, f"is not a debit of creditor {creditor.code}")
        cents = request.amount_cents if item.amount_cents is None else money.check_cents(item.amount_cents)
        if cents > request.amount_cents:
            raise errors.InvalidAmount("amount", money.format_cents(cents), "is more than the debit returned")
        digest = idempotency.canonical_digest(
            {"end_to_end_id": e2e, "returned_on": item.returned_on, "reason_code": item.reason_code, "amount_cents": cents}
        )
        if key in existing or key in seen:
            # A replay, as the single call sees it: same content recognised, other content refused.
            if (existing[key] if key in existing else seen[key]) != digest:
                raise errors.IdempotencyConflict("idempotency_key", key)
            continue
        seen[key] = digest
        payment = None
        if not request.has_payment and request.request_id not in paid:
            if request.status not in repo.REACHED_BANK:
                raise errors.AccountError(
                    "end_to_end_id", e2e, f"never reached the bank (status {request.status}): nothing was paid"
                )
            # Rare (the collection run books payments when it publishes): read as _book reads it.
            (payment,) = repo.unbooked_requests(session, creditor_id=creditor.id, request_id=request.request_id, limit=1)
            paid.add(request.request_id)
        now = clock.now()
        accounts.add(request.debtor_account_id)
        planned.append((item, payment, {
            "creditor_id": creditor.id, "debtor_account_id": request.debtor_account_id,
            "kind": EntryKind.RETURNED_PAYMENT.value, "document_number": e2e, "issue_date": item.returned_on,
            "amount_cents": cents,
            "label": fit("reason_code", item.reason_code, columns.label) if item.reason_code else None,
            "debit_request_id": request.request_id, "idempotency_key": key, "content_hash": digest, "created_at": now,
        }))
    if not planned:
        return 0
    returns_repo.lock_accounts(session, accounts)
    rows: list[dict[str, object]] = []
    for _item, payment, returned in planned:
        if payment is not None:
            rows.append({**_payment_entry(payment, returned["created_at"]), "idempotency_key": None, "content_hash": None})  # type: ignore[arg-type]
        rows.append(returned)
    try:
        with session.begin_nested():
            returns_repo.insert_ledger_entries(session, rows)
    except IntegrityError:
        created = 0
        for item, _payment, _row in planned:
            result = record_returned_payment(
                session, creditor_code, item.end_to_end_id, returned_on=item.returned_on, reason_code=item.reason_code,
                amount_cents=item.amount_cents, idempotency_key=item.idempotency_key, clock=clock,
            )
            created += result.created
        return created
    return len(planned)
