"""Queries of customer accounts: ledger entries, selections, disputes, schedule slots,
pre-notifications and the history of changes.

Every query takes the creditor (or a row already found under it): nothing of one creditor
is reachable from another. Reads that feed a balance are made in a fixed order (requests in
flight first, then entries); ``services/accounts.py`` says why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Exists, Select, and_, case, exists, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased, lazyload

from sepa_engine.db import bulk
from sepa_engine.db.models import (
    AccountChange,
    AccountChangeField,
    Batch,
    Creditor,
    DebitRequest,
    DebtorAccount,
    Dispute,
    DisputeEvent,
    DisputeInvoice,
    GroupPaymentOrder,
    LedgerEntry,
    Mandate,
    MandateSignature,
    PaymentOrder,
    Prenotification,
    RequestInvoice,
    ScheduleSlot,
)
from sepa_engine.db.repositories import table_of

# Re-exported: creditors are looked up in one place (repositories/creditors.py).
from sepa_engine.db.repositories.creditors import creditor_by_id as creditor_by_id
from sepa_engine.db.repositories.creditors import creditors as creditors
from sepa_engine.domain.accounts import CollectionMode, DisputeStatus, EntryKind
from sepa_engine.domain.mandate import MandateStatus
from sepa_engine.domain.statuses import RequestStatus

# Requests that may still take money and are not yet in the ledger as a payment.
IN_FLIGHT = tuple(
    s.value for s in (RequestStatus.PENDING, RequestStatus.ASSIGNED, RequestStatus.SUBMITTED, RequestStatus.SETTLED)
)
# Requests that reached the bank: each is booked as a payment once (a return is booked apart).
REACHED_BANK = tuple(
    s.value
    for s in (
        RequestStatus.SUBMITTED,
        RequestStatus.SETTLED,
        RequestStatus.REJECTED,
        RequestStatus.RETURNED,
        RequestStatus.REFUNDED,
        RequestStatus.REVERSED,
    )
)
_HOLDING = tuple(s.value for s in DisputeStatus if s.holds_invoices())
_PAYMENT = EntryKind.PAYMENT.value
_RETURNED_PAYMENT = EntryKind.RETURNED_PAYMENT.value
_ITEMS = (EntryKind.INVOICE.value, EntryKind.FEE.value)


# An entry's amount with the sign of its kind (``EntryKind.sign``), in SQL; NULL for a kind the
# domain does not know, which ``_UNKNOWN_KIND`` counts.
_RAISING = [kind.value for kind in EntryKind if kind.sign > 0]
_LOWERING = [kind.value for kind in EntryKind if kind.sign < 0]
_SIGNED_CENTS = case(
    (LedgerEntry.kind.in_(_RAISING), LedgerEntry.amount_cents),
    (LedgerEntry.kind.in_(_LOWERING), -LedgerEntry.amount_cents),
)
_UNKNOWN_KIND = case((LedgerEntry.kind.in_(_RAISING + _LOWERING), 0), else_=1)


def _booked() -> Exists:
    """The debit request has its payment booked: from then on it is a payment entry, no
    longer in flight."""
    return exists().where(LedgerEntry.debit_request_id == DebitRequest.id, LedgerEntry.kind == _PAYMENT)


# --- creditors and accounts ----------------------------------------------------------------
def account_by_customer(session: Session, creditor_id: int, customer_reference: str) -> DebtorAccount | None:
    return session.scalars(
        select(DebtorAccount).where(
            DebtorAccount.creditor_id == creditor_id, DebtorAccount.customer_reference == customer_reference
        )
    ).one_or_none()


def lock_account(session: Session, account: DebtorAccount) -> DebtorAccount:
    """Re-read ``account`` under an exclusive row lock (PostgreSQL).

    Every change of what an account owes or may be collected (entries, disputes, debits)
    takes this lock first, so two portal clicks on one account are decided one after the
    other. SQLite serialises write transactions anyway (BEGIN IMMEDIATE).

    The account's mandates are locked before it (``FOR NO KEY UPDATE``, in id order: a change
    of the account may supersede one, and the foreign-key checks of new debits on them still
    pass): mandates before accounts is the order every writer takes them in. Taken after
    the account, a portal's payment on demand and a file's hand-over, which moves the
    mandates' history before it books the payments, each waited for the other
    (tests/services/test_lock_order.py).
    """
    if session.get_bind().dialect.name == "sqlite":
        return account
    lock_mandates_of(session, [account.id], shared=False)
    session.execute(select(DebtorAccount.id).where(DebtorAccount.id == account.id).with_for_update())
    session.refresh(account)
    return account


def automatic_accounts(session: Session, creditor_id: int, after_id: int, limit: int) -> Sequence[DebtorAccount]:
    return session.scalars(
        select(DebtorAccount)
        .where(
            DebtorAccount.creditor_id == creditor_id,
            DebtorAccount.collection_mode == CollectionMode.AUTOMATIC.value,
            DebtorAccount.id > after_id,
        )
        .order_by(DebtorAccount.id)
        .limit(limit)
    ).all()


def lock_mandates_of(session: Session, account_ids: Iterable[int], *, shared: bool) -> None:
    """Lock every mandate of these accounts, in id order: ``FOR SHARE``, or ``FOR NO KEY
    UPDATE`` (PostgreSQL; SQLite serialises write transactions anyway). For a writer about to
    lock the accounts: mandates before accounts is the order every writer takes them in
    (tests/services/test_lock_order.py)."""
    ids = sorted(set(account_ids))
    if not ids or session.get_bind().dialect.name == "sqlite":
        return
    session.execute(
        select(Mandate.id).where(bulk.one_of(session, Mandate.debtor_account_id, ids)).order_by(Mandate.id)
        .with_for_update(read=shared, key_share=not shared)
    )


def lock_accounts_again(session: Session, accounts: Sequence[DebtorAccount]) -> list[DebtorAccount]:
    """``accounts`` under exclusive row locks taken in id order, re-read, so that what another
    transaction changed while this one waited is what the caller sees (PostgreSQL). SQLite
    serialises write transactions anyway (BEGIN IMMEDIATE): the rows are returned as they are."""
    if not accounts or session.get_bind().dialect.name == "sqlite":
        return list(accounts)
    query = (
        select(DebtorAccount)
        .where(bulk.one_of(session, DebtorAccount.id, sorted(account.id for account in accounts)))
        .order_by(DebtorAccount.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def mandates_of_accounts(session: Session, creditor_id: int, account_ids: Iterable[int]) -> dict[int, list[Mandate]]:
    """account id -> its mandates that are not superseded, oldest first: what ``usable_mandate``
    and ``mandate_in_force`` choose from, for many accounts in one statement."""
    ids = sorted(set(account_ids))
    found: dict[int, list[Mandate]] = {}
    if not ids:
        return found
    # The creditor is checked on the rows (see gate_reads). The callers hold the accounts
    # already: each mandate finds its own in the session, not in a join of every row.
    for mandate in session.scalars(
        select(Mandate)
        .where(bulk.one_of(session, Mandate.debtor_account_id, ids), Mandate.status != MandateStatus.SUPERSEDED.value)
        .order_by(Mandate.id)
        .options(lazyload(Mandate.debtor_account))
    ):
        if mandate.creditor_id == creditor_id:
            found.setdefault(mandate.debtor_account_id, []).append(mandate)
    return found


def usable_mandate(session: Session, account: DebtorAccount) -> Mandate | None:
    """The account's mandate in force (the newest active one)."""
    return session.scalars(
        select(Mandate)
        .where(
            Mandate.creditor_id == account.creditor_id,
            Mandate.debtor_account_id == account.id,
            Mandate.status == MandateStatus.ACTIVE.value,
        )
        .order_by(Mandate.id.desc())
        .limit(1)
    ).one_or_none()


