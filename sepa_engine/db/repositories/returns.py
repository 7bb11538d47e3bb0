"""Queries of the reconciliation (all of them live here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sepa_engine.db.models import (
    Batch,
    Creditor,
    DebitRequest,
    DebtorAccount,
    LedgerEntry,
    Mandate,
    PaymentBlock,
    RequestInvoice,
)
from sepa_engine.db.returns_models import (
    AppliedReturn,
    ReasonCodePolicy,
    ReturnException,
    ReturnFile,
)


# --- files ---------------------------------------------------------------------------------
def file_by_sha256(session: Session, sha256: str) -> ReturnFile | None:
    return session.scalars(select(ReturnFile).where(ReturnFile.sha256 == sha256)).first()


def add(session: Session, row: object) -> None:
    session.add(row)
    session.flush()


# --- what records point at -----------------------------------------------------------------
def request_by_end_to_end_id(session: Session, end_to_end_id: str) -> DebitRequest | None:
    return session.scalars(select(DebitRequest).where(DebitRequest.end_to_end_id == end_to_end_id)).first()


def request_by_id(session: Session, request_id: int) -> DebitRequest | None:
    return session.get(DebitRequest, request_id)


def batch_by_message_id(session: Session, message_id: str) -> Batch | None:
    return session.scalars(select(Batch).where(Batch.message_id == message_id)).first()


def batch_by_id(session: Session, batch_id: int) -> Batch | None:
    return session.get(Batch, batch_id)


def block_by_payment_info_id(session: Session, payment_info_id: str) -> PaymentBlock | None:
    return session.scalars(select(PaymentBlock).where(PaymentBlock.payment_info_id == payment_info_id)).first()


def requests_of_batch(session: Session, batch_id: int, statuses: Sequence[str]) -> list[DebitRequest]:
    query = select(DebitRequest).where(DebitRequest.batch_id == batch_id, DebitRequest.status.in_(statuses))
    return list(session.scalars(query.order_by(DebitRequest.id)))


def requests_of_block(session: Session, block_id: int, statuses: Sequence[str], amount_cents: int | None = None) -> list[DebitRequest]:
    query = select(DebitRequest).where(DebitRequest.block_id == block_id, DebitRequest.status.in_(statuses))
    if amount_cents is not None:
        query = query.where(DebitRequest.amount_cents == amount_cents)
    return list(session.scalars(query.order_by(DebitRequest.id)))


def requests_by_mandate_reference(
    session: Session, reference: str, amount_cents: int, statuses: Sequence[str], creditor_ids: Iterable[int] | None = None
) -> list[DebitRequest]:
    query = (
        select(DebitRequest)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(Mandate.reference == reference, DebitRequest.amount_cents == amount_cents, DebitRequest.status.in_(statuses))
    )
    if creditor_ids is not None:
        query = query.where(DebitRequest.creditor_id.in_(list(creditor_ids)))
    return list(session.scalars(query.order_by(DebitRequest.id)))


def creditor_ids_by_identifier(session: Session, identifier: str) -> list[int]:
    return list(session.scalars(select(Creditor.id).where(Creditor.creditor_identifier == identifier)))


def creditor_by_iban(session: Session, iban: str) -> Creditor | None:
    return session.scalars(select(Creditor).where(Creditor.iban == iban)).first()


def creditor_by_id(session: Session, creditor_id: int) -> Creditor:
    row = session.get(Creditor, creditor_id)
    assert row is not None  # a foreign key guarantees it
    return row


def mandate_for_update(session: Session, mandate_id: int) -> Mandate:
    # of=Mandate: the eager join to debtor_accounts cannot be locked (outer join).
    row = session.scalars(select(Mandate).where(Mandate.id == mandate_id).with_for_update(of=Mandate)).unique().one()
    return row


def account_reference(session: Session, account_id: int) -> str:
    return session.scalars(select(DebtorAccount.reference).where(DebtorAccount.id == account_id)).one()


def pending_requests_of_mandate(session: Session, mandate_id: int, pending: str) -> list[DebitRequest]:
    query = select(DebitRequest).where(DebitRequest.mandate_id == mandate_id, DebitRequest.status == pending)
    return list(session.scalars(query.order_by(DebitRequest.id)))


def other_requests_count(session: Session, mandate_id: int, request_id: int, statuses: Sequence[str]) -> int:
    query = select(func.count()).where(
        DebitRequest.mandate_id == mandate_id, DebitRequest.id != request_id, DebitRequest.status.in_(statuses)
    )
    return int(session.scalar(query) or 0)


def invoices_paid_by(session: Session, request_id: int) -> list[tuple[str, int]]:
    """(invoice number, cents this debit paid of it) for the invoices a debit paid."""
    query = (
        select(LedgerEntry.document_number, RequestInvoice.amount_cents)
        .join(RequestInvoice, RequestInvoice.entry_id == LedgerEntry.id)
        .where(RequestInvoice.debit_request_id == request_id)
        .order_by(RequestInvoice.id)
    )
    return [(number, cents) for number, cents in session.execute(query)]


# --- applied records -----------------------------------------------------------------------
def applied_by_key(session: Session, natural_key: str) -> AppliedReturn | None:
    return session.scalars(select(AppliedReturn).where(AppliedReturn.natural_key == natural_key)).first()


def credited_cents(session: Session, batch_id: int, kind: str) -> int:
    query = select(func.coalesce(func.sum(AppliedReturn.amount_cents), 0)).where(
        AppliedReturn.batch_id == batch_id, AppliedReturn.kind == kind
    )
    return int(session.scalar(query) or 0)


def batch_totals(session: Session, batch_id: int) -> dict[str, tuple[int, int]]:
    """status -> (count, cents) of the batch's requests."""
    query = (
        select(DebitRequest.status, func.count(), func.coalesce(func.sum(DebitRequest.amount_cents), 0))
        .where(DebitRequest.batch_id == batch_id)
        .group_by(DebitRequest.status)
    )
    return {status: (int(count), int(cents)) for status, count, cents in session.execute(query)}


def set_batch_status(session: Session, batch_id: int, status: str) -> None:
    session.execute(update(Batch).where(Batch.id == batch_id).values(status=status))


# --- exceptions and policies ---------------------------------------------------------------
def exceptions(session: Session, *, status: str | None, after_id: int = 0, limit: int = 1000) -> list[ReturnException]:
    query = select(ReturnException).where(ReturnException.id > after_id)
    if status is not None:
        query = query.where(ReturnException.status == status)
    return list(session.scalars(query.order_by(ReturnException.id).limit(limit)))


def exception_for_update(session: Session, exception_id: int) -> ReturnException | None:
    return session.scalars(select(ReturnException).where(ReturnException.id == exception_id).with_for_update()).first()


def policy_override(session: Session, creditor_id: int, code: str) -> ReasonCodePolicy | None:
    query = select(ReasonCodePolicy).where(ReasonCodePolicy.creditor_id == creditor_id, ReasonCodePolicy.code == code)
    return session.scalars(query).first()


def policy_overrides(session: Session, creditor_id: int) -> dict[str, ReasonCodePolicy]:
    query = select(ReasonCodePolicy).where(ReasonCodePolicy.creditor_id == creditor_id)
    return {row.code: row for row in session.scalars(query)}


def add_policy(session: Session, row: ReasonCodePolicy) -> ReasonCodePolicy:
    session.add(row)
    session.flush()
    return row
