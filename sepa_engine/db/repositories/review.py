"""Queries behind the review summary operations staff read beside each file."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sepa_engine.db.models import DebitRequest, DebtorAccount, Mandate
from sepa_engine.domain.statuses import RequestStatus


def largest_debits(session: Session, batch_id: int, limit: int = 10) -> Sequence[tuple[str, int, str, str]]:
    """(end-to-end id, amount, debtor name, IBAN) of the largest debits of a batch."""
    query = (
        select(DebitRequest.end_to_end_id, DebitRequest.amount_cents, DebtorAccount.name, Mandate.iban)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .join(DebtorAccount, DebtorAccount.id == Mandate.debtor_account_id)
        .where(DebitRequest.batch_id == batch_id)
        .order_by(DebitRequest.amount_cents.desc(), DebitRequest.id)
        .limit(limit)
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def count_amendments(session: Session, batch_id: int) -> int:
    query = select(func.count()).where(
        DebitRequest.batch_id == batch_id,
        (DebitRequest.amend_original_mandate_id.is_not(None))
        | (DebitRequest.amend_original_creditor_identifier.is_not(None))
        | (DebitRequest.amend_original_iban.is_not(None))
        | (DebitRequest.amend_new_debtor_agent.is_(True)),
    )
    return int(session.scalar(query) or 0)


def refused_for_creditor_in_run(session: Session, run_id: int, creditor_id: int, limit: int = 50) -> Sequence[tuple[str, str | None, str | None]]:
    query = (
        select(DebitRequest.end_to_end_id, DebitRequest.reason_code, DebitRequest.reason)
        .where(
            DebitRequest.run_id == run_id,
            DebitRequest.creditor_id == creditor_id,
            DebitRequest.status == RequestStatus.REFUSED.value,
        )
        .order_by(DebitRequest.id)
        .limit(limit)
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]