def mandate_in_force(session: Session, account: DebtorAccount) -> Mandate | None:
    """The newest mandate of the account that is not superseded, whatever its state."""
    return session.scalars(
        select(Mandate)
        .where(
            Mandate.creditor_id == account.creditor_id,
            Mandate.debtor_account_id == account.id,
            Mandate.status != MandateStatus.SUPERSEDED.value,
        )
        .order_by(Mandate.id.desc())
        .limit(1)
    ).one_or_none()


def signature_of(session: Session, mandate: Mandate) -> MandateSignature | None:
    return session.scalars(
        select(MandateSignature).where(
            MandateSignature.creditor_id == mandate.creditor_id, MandateSignature.mandate_id == mandate.id
        )
    ).one_or_none()


def signature_by_evidence(session: Session, creditor_id: int, evidence_id: str) -> MandateSignature | None:
    return session.scalars(
        select(MandateSignature).where(
            MandateSignature.creditor_id == creditor_id, MandateSignature.evidence_id == evidence_id
        )
    ).one_or_none()


# --- ledger entries ------------------------------------------------------------------------
def entry_by_idempotency_key(session: Session, creditor_id: int, key: str) -> LedgerEntry | None:
    return session.scalars(
        select(LedgerEntry).where(LedgerEntry.creditor_id == creditor_id, LedgerEntry.idempotency_key == key)
    ).one_or_none()


def entry_by_number(session: Session, creditor_id: int, kind: EntryKind, number: str) -> LedgerEntry | None:
    return session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.creditor_id == creditor_id,
            LedgerEntry.kind == kind.value,
            LedgerEntry.document_number == number,
        )
    ).one_or_none()


