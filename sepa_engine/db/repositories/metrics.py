"""The ledger's facts a Prometheus scrape reads (``sepa_engine/metrics.py``): aggregates only,
so a scrape costs a few GROUP BY queries whatever the ledger's size."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sepa_engine.db.models import Batch, Creditor
from sepa_engine.db.returns_models import AppliedReturn

# Answers that are not a settlement: what the "returns by reason code" metric counts.
_NOT_SETTLED = ("settled", "accepted")


@dataclass(frozen=True, slots=True)
class FilesRow:
    creditor: str
    status: str
    files: int
    transactions: int
    cents: int


@dataclass(frozen=True, slots=True)
class ReturnsRow:
    kind: str
    reason_code: str
    count: int
    cents: int


def files_by_creditor_and_status(session: Session) -> list[FilesRow]:
    rows = session.execute(
        select(Creditor.code, Batch.status, func.count(), func.coalesce(func.sum(Batch.count), 0), func.coalesce(func.sum(Batch.sum_cents), 0))
        .join(Creditor, Creditor.id == Batch.creditor_id)
        .group_by(Creditor.code, Batch.status)
        .order_by(Creditor.code, Batch.status)
    ).all()
    return [FilesRow(code, status, int(files), int(count), int(cents)) for code, status, files, count, cents in rows]


def returns_by_reason(session: Session) -> list[ReturnsRow]:
    rows = session.execute(
        select(AppliedReturn.kind, AppliedReturn.reason_code, func.count(), func.coalesce(func.sum(AppliedReturn.amount_cents), 0))
        .where(AppliedReturn.kind.not_in(_NOT_SETTLED))
        .group_by(AppliedReturn.kind, AppliedReturn.reason_code)
        .order_by(AppliedReturn.kind, AppliedReturn.reason_code)
    ).all()
    return [ReturnsRow(kind, code or "none", int(count), int(cents or 0)) for kind, code, count, cents in rows]
