"""Account statements ("état de compte"): by default the unpaid invoices and fees; on
request every entry of the last twelve months, narrowed by dates or a document number.

Each line carries a running balance. For a full statement it is the account's balance
after that entry (entries before the window make the opening balance, so the figure is
the same whatever the filter); for the unpaid list it is the running total of what is
still open.

Lines follow their ``date``, the day a person would say the entry happened: an invoice's
issue date; for a payment, the day its debit was handed to the bank (its collection date,
often days later, is shown beside it with its state: ``in_collection`` until that day,
``collected`` once it is past with no answer from the bank, ``settled`` when the bank
confirmed it, ``rejected`` or ``returned`` when it failed); for a returned
payment, its own date but never before the payment it undoes. A payment on account says so
(``on_account``). The CSV carries the same columns as the JSON lines.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock, business_today
from sepa_engine.db.models import LedgerEntry
from sepa_engine.db.repositories import accounts as repo
from sepa_engine.domain import money, text
from sepa_engine.domain.accounts import EntryKind, balance_due, running_balances, statement_window_start
from sepa_engine.domain.debit_gate import Pays
from sepa_engine.domain.statuses import RequestStatus
from sepa_engine.services.account_ledger import account_of, creditor_of, load_ledger, signed_amount

UNPAID = "unpaid"
ENTRIES = "entries"


@dataclass(frozen=True, slots=True)
class StatementLine:
    id: int
    kind: str
    number: str
    issue_date: dt.date
    due_date: dt.date | None
    label: str | None
    amount_cents: int
    # +amount or -amount, as the entry moves the balance.
    signed_cents: int
    balance_cents: int
    # Invoices and fees: what is still to pay.
    open_cents: int | None
    under_dispute: bool
    # The date the statement orders by (see the module docstring).
    date: dt.date | None = None
    # Payments: the state of their debit and the day the bank takes the money.
    status: str | None = None
    collection_date: dt.date | None = None
    on_account: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "number": self.number,
            "issue_date": self.issue_date.isoformat(),
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "label": self.label,
            "amount": money.format_cents(self.amount_cents),
            "signed_amount": signed_amount(self.signed_cents),
            "balance": signed_amount(self.balance_cents),
            "open": money.format_cents(self.open_cents) if self.open_cents is not None else None,
            "under_dispute": self.under_dispute,
            "date": (self.date or self.issue_date).isoformat(),
            "status": self.status,
            "collection_date": self.collection_date.isoformat() if self.collection_date else None,
            "on_account": self.on_account,
        }


@dataclass(frozen=True, slots=True)
class Statement:
    creditor_code: str
    account_reference: str
    kind: str
    generated_on: dt.date
    date_from: dt.date | None
    date_to: dt.date | None
    document: str | None
    opening_balance_cents: int
    closing_balance_cents: int
    balance_due_cents: int
    lines: tuple[StatementLine, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "creditor": self.creditor_code,
            "account": self.account_reference,
            "kind": self.kind,
            "generated_on": self.generated_on.isoformat(),
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "document": self.document,
            "opening_balance": signed_amount(self.opening_balance_cents),
            "closing_balance": signed_amount(self.closing_balance_cents),
            "balance_due": signed_amount(self.balance_due_cents),
            "lines": [line.to_dict() for line in self.lines],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow((
            "issue_date", "kind", "number", "due_date", "label", "debit", "credit", "balance", "open", "under_dispute",
            "date", "status", "collection_date", "on_account",
        ))
        for line in self.lines:
            debit = money.format_cents(line.amount_cents) if line.signed_cents > 0 else ""
            credit = money.format_cents(line.amount_cents) if line.signed_cents < 0 else ""
            writer.writerow((
                line.issue_date.isoformat(), line.kind, text.csv_cell(line.number),
                line.due_date.isoformat() if line.due_date else "", text.csv_cell(line.label or ""), debit, credit, signed_amount(line.balance_cents),
                money.format_cents(line.open_cents) if line.open_cents is not None else "",
                "yes" if line.under_dispute else "",
                (line.date or line.issue_date).isoformat(), line.status or "",
                line.collection_date.isoformat() if line.collection_date else "", "yes" if line.on_account else "",
            ))
        return out.getvalue()


def statement(
    session: Session,
    creditor_code: str,
    account_reference: str,
    *,
    clock: Clock,
    all_entries: bool = False,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    document: str | None = None,
) -> Statement:
    creditor = creditor_of(session, creditor_code)
    account = account_of(session, creditor, account_reference)
    today = business_today(clock, creditor.timezone)
    for name, value in (("from", date_from), ("to", date_to)):
        if value is not None and (not isinstance(value, dt.date) or isinstance(value, dt.datetime)):
            raise errors.InvalidFormat(name, f"<{type(value).__name__}>", "must be a date")
    if date_from is not None and date_to is not None and date_to < date_from:
        raise errors.InvalidDate("to", date_to.isoformat(), f"is before from ({date_from.isoformat()})")
    if document is not None and not (isinstance(document, str) and document.strip()):
        raise errors.InvalidFormat("document", document, "must be a document number")
    ledger = load_ledger(session, account)
    items = ledger.items_by_id
    debits = repo.payment_states(session, account)
    dated = _dates(ledger.entries, debits, creditor.timezone)

    def open_of(entry: LedgerEntry) -> int | None:
        return ledger.allocation.open_cents(items[entry.id]) if entry.id in items else None

    def line(entry: LedgerEntry, balance: int) -> StatementLine:
        kind = EntryKind(entry.kind)
        debit = debits.get(entry.debit_request_id) if kind is EntryKind.PAYMENT and entry.debit_request_id else None
        return StatementLine(
            entry.id, entry.kind, entry.document_number, entry.issue_date, entry.due_date, entry.label,
            entry.amount_cents, kind.sign * entry.amount_cents, balance, open_of(entry), entry.id in ledger.disputed,
            dated[entry.id],
            _payment_state(debit, today) if debit else None,
            (debit.collection_date or entry.issue_date) if debit else None,
            bool(debit and debit.pays == Pays.ON_ACCOUNT.value),
        )

    in_order = sorted(ledger.entries, key=lambda entry: (dated[entry.id], entry.id))
    if not all_entries:
        unpaid = [
            entry for entry in in_order
            if entry.id in items and (open_of(entry) or 0) > 0 and _kept(entry, date_from, date_to, document)
        ]
        totals = running_balances(open_of(entry) or 0 for entry in unpaid)
        lines = tuple(line(entry, total) for entry, total in zip(unpaid, totals, strict=True))
        return Statement(
            creditor.code, account.reference, UNPAID, today, date_from, date_to, document, 0,
            totals[-1] if totals else 0, ledger.position.balance_due_cents, lines,
        )

    start = statement_window_start(today)
    if date_from is not None and date_from < start:
        raise errors.InvalidDate(
            "from", date_from.isoformat(), f"is before {start.isoformat()}: a statement covers the last 12 months"
        )
    first = date_from or start
    before = [entry for entry in in_order if dated[entry.id] < first]
    window = [entry for entry in in_order if dated[entry.id] >= first and (date_to is None or dated[entry.id] <= date_to)]
    opening = balance_due((entry.kind, entry.amount_cents) for entry in before)
    balances = running_balances((EntryKind(entry.kind).sign * entry.amount_cents for entry in window), opening)
    lines = tuple(
        line(entry, balance)
        for entry, balance in zip(window, balances, strict=True)
        if document is None or entry.document_number == document
    )
    return Statement(
        creditor.code, account.reference, ENTRIES, today, first, date_to, document, opening,
        balances[-1] if balances else opening, ledger.position.balance_due_cents, lines,
    )


_PAYMENT_STATE = {
    RequestStatus.ASSIGNED.value: "in_collection",
    RequestStatus.SUBMITTED.value: "in_collection",
    RequestStatus.SETTLED.value: "settled",
    RequestStatus.REJECTED.value: "rejected",
    RequestStatus.RETURNED.value: "returned",
    RequestStatus.REFUNDED.value: "returned",
    RequestStatus.REVERSED.value: "returned",
}


def _payment_state(debit: repo.PaymentStateRow, today: dt.date) -> str:
    state = _PAYMENT_STATE.get(debit.status, debit.status)
    if state == "in_collection" and debit.collection_date is not None and debit.collection_date < today:
        # Its day is past and no bank answer said otherwise; only an answer makes it "settled".
        return "collected"
    return state


def _dates(entries: Sequence[LedgerEntry], debits: dict[int, repo.PaymentStateRow], timezone: str) -> dict[int, dt.date]:
    """entry id -> the date the statement shows and orders it by."""
    zone = ZoneInfo(timezone)
    dated: dict[int, dt.date] = {}
    paid_on: dict[int, dt.date] = {}
    for entry in entries:
        if entry.kind == EntryKind.PAYMENT.value:
            # Booked when its file went to the bank; a payment booked late keeps its collection date.
            booked = entry.created_at.astimezone(zone).date() if entry.created_at.tzinfo else entry.created_at.date()
            dated[entry.id] = min(entry.issue_date, booked)
            if entry.debit_request_id is not None:
                paid_on[entry.debit_request_id] = dated[entry.id]
    for entry in entries:
        if entry.id in dated:
            continue
        if entry.kind == EntryKind.RETURNED_PAYMENT.value and entry.debit_request_id in paid_on:
            # A reject or a return comes after the payment it undoes, whatever date the bank gave.
            dated[entry.id] = max(entry.issue_date, paid_on[entry.debit_request_id])
        else:
            dated[entry.id] = entry.issue_date
    return dated


def _kept(entry: LedgerEntry, date_from: dt.date | None, date_to: dt.date | None, document: str | None) -> bool:
    if date_from is not None and entry.issue_date < date_from:
        return False
    if date_to is not None and entry.issue_date > date_to:
        return False
    return document is None or entry.document_number == document