def items_by_number(session: Session, account: DebtorAccount, numbers: Iterable[str]) -> list[LedgerEntry]:
    """Invoices and fees of ``account`` with these document numbers (any order)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return []
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(
                LedgerEntry.creditor_id == account.creditor_id,
                LedgerEntry.debtor_account_id == account.id,
                LedgerEntry.kind.in_(_ITEMS),
                LedgerEntry.document_number.in_(wanted),
            )
            .order_by(LedgerEntry.id)
        )
    )


def account_entries(session: Session, account: DebtorAccount) -> list[LedgerEntry]:
    """Every entry of the account in booking order."""
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.creditor_id == account.creditor_id, LedgerEntry.debtor_account_id == account.id)
            .order_by(LedgerEntry.id)
        )
    )


def payment_of_request(session: Session, request: DebitRequest) -> LedgerEntry | None:
    return session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.creditor_id == request.creditor_id,
            LedgerEntry.debit_request_id == request.id,
            LedgerEntry.kind == _PAYMENT,
        )
    ).one_or_none()


@dataclass(frozen=True, slots=True)
class SelectionRow:
    debit_request_id: int
    entry_id: int
    amount_cents: int


def selections(session: Session, account: DebtorAccount) -> list[SelectionRow]:
    """Invoices every debit of the account selected, in request then selection order."""
    rows = session.execute(
        select(RequestInvoice.debit_request_id, RequestInvoice.entry_id, RequestInvoice.amount_cents)
        .join(LedgerEntry, LedgerEntry.id == RequestInvoice.entry_id)
        .where(
            RequestInvoice.creditor_id == account.creditor_id,
            LedgerEntry.debtor_account_id == account.id,
        )
        .order_by(RequestInvoice.debit_request_id, RequestInvoice.id)
    )
    return [SelectionRow(*row) for row in rows]


def add_selection(session: Session, creditor_id: int, request_id: int, entry_id: int, cents: int) -> None:
    session.add(RequestInvoice(creditor_id=creditor_id, debit_request_id=request_id, entry_id=entry_id, amount_cents=cents))
    session.flush()


def add_all(session: Session, rows: Iterable[object]) -> None:
    """Insert ``rows`` now (flush), so that constraint violations surface at this call."""
    session.add_all(rows)
    session.flush()


@dataclass(frozen=True, slots=True)
class InFlightRow:
    id: int
    amount_cents: int
    status: str


def in_flight_requests(session: Session, account: DebtorAccount) -> list[InFlightRow]:
    """Debits of the account that may still take money and are not booked as payments."""
    booked = _booked()
    rows = session.execute(
        select(DebitRequest.id, DebitRequest.amount_cents, DebitRequest.status)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(
            Mandate.debtor_account_id == account.id,
            DebitRequest.creditor_id == account.creditor_id,
            DebitRequest.status.in_(IN_FLIGHT),
            ~booked,
        )
        .order_by(DebitRequest.id)
    )
    return [InFlightRow(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class UnbookedRow:
    request_id: int
    creditor_id: int
    debtor_account_id: int
    amount_cents: int
    end_to_end_id: str
    collection_date: dt.date | None
    requested_date: dt.date
    remittance: str | None


def unbooked_requests(
    session: Session,
    *,
    creditor_id: int,
    batch_id: int | None = None,
    request_id: int | None = None,
    after_id: int = 0,
    limit: int = 1_000,
) -> list[UnbookedRow]:
    """Requests of a creditor that reached the bank and have no payment entry, by id."""
    booked = _booked()
    query = (
        select(
            DebitRequest.id,
            DebitRequest.creditor_id,
            Mandate.debtor_account_id,
            DebitRequest.amount_cents,
            DebitRequest.end_to_end_id,
            DebitRequest.collection_date,
            DebitRequest.requested_date,
            DebitRequest.remittance,
        )
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(
            DebitRequest.creditor_id == creditor_id,
            DebitRequest.status.in_(REACHED_BANK),
            DebitRequest.id > after_id,
            ~booked,
        )
        .order_by(DebitRequest.id)
        .limit(limit)
    )
    if batch_id is not None:
        query = query.where(DebitRequest.batch_id == batch_id)
    if request_id is not None:
        query = query.where(DebitRequest.id == request_id)
    return [UnbookedRow(*row) for row in session.execute(query)]


def book_batch_payments(session: Session, creditor_id: int, batch_id: int, now: dt.datetime) -> tuple[int, int]:
    """Book a payment entry for every request of a published batch that has none yet, in one
    ``INSERT ... SELECT`` from the batch's requests: (count, cents) booked.

    The rows never leave the database: reading them out in chunks and sending them back as
    arrays cost a round trip and a Python dict per debit (``services/accounts.py``, ``_book``).

    PostgreSQL skips the debits already booked with ``ON CONFLICT (debit_request_id, kind) DO
    NOTHING``, not with ``NOT EXISTS``: the ledger's statistics said it held no payments yet,
    so the planner probed the anti-join's index by kind alone and rescanned, for each debit,
    every payment the statement had just inserted (quadratic: over 2 minutes at 100,000).
    The count and sum come from the statement's own RETURNING, so a concurrent booking's rows
    are not counted. SQLite's plan looks the whole key up; its write transaction holds the
    database lock, so a sum read just before the insert is exact.
    """
    rows = (
        select(
            DebitRequest.creditor_id,
            Mandate.debtor_account_id,
            literal(_PAYMENT, LedgerEntry.kind.type),
            # The end-to-end id is what the debtor's bank statement shows for this debit.
            DebitRequest.end_to_end_id,
            func.coalesce(DebitRequest.collection_date, DebitRequest.requested_date),
            DebitRequest.amount_cents,
            DebitRequest.remittance,
            DebitRequest.id,
            literal(now, LedgerEntry.created_at.type),
        )
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(
            DebitRequest.batch_id == batch_id,
            DebitRequest.creditor_id == creditor_id,
            DebitRequest.status.in_(REACHED_BANK),
        )
    )
    columns = (
        "creditor_id", "debtor_account_id", "kind", "document_number", "issue_date",
        "amount_cents", "label", "debit_request_id", "created_at",
    )
    if bulk.is_postgresql(session):
        inserted = (
            postgresql.insert(LedgerEntry)
            .from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["debit_request_id", "kind"])
            .returning(LedgerEntry.amount_cents)
            .cte("inserted")
        )
        count, cents = session.execute(select(func.count(), func.coalesce(func.sum(inserted.c.amount_cents), 0))).one()
        return int(count), int(cents)
    unbooked = rows.where(
        ~exists().where(LedgerEntry.debit_request_id == DebitRequest.id, LedgerEntry.kind == _PAYMENT)
    )
    count, cents = session.execute(
        unbooked.with_only_columns(func.count(), func.coalesce(func.sum(DebitRequest.amount_cents), 0))
    ).one()
    if count:
        session.execute(insert(LedgerEntry).from_select(columns, unbooked))
    return int(count), int(cents)


def insert_entries(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert ledger entries in one statement: ``INSERT ... SELECT FROM unnest`` on PostgreSQL
    (``db/bulk.py``), one executemany on SQLite (no ORM bookkeeping on either)."""
    if rows and bulk.is_postgresql(session):
        bulk.insert(session, table_of(LedgerEntry), rows)
    elif rows:
        session.execute(insert(LedgerEntry), rows)


def insert_invoices(session: Session, rows: list[dict[str, object]]) -> dict[tuple[int, str], int]:
    """Insert invoices as ``insert_entries`` does; (creditor id, number) -> entry id of each
    (a number is unique per creditor, and the rows may be several creditors'), from the
    statement's own RETURNING (reading them back by number took one more search per invoice)."""
    if not rows:
        return {}
    returning = (LedgerEntry.creditor_id, LedgerEntry.document_number, LedgerEntry.id)
    if bulk.is_postgresql(session):
        inserted = bulk.insert(session, table_of(LedgerEntry), rows, returning=[c.key for c in returning])
    else:
        inserted = [tuple(row) for row in session.execute(insert(LedgerEntry).returning(*returning), rows)]
    return {(creditor_id, number): entry_id for creditor_id, number, entry_id in inserted}


def creditor_of_batch(session: Session, batch_id: int) -> int:
    return int(session.scalars(select(Batch.creditor_id).where(Batch.id == batch_id)).one())


def request_by_end_to_end_id(session: Session, creditor_id: int, end_to_end_id: str) -> DebitRequest | None:
    return session.scalars(
        select(DebitRequest).where(DebitRequest.creditor_id == creditor_id, DebitRequest.end_to_end_id == end_to_end_id)
    ).one_or_none()


def account_of_request(session: Session, request: DebitRequest) -> DebtorAccount:
    return session.scalars(
        select(DebtorAccount)
        .join(Mandate, Mandate.debtor_account_id == DebtorAccount.id)
        .where(DebtorAccount.creditor_id == request.creditor_id, Mandate.id == request.mandate_id)
    ).one()


# --- payment orders ------------------------------------------------------------------------
def payment_order_by_key(session: Session, creditor_id: int, key: str) -> PaymentOrder | None:
    return session.scalars(
        select(PaymentOrder).where(PaymentOrder.creditor_id == creditor_id, PaymentOrder.idempotency_key == key)
    ).one_or_none()


