"""The ledger of one customer account read once, what it owes, and the lookups every
account service shares.

What a new debit may take is the *collectable balance*::

    balance due - open amounts of invoices under dispute - debits requested and not yet booked

The last term is what stops the same money being collected twice: two clicks on "pay my
balance", or a click and the automatic schedule, each see the other's request. A debit
counts there from its creation until it is booked as a payment, which happens when its
file is handed to the bank (``accounts.book_submitted_payments``); from then on the payment entry
lowers the balance due instead.

Consistency without a stricter isolation level: every mutation that changes an account's
position (entries, disputes, debits) first locks the account row, so two of them are
decided one after the other. Booking payments does not lock (it runs inside the collection
run's publication); it turns a request in flight into a payment entry in one transaction,
and ``load_ledger`` reads the requests in flight *before* the entries, so a booking that
commits between the two reads makes the debit count twice (nothing collected) and never
zero times (collected twice).

Services never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.db.models import Creditor, DebtorAccount, LedgerEntry, Mandate
from sepa_engine.db.repositories import accounts as repo
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.domain import money
from sepa_engine.domain.accounts import (
    ITEM_KINDS,
    Allocation,
    Credit,
    DisputeStatus,
    EntryKind,
    Item,
    Position,
    allocate,
    balance_due,
    held_cents,
)
from sepa_engine.domain.mandate import MandateStatus, check_collectable
from sepa_engine.domain.masking import mask_reference
from sepa_engine.services import problems

ACTOR_MAX = 100
_PAYMENT = EntryKind.PAYMENT.value
_CREDIT_NOTE = EntryKind.CREDIT_NOTE.value
_RETURNED_PAYMENT = EntryKind.RETURNED_PAYMENT.value


# --- shared lookups and checks (used by the other account services) ------------------------
def creditor_of(session: Session, code: object) -> Creditor:
    if not isinstance(code, str):
        raise errors.InvalidFormat("creditor", f"<{type(code).__name__}>", "must be a string")
    row = registry_repo.creditor_by_code(session, code)
    if row is None:
        raise errors.NotFound("creditor", code, "is not a registered creditor")
    return row


def account_of(session: Session, creditor: Creditor, reference: object) -> DebtorAccount:
    """The debtor account ``reference`` of ``creditor``; another creditor's account is not found."""
    text = fit("account", reference, DebtorAccount.reference)
    row = registry_repo.debtor_account_by_reference(session, creditor.id, text)
    if row is None:
        raise errors.NotFound("account", text, f"is not an account of creditor {creditor.code}")
    return row


def fit(field_name: str, value: object, column: Any, *, shown: str | None = None) -> str:
    """``value`` when it is a non-blank string that fits ``column``."""
    if not isinstance(value, str):
        raise errors.InvalidFormat(field_name, f"<{type(value).__name__}>", "must be a string")
    if not value.strip():
        raise errors.InvalidLength(field_name, value, "is empty", shown_value=shown)
    limit = column.type.length
    if len(value) > limit:
        raise errors.InvalidLength(field_name, value, f"is longer than {limit} characters", shown_value=shown)
    return value


def actor_name(actor: object) -> str:
    if not isinstance(actor, str):
        raise errors.InvalidFormat("actor", f"<{type(actor).__name__}>", "must be a string")
    if not actor.strip():
        raise errors.InvalidLength("actor", actor, "is empty: say who acts (a user, a service)")
    if len(actor) > ACTOR_MAX:
        raise errors.InvalidLength("actor", actor, f"is longer than {ACTOR_MAX} characters")
    return actor


def check_input(data: object, kind: type) -> None:
    if not isinstance(data, kind):
        raise errors.InvalidFormat("data", f"<{type(data).__name__}>", f"must be a {kind.__name__}")


# --- the ledger of one account -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ledger:
    """Everything an account's position is computed from, read once."""

    entries: tuple[LedgerEntry, ...]
    items: tuple[Item, ...]
    allocation: Allocation
    # entry id -> disputed cents, for invoices under an open dispute.
    disputed: dict[int, int]
    # entry id -> cents selected by debits in flight.
    selected_in_flight: dict[int, int]
    position: Position
    # The items by entry id: the gate asks the open amount of every invoice of an account, and
    # a search of the items for each made that quadratic in the account's history.
    items_by_id: dict[int, Item]

    def open_cents(self, entry_id: int) -> int:
        """What the item ``entry_id`` still owes."""
        return self.allocation.open_cents(self.items_by_id[entry_id])


def load_ledger(session: Session, account: DebtorAccount) -> Ledger:
    # Requests in flight first, then entries: see the module docstring.
    flight = repo.in_flight_requests(session, account)
    entries = repo.account_entries(session, account)
    selections = repo.selections(session, account)
    lines = repo.dispute_lines(session, account)
    return build_ledger(entries, flight, selections, lines)


