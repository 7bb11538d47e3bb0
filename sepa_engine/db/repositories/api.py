"""Queries of the HTTP API that no other repository has: reads scoped by creditor, the
idempotency table, and the return exceptions a creditor may see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from sepa_engine.db.models import Batch, Creditor, DebitRequest, Mandate, PaymentBlock
from sepa_engine.db.repositories import rowcount
from sepa_engine.db.returns_models import ReturnException
from sepa_engine.db.service_models import ApiIdempotency


def creditors_by_codes(session: Session, codes: Sequence[str]) -> list[Creditor]:
    return list(session.scalars(select(Creditor).where(Creditor.code.in_(list(codes))).order_by(Creditor.code)))


def request_with_mandate(session: Session, creditor_id: int, request_id: int) -> tuple[DebitRequest, str] | None:
    row = session.execute(
        select(DebitRequest, Mandate.reference)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(DebitRequest.creditor_id == creditor_id, DebitRequest.id == request_id)
    ).first()
    return None if row is None else (row[0], row[1])


def cancel_if_pending(session: Session, request_id: int, *, status: str, reason: str, at: dt.datetime) -> bool:
    """Move one pending request to ``status``; False when it is no longer pending (a run
    took it meanwhile): the conditional UPDATE decides, whatever the isolation level."""
    result = session.execute(
        update(DebitRequest)
        .where(DebitRequest.id == request_id, DebitRequest.status == "pending")
        .values(status=status, status_changed_at=at, reason=reason, reason_code=None)
    )
    return bool(rowcount(result))


def batches(session: Session, creditor_id: int, *, after_id: int, limit: int, status: str | None) -> list[Batch]:
    query = select(Batch).where(Batch.creditor_id == creditor_id, Batch.id > after_id)
    if status is not None:
        query = query.where(Batch.status == status)
    return list(session.scalars(query.order_by(Batch.id).limit(limit)))


def batch(session: Session, creditor_id: int, batch_id: int) -> Batch | None:
    return session.scalars(select(Batch).where(Batch.creditor_id == creditor_id, Batch.id == batch_id)).first()


def blocks(session: Session, batch_id: int) -> list[PaymentBlock]:
    return list(session.scalars(select(PaymentBlock).where(PaymentBlock.batch_id == batch_id).order_by(PaymentBlock.position)))


def exceptions_of_creditor(
    session: Session, creditor_id: int, *, status: str | None, after_id: int, limit: int
) -> list[ReturnException]:
    """Exceptions whose end-to-end id is one of the creditor's debits."""
    query = (
        select(ReturnException)
        .join(DebitRequest, DebitRequest.end_to_end_id == ReturnException.end_to_end_id)
        .where(DebitRequest.creditor_id == creditor_id, ReturnException.id > after_id)
    )
    if status is not None:
        query = query.where(ReturnException.status == status)
    return list(session.scalars(query.order_by(ReturnException.id).limit(limit)))


def exception_of_creditor(session: Session, creditor_id: int, exception_id: int) -> ReturnException | None:
    return session.scalars(
        select(ReturnException)
        .join(DebitRequest, DebitRequest.end_to_end_id == ReturnException.end_to_end_id)
        .where(DebitRequest.creditor_id == creditor_id, ReturnException.id == exception_id)
    ).first()


def request_of_creditor(session: Session, creditor_id: int, request_id: int) -> DebitRequest | None:
    return session.scalars(
        select(DebitRequest).where(DebitRequest.creditor_id == creditor_id, DebitRequest.id == request_id)
    ).first()


# --- idempotency ---------------------------------------------------------------------------
def stored_answer(session: Session, scope: str, key: str) -> ApiIdempotency | None:
    return session.scalars(
        select(ApiIdempotency).where(ApiIdempotency.scope == scope, ApiIdempotency.idempotency_key == key)
    ).first()


def store_answers(session: Session, rows: list[dict[str, object]]) -> None:
    """Store the answers of a group of calls in one statement; ``IntegrityError`` when a
    (scope, key) is already stored (another route, or a race)."""
    session.execute(insert(ApiIdempotency), rows)