def group_order_by_key(session: Session, customer_reference: str, key: str) -> GroupPaymentOrder | None:
    return session.scalars(
        select(GroupPaymentOrder).where(
            GroupPaymentOrder.customer_reference == customer_reference, GroupPaymentOrder.idempotency_key == key
        )
    ).one_or_none()


def orders_of_group(session: Session, group_order_id: int) -> Sequence[PaymentOrder]:
    return session.scalars(
        select(PaymentOrder).where(PaymentOrder.group_order_id == group_order_id).order_by(PaymentOrder.id)
    ).all()


def request(session: Session, creditor_id: int, request_id: int) -> DebitRequest:
    return session.scalars(
        select(DebitRequest).where(DebitRequest.creditor_id == creditor_id, DebitRequest.id == request_id)
    ).one()


def request_selection(session: Session, request: DebitRequest) -> list[tuple[str, int]]:
    """(document number, cents) of the invoices a request pays, in selection order."""
    rows = session.execute(
        select(LedgerEntry.document_number, RequestInvoice.amount_cents)
        .join(LedgerEntry, LedgerEntry.id == RequestInvoice.entry_id)
        .where(RequestInvoice.creditor_id == request.creditor_id, RequestInvoice.debit_request_id == request.id)
        .order_by(RequestInvoice.id)
    )
    return [(number, int(cents)) for number, cents in rows]


# --- disputes ------------------------------------------------------------------------------
def dispute_by_idempotency_key(session: Session, creditor_id: int, key: str) -> Dispute | None:
    return session.scalars(
        select(Dispute).where(Dispute.creditor_id == creditor_id, Dispute.idempotency_key == key)
    ).one_or_none()


def dispute(session: Session, creditor_id: int, dispute_id: int) -> Dispute | None:
    return session.scalars(
        select(Dispute).where(Dispute.creditor_id == creditor_id, Dispute.id == dispute_id)
    ).one_or_none()


def lock_dispute(session: Session, row: Dispute) -> Dispute:
    if session.get_bind().dialect.name == "sqlite":
        return row
    session.execute(select(Dispute.id).where(Dispute.id == row.id).with_for_update())
    session.refresh(row)
    return row


def event_by_idempotency_key(session: Session, creditor_id: int, key: str) -> DisputeEvent | None:
    return session.scalars(
        select(DisputeEvent).where(DisputeEvent.creditor_id == creditor_id, DisputeEvent.idempotency_key == key)
    ).one_or_none()


@dataclass(frozen=True, slots=True)
class DisputeLineRow:
    dispute_id: int
    status: str
    entry_id: int
    document_number: str
    amount_cents: int


def dispute_lines(
    session: Session, account: DebtorAccount, *, dispute_id: int | None = None, holding_only: bool = False
) -> list[DisputeLineRow]:
    query = (
        select(Dispute.id, Dispute.status, DisputeInvoice.entry_id, LedgerEntry.document_number, DisputeInvoice.amount_cents)
        .join(DisputeInvoice, DisputeInvoice.dispute_id == Dispute.id)
        .join(LedgerEntry, LedgerEntry.id == DisputeInvoice.entry_id)
        .where(Dispute.creditor_id == account.creditor_id, Dispute.debtor_account_id == account.id)
        .order_by(Dispute.id, DisputeInvoice.id)
    )
    if dispute_id is not None:
        query = query.where(Dispute.id == dispute_id)
    if holding_only:
        query = query.where(Dispute.status.in_(_HOLDING))
    return [DisputeLineRow(*row) for row in session.execute(query)]


def list_disputes(
    session: Session, creditor_id: int, *, account_id: int | None = None, status: DisputeStatus | None = None
) -> Sequence[Dispute]:
    query = select(Dispute).where(Dispute.creditor_id == creditor_id).order_by(Dispute.id)
    if account_id is not None:
        query = query.where(Dispute.debtor_account_id == account_id)
    if status is not None:
        query = query.where(Dispute.status == status.value)
    return session.scalars(query).all()


def dispute_events(session: Session, dispute: Dispute) -> Sequence[DisputeEvent]:
    return session.scalars(
        select(DisputeEvent)
        .where(DisputeEvent.creditor_id == dispute.creditor_id, DisputeEvent.dispute_id == dispute.id)
        .order_by(DisputeEvent.id)
    ).all()


def credit_note_of_dispute(session: Session, dispute: Dispute) -> LedgerEntry | None:
    return session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.creditor_id == dispute.creditor_id,
            LedgerEntry.dispute_id == dispute.id,
            LedgerEntry.kind == EntryKind.CREDIT_NOTE.value,
        )
    ).one_or_none()


def account_by_id(session: Session, creditor_id: int, account_id: int) -> DebtorAccount:
    return session.scalars(
        select(DebtorAccount).where(DebtorAccount.creditor_id == creditor_id, DebtorAccount.id == account_id)
    ).one()


# --- changes and their history -------------------------------------------------------------
def change_by_idempotency_key(session: Session, creditor_id: int, key: str) -> AccountChange | None:
    return session.scalars(
        select(AccountChange).where(AccountChange.creditor_id == creditor_id, AccountChange.idempotency_key == key)
    ).one_or_none()


def add_change_fields(session: Session, change_id: int, fields: Iterable[tuple[str, str | None, str | None]]) -> None:
    session.add_all(
        AccountChangeField(change_id=change_id, field=name, old_value=old, new_value=new) for name, old, new in fields
    )
    session.flush()


@dataclass(frozen=True, slots=True)
class ChangeRow:
    change_id: int
    kind: str
    actor: str
    changed_at: dt.datetime
    field: str
    old_value: str | None
    new_value: str | None


def account_history(session: Session, account: DebtorAccount) -> list[ChangeRow]:
    rows = session.execute(
        select(
            AccountChange.id,
            AccountChange.kind,
            AccountChange.actor,
            AccountChange.changed_at,
            AccountChangeField.field,
            AccountChangeField.old_value,
            AccountChangeField.new_value,
        )
        .join(AccountChangeField, AccountChangeField.change_id == AccountChange.id)
        .where(AccountChange.creditor_id == account.creditor_id, AccountChange.debtor_account_id == account.id)
        .order_by(AccountChange.id, AccountChangeField.id)
    )
    return [ChangeRow(*row) for row in rows]