def build_ledger(
    entries: Sequence[LedgerEntry],
    flight: Sequence[repo.InFlightRow],
    selections: Sequence[repo.SelectionRow],
    lines: Sequence[repo.DisputeLineRow],
) -> Ledger:
    disputed: dict[int, int] = defaultdict(int)
    by_dispute: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for line in lines:
        by_dispute[line.dispute_id].append((line.entry_id, line.amount_cents))
        if DisputeStatus(line.status).holds_invoices():
            disputed[line.entry_id] += line.amount_cents
    by_request: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for selection in selections:
        by_request[selection.debit_request_id].append((selection.entry_id, selection.amount_cents))
    returned: dict[int, int] = defaultdict(int)
    for entry in entries:
        if entry.kind == _RETURNED_PAYMENT and entry.debit_request_id is not None:
            returned[entry.debit_request_id] += entry.amount_cents

    items: list[Item] = []
    credits: list[Credit] = []
    for entry in entries:
        kind = entry.kind  # the stored value: see accounts.ITEM_KINDS
        if kind in ITEM_KINDS:
            items.append(Item(entry.id, entry.issue_date, entry.amount_cents, held=entry.id in disputed))
        elif kind == _PAYMENT:
            request_id = entry.debit_request_id
            net = entry.amount_cents - (returned.get(request_id, 0) if request_id is not None else 0)
            credits.append(Credit(entry.id, net, tuple(by_request.get(request_id, ())) if request_id else ()))
        elif kind == _CREDIT_NOTE:
            if entry.dispute_id is not None:
                preferred = tuple(by_dispute.get(entry.dispute_id, ()))
            elif entry.applies_to_id is not None:
                preferred = ((entry.applies_to_id, entry.amount_cents),)
            else:
                preferred = ()
            credits.append(Credit(entry.id, entry.amount_cents, preferred))
    allocation = allocate(items, credits)
    in_flight_ids = {row.id for row in flight}
    selected: dict[int, int] = defaultdict(int)
    for selection in selections:
        if selection.debit_request_id in in_flight_ids:
            selected[selection.entry_id] += selection.amount_cents
    position = Position(
        balance_due_cents=balance_due((entry.kind, entry.amount_cents) for entry in entries),
        held_cents=held_cents(items, allocation, disputed),
        in_flight_cents=sum(row.amount_cents for row in flight),
    )
    return Ledger(
        tuple(entries), tuple(items), allocation, dict(disputed), dict(selected), position,
        {item.id: item for item in items},
    )


def signed_amount(cents: int) -> str:
    """Cents as euros with a sign for negatives (a balance in the customer's favour)."""
    return ("-" if cents < 0 else "") + money.format_cents(abs(cents))



# --- mandate and documents of an account ---------------------------------------------------
def usable_mandate(session: Session, account: DebtorAccount, on: dt.date, field_name: str = "mandate") -> Mandate:
    """The mandate a new debit of ``account`` would use on ``on``, or ``NoUsableMandate``."""
    row = repo.usable_mandate(session, account)
    latest = repo.mandate_in_force(session, account) if row is None else None
    return _usable(account, row, latest, on, field_name)


def usable_mandates(
    session: Session, creditor_id: int, accounts: Sequence[DebtorAccount], on: Mapping[int, dt.date]
) -> dict[int, Mandate | errors.NoUsableMandate]:
    """``usable_mandate`` of many accounts of one creditor (each on its date, ``on``: account
    id -> date) in one read: account id -> the mandate, or the refusal ``usable_mandate`` raises."""
    by_account = repo.mandates_of_accounts(session, creditor_id, on)
    found: dict[int, Mandate | errors.NoUsableMandate] = {}
    for account in accounts:
        rows = by_account.get(account.id, [])
        # The same choice as the single reads: the newest active mandate, else the newest
        # that is not superseded, to say why there is none.
        active = next((row for row in reversed(rows) if row.status == MandateStatus.ACTIVE.value), None)
        try:
            found[account.id] = _usable(account, active, rows[-1] if rows else None, on[account.id], "mandate")
        except errors.NoUsableMandate as exc:
            found[account.id] = exc
    return found


def _usable(account: DebtorAccount, row: Mandate | None, latest: Mandate | None, on: dt.date, field_name: str) -> Mandate:
    if row is None:
        if latest is None:
            raise errors.NoUsableMandate(field_name, None, f"is missing: account {account.reference} has no mandate")
        raise errors.NoUsableMandate(
            field_name, latest.reference, f"is {latest.status}: a new mandate is needed",
            shown_value=mask_reference(latest.reference),
        )
    try:
        check_collectable(problems.domain_mandate(row), max(on, row.signed_on))
    except errors.MandateError as exc:
        raise errors.NoUsableMandate(field_name, row.reference, exc.rule, shown_value=mask_reference(row.reference)) from None
    return row


def items_by_number(session: Session, account: DebtorAccount, numbers: Sequence[str]) -> dict[str, LedgerEntry]:
    """The account's invoices and fees by document number."""
    found: dict[str, LedgerEntry] = {}
    for entry in repo.items_by_number(session, account, numbers):
        # An invoice and a fee may share a number; the invoice is what a customer means.
        if entry.document_number not in found or entry.kind == EntryKind.INVOICE.value:
            found[entry.document_number] = entry
    return found


