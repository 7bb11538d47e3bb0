"""Queries of the registry: creditors, debtor accounts, mandates and debit requests as
upstream registers them, and the listings operators read.

Listings are keyset-paginated on the primary key (``WHERE id > after ORDER BY id LIMIT n``):
page N costs the same as page 1, and rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from sepa_engine.db import bulk
from sepa_engine.db.models import Base, Creditor, DebitRequest, DebtorAccount, Mandate
from sepa_engine.db.repositories import rowcount, table_of

# Re-exported: creditors are looked up in one place (repositories/creditors.py).
from sepa_engine.db.repositories.creditors import creditor_by_code as creditor_by_code
from sepa_engine.db.repositories.creditors import creditors_by_codes as creditors_by_codes
from sepa_engine.domain.mandate import MandateStatus
from sepa_engine.domain.statuses import RequestStatus

RowT = TypeVar("RowT", bound=Base)

Lock = Literal["share", "update"]

_SUPERSEDED = MandateStatus.SUPERSEDED.value
_PENDING = RequestStatus.PENDING.value


def add(session: Session, row: RowT) -> RowT:
    """Insert ``row`` now (flush), so that constraint violations surface at this call."""
    session.add(row)
    session.flush()
    return row


# --- creditors -----------------------------------------------------------------------------
def creditor_by_identifier(session: Session, creditor_identifier: str) -> Creditor | None:
    return session.scalars(
        select(Creditor).where(Creditor.creditor_identifier == creditor_identifier)
    ).one_or_none()


def creditor_by_idempotency_key(session: Session, key: str) -> Creditor | None:
    return session.scalars(select(Creditor).where(Creditor.idempotency_key == key)).one_or_none()


# --- debtor accounts -----------------------------------------------------------------------
def debtor_account_by_reference(session: Session, creditor_id: int, reference: str) -> DebtorAccount | None:
    return session.scalars(
        select(DebtorAccount).where(
            DebtorAccount.creditor_id == creditor_id, DebtorAccount.reference == reference
        )
    ).one_or_none()


def debtor_account_by_idempotency_key(session: Session, creditor_id: int, key: str) -> DebtorAccount | None:
    return session.scalars(
        select(DebtorAccount).where(
            DebtorAccount.creditor_id == creditor_id, DebtorAccount.idempotency_key == key
        )
    ).one_or_none()


# --- mandates ------------------------------------------------------------------------------
def mandate(session: Session, mandate_id: int) -> Mandate:
    return session.get_one(Mandate, mandate_id)


def mandate_by_idempotency_key(session: Session, creditor_id: int, key: str) -> Mandate | None:
    return session.scalars(
        select(Mandate).where(Mandate.creditor_id == creditor_id, Mandate.idempotency_key == key)
    ).one_or_none()


def mandate_in_force(
    session: Session, creditor_id: int, reference: str, *, lock: Lock | None = None
) -> Mandate | None:
    """The mandate with this reference that is not superseded (at most one: unique index).

    With ``lock``, the row is read under that row lock in the same statement (see
    ``lock_mandate``); on PostgreSQL a row superseded while we waited for the lock is then
    no longer returned.
    """
    query = select(Mandate).where(
        Mandate.creditor_id == creditor_id,
        Mandate.reference == reference,
        Mandate.status != _SUPERSEDED,
    )
    if lock is not None:
        # OF mandates: the debtor account comes in by an outer join, which FOR SHARE refuses.
        query = query.with_for_update(read=lock == "share", of=Mandate).execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()


def latest_superseded(session: Session, creditor_id: int, reference: str) -> Mandate | None:
    return session.scalars(
        select(Mandate)
        .where(
            Mandate.creditor_id == creditor_id,
            Mandate.reference == reference,
            Mandate.status == _SUPERSEDED,
        )
        .order_by(Mandate.id.desc())
        .limit(1)
    ).one_or_none()


def successor_of(session: Session, mandate_id: int) -> Mandate | None:
    return session.scalars(
        select(Mandate).where(Mandate.supersedes_id == mandate_id).order_by(Mandate.id.desc()).limit(1)
    ).one_or_none()


def active_mandate_of_account(session: Session, debtor_account_id: int) -> Mandate | None:
    return session.scalars(
        select(Mandate)
        .where(
            Mandate.debtor_account_id == debtor_account_id,
            Mandate.status == MandateStatus.ACTIVE.value,
        )
        .order_by(Mandate.id.desc())
        .limit(1)
    ).one_or_none()


def lock_mandate(session: Session, row: Mandate, *, shared: bool) -> Mandate:
    """Re-read ``row`` under a row lock (PostgreSQL) and return it with its committed state.

    Shared for enqueueing (many at once on one mandate), exclusive for changing the mandate
    itself, so that a revocation or a replacement never interleaves with an enqueue on the
    same mandate. SQLite ignores the clause: its write transactions are serialised anyway.
    """
    if session.get_bind().dialect.name == "sqlite":
        return row
    # A bare id query takes the lock: FOR UPDATE refuses the outer join that loading the
    # mandate with its debtor account would add.
    session.execute(select(Mandate.id).where(Mandate.id == row.id).with_for_update(read=shared))
    session.refresh(row)
    return row


def move_pending_requests(session: Session, from_mandate_id: int, to_mandate_id: int) -> int:
    """Give the pending requests of one mandate to another; requests already in a file stay."""
    result = session.execute(
        update(DebitRequest)
        .where(DebitRequest.mandate_id == from_mandate_id, DebitRequest.status == _PENDING)
        .values(mandate_id=to_mandate_id)
    )
    return rowcount(result)


def cancel_pending_requests(
    session: Session, mandate_id: int, *, status: RequestStatus, reason: str, at: dt.datetime
) -> int:
    """Move every pending request of a mandate to ``status`` (the caller checked the transition)."""
    result = session.execute(
        update(DebitRequest)
        .where(DebitRequest.mandate_id == mandate_id, DebitRequest.status == _PENDING)
        .values(status=status.value, status_changed_at=at, reason=reason, reason_code=None)
    )
    return rowcount(result)


# --- debit requests ------------------------------------------------------------------------
def request_by_idempotency_key(session: Session, creditor_id: int, key: str) -> DebitRequest | None:
    return session.scalars(
        select(DebitRequest).where(
            DebitRequest.creditor_id == creditor_id, DebitRequest.idempotency_key == key
        )
    ).one_or_none()


# --- listings ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RequestRow:
    id: int
    creditor_code: str
    end_to_end_id: str
    mandate_reference: str
    amount_cents: int
    requested_date: dt.date
    status: str
    reason_code: str | None
    reason: str | None
    batch_id: int | None


@dataclass(frozen=True, slots=True)
class MandateRow:
    id: int
    creditor_code: str
    reference: str
    debtor_account_reference: str
    kind: str
    status: str
    signed_on: dt.date
    iban: str
    bic: str | None
    first_collected_on: dt.date | None
    last_collected_on: dt.date | None
    amendment_pending: bool
    supersedes_id: int | None


def list_requests(
    session: Session,
    *,
    status: RequestStatus | None = None,
    creditor_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[RequestRow]:
    query = (
        select(
            DebitRequest.id,
            Creditor.code,
            DebitRequest.end_to_end_id,
            Mandate.reference,
            DebitRequest.amount_cents,
            DebitRequest.requested_date,
            DebitRequest.status,
            DebitRequest.reason_code,
            DebitRequest.reason,
            DebitRequest.batch_id,
        )
        .join(Creditor, Creditor.id == DebitRequest.creditor_id)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .order_by(DebitRequest.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(DebitRequest.status == status.value)
    if creditor_id is not None:
        query = query.where(DebitRequest.creditor_id == creditor_id)
    if after_id is not None:
        query = query.where(DebitRequest.id > after_id)
    return [RequestRow(*row) for row in session.execute(query)]  # type: ignore[call-arg]  # mypy cannot count a wide select's columns


def list_mandates(
    session: Session,
    *,
    creditor_id: int | None = None,
    status: MandateStatus | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[MandateRow]:
    query = (
        select(
            Mandate.id,
            Creditor.code,
            Mandate.reference,
            DebtorAccount.reference,
            Mandate.kind,
            Mandate.status,
            Mandate.signed_on,
            Mandate.iban,
            Mandate.bic,
            Mandate.first_collected_on,
            Mandate.last_collected_on,
            Mandate.amendment_pending,
            Mandate.supersedes_id,
        )
        .join(Creditor, Creditor.id == Mandate.creditor_id)
        .join(DebtorAccount, DebtorAccount.id == Mandate.debtor_account_id)
        .order_by(Mandate.id)
        .limit(limit)
    )
    if creditor_id is not None:
        query = query.where(Mandate.creditor_id == creditor_id)
    if status is not None:
        query = query.where(Mandate.status == status.value)
    if after_id is not None:
        query = query.where(Mandate.id > after_id)
    return [MandateRow(*row) for row in session.execute(query)]  # type: ignore[call-arg]  # mypy cannot count a wide select's columns


# --- batch enqueue ---------------------------------------------------------------------------


def requests_by_idempotency_keys(session: Session, creditor_id: int, keys: list[str]) -> dict[str, DebitRequest]:
    return {key: row for (_, key), row in requests_by_creditor_keys(session, {creditor_id: keys}).items()}


def requests_by_creditor_keys(session: Session, keys: Mapping[int, Collection[str]]) -> dict[tuple[int, str], DebitRequest]:
    """Requests by (creditor id, idempotency key), for several creditors' keys in one
    statement: a key is unique within its creditor only."""
    if not any(keys.values()):
        return {}
    # One index search per (creditor, key) (bulk.each_owned_key), whatever the statistics say.
    query = bulk.each_owned_key(
        session, select(DebitRequest), DebitRequest.creditor_id, DebitRequest.idempotency_key, keys, entity=DebitRequest,
    )
    return {(row.creditor_id, row.idempotency_key): row for row in session.scalars(query)}


@dataclass(frozen=True, slots=True)
class AccountView:
    name: str
    address_country: str | None
    address_town: str | None


@dataclass(frozen=True, slots=True)
class MandateView:
    """The columns the problem checks read, without building ORM entities (a batch of
    requests may name as many mandates as requests)."""

    id: int
    reference: str
    kind: str
    status: str
    signed_on: dt.date
    iban: str
    bic: str | None
    first_collected_on: dt.date | None
    last_collected_on: dt.date | None
    final_collected: bool
    debtor_account: AccountView
    debtor_account_id: int


def mandates_in_force_of(
    session: Session, references: Mapping[int, Collection[str]], *, share_lock: bool
) -> dict[tuple[int, str], MandateView]:
    """Mandates in force of several creditors' references (creditor id -> references), read
    (and share-locked on PostgreSQL) in one statement; by (creditor id, reference), a
    reference being unique within its creditor only."""
    wanted = {creditor_id: sorted(refs) for creditor_id, refs in references.items() if refs}
    if not wanted:
        return {}
    query = (
        select(
            Mandate.id, Mandate.reference, Mandate.kind, Mandate.status, Mandate.signed_on, Mandate.iban, Mandate.bic,
            Mandate.first_collected_on, Mandate.last_collected_on, Mandate.final_collected,
            DebtorAccount.name, DebtorAccount.address_country, DebtorAccount.address_town, Mandate.creditor_id,
            Mandate.debtor_account_id,
        )
        .join(DebtorAccount, DebtorAccount.id == Mandate.debtor_account_id)
        .where(
            or_(*(and_(Mandate.creditor_id == creditor_id, Mandate.reference.in_(refs)) for creditor_id, refs in sorted(wanted.items()))),
            Mandate.status != _SUPERSEDED,
        )
    )
    # In id order, as every writer locks mandates (ARCHITECTURE, "One lock order"): in the
    # order of the (creditor, reference) index, two mandates could be share-locked against a
    # reconciliation's id order, each transaction holding one the other wanted.
    query = query.order_by(Mandate.id)
    if share_lock:
        query = query.with_for_update(read=True, of=Mandate)
    return {
        (row[13], row[1]): MandateView(*row[:10], debtor_account=AccountView(row[10], row[11], row[12]), debtor_account_id=row[14])
        for row in session.execute(query)
    }


def mandate_view(row: Mandate) -> MandateView:
    account = row.debtor_account
    return MandateView(
        row.id, row.reference, row.kind, row.status, row.signed_on, row.iban, row.bic, row.first_collected_on,
        row.last_collected_on, row.final_collected, AccountView(account.name, account.address_country, account.address_town),
        row.debtor_account_id,
    )


def reserve_request_ids(session: Session, count: int) -> list[int]:
    """Ids for ``count`` new requests, known before they are inserted (so each row can carry
    its final end-to-end id). PostgreSQL: from the table's sequence, safe under concurrency.
    SQLite: above the current maximum, safe because writers hold the database lock
    (transactions begin IMMEDIATE, see db/session.py)."""
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text("SELECT nextval(pg_get_serial_sequence('debit_requests', 'id')) FROM generate_series(1, :n)"),
            {"n": count},
        )
        return [row[0] for row in rows]
    start = (session.scalar(select(func.max(DebitRequest.id))) or 0) + 1
    return list(range(start, start + count))


def insert_requests(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert many requests (ids included): a chunk of a batch enqueue in one statement on
    PostgreSQL, the API's few in one executemany (``bulk.insert_many``)."""
    bulk.insert_many(session, table_of(DebitRequest), rows)