def change_fields(session: Session, change: AccountChange) -> list[tuple[str, str | None, str | None]]:
    rows = session.execute(
        select(AccountChangeField.field, AccountChangeField.old_value, AccountChangeField.new_value)
        .join(AccountChange, AccountChange.id == AccountChangeField.change_id)
        .where(AccountChange.creditor_id == change.creditor_id, AccountChangeField.change_id == change.id)
        .order_by(AccountChangeField.id)
    )
    return [(name, old, new) for name, old, new in rows]


# --- schedule and pre-notifications --------------------------------------------------------
def slots_of(session: Session, creditor_id: int, periods: Mapping[int, str]) -> dict[int, ScheduleSlot]:
    """account id -> its slot for the period asked of it (``periods``: account id -> period),
    for the accounts that have one; one statement for a page of accounts."""
    if not periods:
        return {}
    rows = session.scalars(
        select(ScheduleSlot).where(
            bulk.one_of(session, ScheduleSlot.debtor_account_id, sorted(periods)),
            ScheduleSlot.period.in_(sorted(set(periods.values()))),
        )
    )
    return {
        row.debtor_account_id: row for row in rows
        if row.creditor_id == creditor_id and periods.get(row.debtor_account_id) == row.period
    }


def insert_slots(session: Session, rows: list[dict[str, object]]) -> None:
    bulk.insert_many(session, table_of(ScheduleSlot), rows)


def prenotification_ids(session: Session, request_ids: list[int]) -> dict[int, int]:
    """debit request id -> the id of its notice (one per debit), for the debits that have one."""
    if not request_ids:
        return {}
    found = session.execute(
        select(Prenotification.debit_request_id, Prenotification.id).where(
            bulk.one_of(session, Prenotification.debit_request_id, request_ids)
        )
    )
    return {request_id: notice_id for request_id, notice_id in found}


@dataclass(frozen=True, slots=True)
class PrenotificationRow:
    id: int
    creditor_code: str
    creditor_name: str
    creditor_identifier: str
    account_reference: str
    debtor_name: str
    contact_name: str | None
    email: str | None
    mandate_reference: str
    end_to_end_id: str
    period: str | None
    amount_cents: int
    collection_date: dt.date
    issued_on: dt.date
    issued_at: dt.datetime
    kind: str


def prenotifications(
    session: Session,
    creditor_id: int,
    *,
    collection_from: dt.date | None = None,
    collection_to: dt.date | None = None,
    issued_on: dt.date | None = None,
) -> list[PrenotificationRow]:
    query = (
        select(
            Prenotification.id,
            Creditor.code,
            Creditor.name,
            Prenotification.creditor_identifier,
            DebtorAccount.reference,
            DebtorAccount.name,
            DebtorAccount.contact_name,
            DebtorAccount.email,
            Prenotification.mandate_reference,
            DebitRequest.end_to_end_id,
            Prenotification.period,
            Prenotification.amount_cents,
            Prenotification.collection_date,
            Prenotification.issued_on,
            Prenotification.issued_at,
            Prenotification.kind,
        )
        .join(Creditor, Creditor.id == Prenotification.creditor_id)
        .join(DebtorAccount, DebtorAccount.id == Prenotification.debtor_account_id)
        .join(DebitRequest, DebitRequest.id == Prenotification.debit_request_id)
        .where(Prenotification.creditor_id == creditor_id)
        .order_by(Prenotification.collection_date, Prenotification.id)
    )
    if collection_from is not None:
        query = query.where(Prenotification.collection_date >= collection_from)
    if collection_to is not None:
        query = query.where(Prenotification.collection_date <= collection_to)
    if issued_on is not None:
        query = query.where(Prenotification.issued_on == issued_on)
    return [PrenotificationRow(*row) for row in session.execute(query)]  # type: ignore[call-arg]  # mypy cannot count a wide select's columns



# --- the account gate, for many accounts at once -------------------------------------------
@dataclass(frozen=True, slots=True)
class GateAccountRow:
    id: int
    reference: str
    collection_mode: str


@dataclass(frozen=True, slots=True)
class GateReads:
    """What the account gate reads for the accounts of one chunk of debits, by account id."""

    accounts: dict[int, GateAccountRow]
    # account id -> its newest mandate that is not superseded.
    current_mandates: dict[int, int]
    in_flight: dict[int, list[InFlightRow]]
    entries: dict[int, list[LedgerEntry]]
    selections: dict[int, list[SelectionRow]]
    dispute_lines: dict[int, list[DisputeLineRow]]
    # account id -> (balance due, cents in flight), summed by the database, for the accounts
    # asked as ``positions`` that hold no invoice under dispute: their ledgers were not read.
    positions: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)
    # account id -> returned cents that lower no credit (``accounts.unapplied_without_holds``),
    # for the accounts asked as ``newest`` whose position is summed: their newest items come
    # last in the allocation's order, so what those still owe follows from the sums.
    unmatched_returns: dict[int, int] = dataclasses.field(default_factory=dict)


# The creditor the rows a read finds must belong to: one creditor for them all, or each id's
# own (mandate or account id -> creditor id), when one group of enqueues reads several
# creditors' accounts together. Rows of any other creditor are left out.
Owner = int | Mapping[int, int]


def _owner_of(creditor: Owner) -> Callable[[int], int | None]:
    if isinstance(creditor, int):
        return lambda _id: creditor
    return creditor.get


def accounts_of_mandates(session: Session, creditor_id: Owner, mandate_ids: Iterable[int]) -> dict[int, int]:
    """mandate id -> debtor account id (``creditor_id``: one creditor, or each mandate's)."""
    wanted = sorted(set(mandate_ids))
    if not wanted:
        return {}
    # The creditor is checked on the rows (see gate_reads).
    owner_of = _owner_of(creditor_id)
    rows = session.execute(select(Mandate.id, Mandate.debtor_account_id, Mandate.creditor_id).where(bulk.one_of(session, Mandate.id, wanted)))
    return {mandate_id: account_id for mandate_id, account_id, owner in rows if owner == owner_of(mandate_id)}


# What the gate reads first of each account, with the lock on PostgreSQL (``lock_gate_accounts``):
# (account id, reference, collection mode, creditor id, mandate id, its creditor id, its
# status), one row per mandate of the account (the mandate columns None for an account with none).
GateAccountRows = Sequence[tuple[int, str, str, int, int | None, int | None, str | None]]


def lock_gate_accounts(session: Session, account_ids: Collection[int]) -> GateAccountRows | None:
    """The gate's lock on the accounts (PostgreSQL: ``FOR UPDATE``, in id order, so two
    batches never deadlock), which also reads what ``gate_reads`` reads first (the accounts
    and their mandates): give them to it, two round trips less. SQLite serialises writers
    anyway: no lock, and None (``gate_reads`` reads them)."""
    if not account_ids or not bulk.is_postgresql(session):
        return None
    return _gate_accounts(session, account_ids, lock=True)


def _gate_accounts(session: Session, account_ids: Collection[int], *, lock: bool) -> GateAccountRows:
    query = (
        select(
            DebtorAccount.id, DebtorAccount.reference, DebtorAccount.collection_mode, DebtorAccount.creditor_id,
            Mandate.id, Mandate.creditor_id, Mandate.status,
        )
        .outerjoin(Mandate, Mandate.debtor_account_id == DebtorAccount.id)
        .where(bulk.one_of(session, DebtorAccount.id, account_ids))
    )
    if lock:
        query = query.order_by(DebtorAccount.id).with_for_update(of=DebtorAccount)
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in session.connection().execute(query)]


def gate_reads(
    session: Session,
    creditor_id: Owner,
    account_ids: Iterable[int],
    *,
    ledgers: Iterable[int] | None = None,
    positions: Iterable[int] = (),
    newest: Mapping[int, Sequence[tuple[int, dt.date]]] | None = None,
    account_rows: GateAccountRows | None = None,
) -> GateReads:
    """Five to seven statements whatever the number of accounts; requests in flight are read
    before the entries, for the reason ``services/account_ledger.py`` gives. With ``ledgers``,
    the account rows and mandates are read for all ``account_ids`` but the ledgers (requests in
    flight, entries, selections, disputes) only for those: the others have none.

    An account in ``positions`` needs its position only (its debits pay the balance or on
    account). Unless it holds an invoice under dispute (the held amount needs the allocation,
    hence the whole ledger), its balance due and its cents in flight are summed by the
    database (``GateReads.positions``) instead of its history being read and replayed: the
    same sums ``account_ledger.build_ledger`` makes, over the same rows.

    ``newest`` gives, for accounts in ``positions``, the items (entry id, issue date) booked
    just now whose open amounts the caller needs (the invoices requests carry). When they
    come after every other item of the account in the allocation's order (oldest first),
    the account's returned cents that lower no credit are read too
    (``GateReads.unmatched_returns``) and the position is summed; otherwise the account is
    read whole. ``account_rows``: the accounts and their mandates, read by ``lock_gate_accounts``.

    Each statement is driven by the accounts' ids and checks the creditor on the rows read,
    not in its WHERE clause: with both, SQLite (no statistics) walks the creditor's whole
    index instead (every row of a one-creditor ledger), which on a ledger of 1,000,000 debits
    took seconds per chunk of a reconciliation's retries instead of milliseconds. An account
    and everything under it belong to one creditor, so the rows are the same; ``creditor_id``
    is that creditor, or each account's (``Owner``) when several creditors' accounts are read
    together."""
    ids = sorted(set(account_ids))
    ledger_ids = ids if ledgers is None else sorted(set(ledgers) & set(ids))
    owner_of = _owner_of(creditor_id)
    reads = GateReads({}, {}, {}, {}, {}, {i: [] for i in ledger_ids})
    if not ids:
        return reads
    # Through the connection, not the ORM: these are plain rows, thousands a chunk, and the
    # ORM's row loading was a fifth of the gate's time per API enqueue (cProfile). The
    # ORM's autoflush is done here instead.
    session.flush()
    execute = session.connection().execute
    for account_id, reference, mode, account_owner, mandate_id, owner, status in (
        _gate_accounts(session, ids, lock=False) if account_rows is None else account_rows
    ):
        if account_owner != owner_of(account_id):
            continue
        reads.accounts[account_id] = GateAccountRow(account_id, reference, mode)
        if mandate_id is not None and owner == account_owner and status != MandateStatus.SUPERSEDED.value:
            reads.current_mandates[account_id] = max(mandate_id, reads.current_mandates.get(account_id, 0))
    if not ledger_ids:
        return reads
    # Disputes first: an account holding an invoice under dispute is read whole.
    for dispute_id, status, entry_id, number, cents, account_id, owner in execute(
        select(Dispute.id, Dispute.status, DisputeInvoice.entry_id, LedgerEntry.document_number,
               DisputeInvoice.amount_cents, Dispute.debtor_account_id, Dispute.creditor_id)
        .join(DisputeInvoice, DisputeInvoice.dispute_id == Dispute.id)
        .join(LedgerEntry, LedgerEntry.id == DisputeInvoice.entry_id)
        .where(bulk.one_of(session, Dispute.debtor_account_id, ledger_ids))
        .order_by(Dispute.id, DisputeInvoice.id)
    ):
        if owner == owner_of(account_id):
            reads.dispute_lines[account_id].append(DisputeLineRow(dispute_id, status, entry_id, number, cents))
    wanted = set(positions)
    summed = [
        i for i in ledger_ids
        if i in wanted and not any(line.status in _HOLDING for line in reads.dispute_lines[i])
    ]
    if summed:
        _sum_positions(session, creditor_id, summed, reads, {i: newest[i] for i in summed if newest and newest.get(i)})
    whole = [i for i in ledger_ids if i not in reads.positions]
    if whole:
        _read_ledgers(session, creditor_id, whole, reads)
    return reads


def _in_flight_of(session: Session, query: Select[*tuple[Any, ...]], account_ids: list[int]) -> Select[*tuple[Any, ...]]:
    """``query`` over the debits in flight of ``account_ids``: one definition for the summed
    positions and the replayed ledgers, which must count the same rows."""
    return query.join(Mandate, Mandate.id == DebitRequest.mandate_id).where(
        bulk.one_of(session, Mandate.debtor_account_id, account_ids), DebitRequest.status.in_(IN_FLIGHT), ~_booked()
    )


def _sum_positions(
    session: Session,
    creditor_id: Owner,
    account_ids: list[int],
    reads: GateReads,
    newest: Mapping[int, Sequence[tuple[int, dt.date]]],
) -> None:
    """``reads.positions`` for ``account_ids``, in two aggregates (in flight first, as the
    rows are); an account with an entry of a kind the domain does not know is left out, to
    be read whole (``EntryKind`` refuses it there, as it always did). So is an account in
    ``newest`` whose newest items do not come last; for the others the same scan of the
    ledger tells whether ``_unmatched_returns`` has rows to read."""
    execute = session.connection().execute
    owner_of = _owner_of(creditor_id)
    in_flight: dict[int, int] = {}
    for account_id, owner, cents in execute(
        _in_flight_of(
            session, select(Mandate.debtor_account_id, DebitRequest.creditor_id, func.sum(DebitRequest.amount_cents)),
            account_ids,
        ).group_by(Mandate.debtor_account_id, DebitRequest.creditor_id)
    ):
        if owner == owner_of(account_id):
            in_flight[account_id] = int(cents)  # PostgreSQL sums a bigint as numeric
    columns = [LedgerEntry.debtor_account_id, LedgerEntry.creditor_id, func.sum(_SIGNED_CENTS), func.sum(_UNKNOWN_KIND)]
    if newest:
        # The other items' latest issue date and highest id (see _newest_come_last), and
        # whether the account holds returns at all.
        fresh = {entry_id for items in newest.values() for entry_id, _ in items}
        other_item = and_(LedgerEntry.kind.in_(_ITEMS), ~bulk.one_of(session, LedgerEntry.id, fresh))
        columns += [
            func.max(case((other_item, LedgerEntry.issue_date))),
            func.max(case((other_item, LedgerEntry.id))),
            func.sum(case((LedgerEntry.kind == _RETURNED_PAYMENT, 1), else_=0)),
        ]
    balances: dict[int, int] = {}
    read_whole: set[int] = set()
    latest: dict[int, tuple[dt.date, int]] = {}
    with_returns: list[int] = []
    for row in execute(
        select(*columns)
        .where(bulk.one_of(session, LedgerEntry.debtor_account_id, account_ids))
        .group_by(LedgerEntry.debtor_account_id, LedgerEntry.creditor_id)
    ):
        account_id, owner, cents, unknowns = row[:4]
        if owner != owner_of(account_id):
            continue
        if unknowns:
            read_whole.add(account_id)
        balances[account_id] = int(cents or 0)
        if newest:
            if row[4] is not None:
                latest[account_id] = (row[4], row[5])
            if row[6]:
                with_returns.append(account_id)
    read_whole |= set(newest) - _newest_come_last(newest, latest)
    for account_id in account_ids:
        if account_id not in read_whole:
            reads.positions[account_id] = (balances.get(account_id, 0), in_flight.get(account_id, 0))
    last = [i for i in newest if i not in read_whole]
    reads.unmatched_returns.update(dict.fromkeys(last, 0))
    _unmatched_returns(session, creditor_id, [i for i in with_returns if i in reads.unmatched_returns], reads)


def _newest_come_last(
    newest: Mapping[int, Sequence[tuple[int, dt.date]]], latest: Mapping[int, tuple[dt.date, int]]
) -> set[int]:
    """The accounts whose ``newest`` items come after every other item in the allocation's
    order (issue date, then id), judged on the other items' ``latest`` issue date and highest
    id: that may send an account to be read whole when a same-day item has a higher id than
    a newest one, never the other way."""
    come_last: set[int] = set()
    for account_id, items in newest.items():
        first = min((issued, entry_id) for entry_id, issued in items)
        if account_id not in latest or first > latest[account_id]:
            come_last.add(account_id)
    return come_last


def _unmatched_returns(session: Session, creditor_id: Owner, account_ids: list[int], reads: GateReads) -> None:
    """``reads.unmatched_returns`` for ``account_ids``: the cents of their returned payments
    that lower no credit in ``account_ledger.build_ledger`` (a return whose payment is not in
    the account, or the part of a payment's returns above the payment). Returns are few, so
    their rows are read, each with its payment's amount."""
    if not account_ids:
        return
    owner_of = _owner_of(creditor_id)
    payment = aliased(LedgerEntry)
    returned: dict[tuple[int, int], list[int]] = {}
    totals = dict.fromkeys(account_ids, 0)
    for account_id, owner, request_id, cents, paid in session.connection().execute(
        select(LedgerEntry.debtor_account_id, LedgerEntry.creditor_id, LedgerEntry.debit_request_id,
               LedgerEntry.amount_cents, payment.amount_cents)
        .outerjoin(payment, and_(payment.debit_request_id == LedgerEntry.debit_request_id, payment.kind == _PAYMENT,
                                 payment.debtor_account_id == LedgerEntry.debtor_account_id))
        .where(bulk.one_of(session, LedgerEntry.debtor_account_id, account_ids), LedgerEntry.kind == _RETURNED_PAYMENT)
    ):
        if owner != owner_of(account_id):
            continue
        totals[account_id] += cents
        if request_id is not None and paid is not None:
            returned.setdefault((account_id, request_id), [0, paid])[0] += cents
    for (account_id, _), (cents, paid) in returned.items():
        totals[account_id] -= min(cents, paid)
    reads.unmatched_returns.update(totals)


def _read_ledgers(session: Session, creditor_id: Owner, account_ids: list[int], reads: GateReads) -> None:
    """The rows ``account_ledger.build_ledger`` replays, for ``account_ids``."""
    execute = session.connection().execute
    owner_of = _owner_of(creditor_id)
    for i in account_ids:
        reads.in_flight[i], reads.entries[i], reads.selections[i] = [], [], []
    for request_id, cents, status, account_id, owner in execute(
        _in_flight_of(
            session,
            select(DebitRequest.id, DebitRequest.amount_cents, DebitRequest.status, Mandate.debtor_account_id,
                   DebitRequest.creditor_id),
            account_ids,
        ).order_by(DebitRequest.id)
    ):
        if owner == owner_of(account_id):
            reads.in_flight[account_id].append(InFlightRow(request_id, cents, status))
    # Rows, not entities: the ledger reads these columns only, and a chunk may hold thousands.
    for entry in execute(
        select(
            LedgerEntry.id, LedgerEntry.debtor_account_id, LedgerEntry.kind, LedgerEntry.document_number,
            LedgerEntry.issue_date, LedgerEntry.amount_cents, LedgerEntry.debit_request_id, LedgerEntry.dispute_id,
            LedgerEntry.applies_to_id, LedgerEntry.creditor_id,
        )
        .where(bulk.one_of(session, LedgerEntry.debtor_account_id, account_ids))
        .order_by(LedgerEntry.id)
    ):
        if entry.creditor_id == owner_of(entry.debtor_account_id):
            reads.entries[entry.debtor_account_id].append(entry)  # type: ignore[arg-type]
    for request_id, entry_id, cents, account_id, owner in execute(
        select(RequestInvoice.debit_request_id, RequestInvoice.entry_id, RequestInvoice.amount_cents,
               LedgerEntry.debtor_account_id, RequestInvoice.creditor_id)
        .join(LedgerEntry, LedgerEntry.id == RequestInvoice.entry_id)
        .where(bulk.one_of(session, LedgerEntry.debtor_account_id, account_ids))
        .order_by(RequestInvoice.debit_request_id, RequestInvoice.id)
    ):
        if owner == owner_of(account_id):
            reads.selections[account_id].append(SelectionRow(request_id, entry_id, cents))


def invoices_by_creditor_numbers(
    session: Session, numbers: Mapping[int, Collection[str]]
) -> dict[tuple[int, str], LedgerEntry]:
    """Invoices by (creditor id, number), for several creditors' numbers in one statement."""
    wanted = {creditor_id: set(values) for creditor_id, values in numbers.items() if values}
    if not wanted:
        return {}
    # One index search per (creditor, number) (bulk.each_owned_key), whatever the statistics say.
    query = bulk.each_owned_key(
        session, select(LedgerEntry).where(LedgerEntry.kind == EntryKind.INVOICE.value),
        LedgerEntry.creditor_id, LedgerEntry.document_number, wanted, entity=LedgerEntry,
    )
    return {(row.creditor_id, row.document_number): row for row in session.scalars(query)}


def insert_selections(session: Session, rows: list[dict[str, object]]) -> None:
    """Invoices paid by new debits, as ``bulk.insert_many`` sends them (Core: the ORM's bulk
    path adds its bookkeeping per row)."""
    bulk.insert_many(session, table_of(RequestInvoice), rows)


@dataclass(frozen=True, slots=True)
class PaymentStateRow:
    request_id: int
    status: str
    collection_date: dt.date | None
    pays: str | None


def payment_states(session: Session, account: DebtorAccount) -> dict[int, PaymentStateRow]:
    """The debits behind the account's payment entries: their status, collection date and
    what they pay, by request id (one statement)."""
    rows = session.execute(
        select(DebitRequest.id, DebitRequest.status, DebitRequest.collection_date, DebitRequest.pays)
        .join(LedgerEntry, LedgerEntry.debit_request_id == DebitRequest.id)
        .where(
            LedgerEntry.creditor_id == account.creditor_id,
            LedgerEntry.debtor_account_id == account.id,
            LedgerEntry.kind == _PAYMENT,
        )
    )
    return {row[0]: PaymentStateRow(*row) for row in rows}


def pending_requests_of_account(session: Session, account: DebtorAccount) -> list[tuple[int, int, str | None]]:
    """(id, cents, pays) of the account's debits not yet taken into a file, by id."""
    rows = session.execute(
        select(DebitRequest.id, DebitRequest.amount_cents, DebitRequest.pays)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(
            Mandate.debtor_account_id == account.id,
            DebitRequest.creditor_id == account.creditor_id,
            DebitRequest.status == RequestStatus.PENDING.value,
        )
        .order_by(DebitRequest.id)
    )
    return [(row[0], row[1], row[2]) for row in rows]


def held_requests_of_account(session: Session, account: DebtorAccount, batch_id: int) -> list[tuple[int, int, str | None]]:
    """(id, cents, pays) of the account's debits in a file held for approval, by id."""
    rows = session.execute(
        select(DebitRequest.id, DebitRequest.amount_cents, DebitRequest.pays)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(
            Mandate.debtor_account_id == account.id,
            DebitRequest.batch_id == batch_id,
            DebitRequest.status == RequestStatus.ASSIGNED.value,
        )
        .order_by(DebitRequest.id)
    )
    return [(row[0], row[1], row[2]) for row in rows]


def accounts_changed_since(session: Session, batch_id: int, since: dt.datetime) -> set[int]:
    """The accounts of a batch's debits on which, at ``since`` or later, a dispute that holds
    was opened or a credit note was booked: what withdraws pending debits of an account."""
    of_batch = (
        select(Mandate.debtor_account_id)
        .join(DebitRequest, DebitRequest.mandate_id == Mandate.id)
        .where(DebitRequest.batch_id == batch_id)
    )
    disputed = select(Dispute.debtor_account_id).where(
        Dispute.debtor_account_id.in_(of_batch), Dispute.status.in_(_HOLDING), Dispute.opened_at >= since,
    )
    credited = select(LedgerEntry.debtor_account_id).where(
        LedgerEntry.debtor_account_id.in_(of_batch), LedgerEntry.kind == EntryKind.CREDIT_NOTE.value,
        LedgerEntry.created_at >= since,
    )
    return set(session.scalars(disputed.union(credited)))


def cancel_requests(session: Session, ids: Sequence[int], *, reason: str, at: dt.datetime) -> None:
    """Cancel these pending requests (the caller decided which)."""
    if ids:
        session.execute(
            update(DebitRequest)
            .where(DebitRequest.id.in_(list(ids)), DebitRequest.status == RequestStatus.PENDING.value)
            .values(status=RequestStatus.CANCELLED.value, status_changed_at=at, reason=reason, reason_code=None)
        )


def pays_of_requests(session: Session, request_ids: Iterable[int]) -> dict[int, str | None]:
    """request id -> what it pays ("invoices", "balance", "on_account"; None before the gate)."""
    wanted = sorted(set(request_ids))
    if not wanted:
        return {}
    rows = session.execute(select(DebitRequest.id, DebitRequest.pays).where(bulk.one_of(session, DebitRequest.id, wanted)))
    return {row[0]: row[1] for row in rows}
