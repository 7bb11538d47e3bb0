"""The files written for the bank as the operator reads them (``batches list``, ``batch show``):
typed views built inside the read transaction, so no ORM row leaves the session."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.db.models import Batch, DebitRequest
from sepa_engine.db.repositories import collection as repo
from sepa_engine.domain.money import format_cents
from sepa_engine.domain.statuses import BatchStatus
from sepa_engine.services import views


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One file of ``batches list``; ``document`` is its --json form."""

    id: int
    creditor_code: str
    business_date: dt.date
    message_id: str
    status: str
    transactions: int
    sum_cents: int
    approved_by: str | None
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RequestLine:
    id: int
    end_to_end_id: str
    mandate_id: int
    amount_cents: int
    status: str
    collection_date: dt.date | None
    sequence_type: str | None
    reason_code: str | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "end_to_end_id": self.end_to_end_id,
            "amount": format_cents(self.amount_cents),
            "status": self.status,
            "collection_date": self.collection_date.isoformat() if self.collection_date else None,
            "sequence_type": self.sequence_type,
            "reason_code": self.reason_code,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class BatchDetail:
    """One file with its blocks, its transactions and the requests its run refused for the
    same creditor; ``document`` is its --json form."""

    id: int
    creditor_code: str
    message_id: str
    status: str
    path: str | None
    file_name: str
    approved_by: str | None
    requests: tuple[RequestLine, ...]
    refused: tuple[RequestLine, ...]
    document: dict[str, Any]


def _document(batch: Batch, creditor_code: str, *, with_blocks: bool = False) -> dict[str, Any]:
    """The API's batch document (services/views), plus what only the ledger's host may see:
    the file's ``path`` there and a failed file's ``failure``."""
    document = views.batch_document(batch, creditor_code, batch.blocks if with_blocks else None)
    return document | {"path": batch.path, "failure": batch.failure}


def _request(row: DebitRequest) -> RequestLine:
    return RequestLine(
        id=row.id, end_to_end_id=row.end_to_end_id, mandate_id=row.mandate_id, amount_cents=row.amount_cents,
        status=row.status, collection_date=row.collection_date, sequence_type=row.sequence_type,
        reason_code=row.reason_code, reason=row.reason,
    )  # fmt: skip


def list_batches(
    session: Session,
    *,
    creditor_code: str | None = None,
    statuses: Sequence[BatchStatus] = (),
    business_from: dt.date | None = None,
    business_to: dt.date | None = None,
    limit: int = 100,
) -> tuple[BatchLine, ...]:
    """Files written for the bank, newest first."""
    found = repo.list_batches(
        session, creditor_code=creditor_code, statuses=statuses, business_from=business_from, business_to=business_to,
        limit=limit,
    )  # fmt: skip
    return tuple(
        BatchLine(
            id=b.id, creditor_code=code, business_date=day, message_id=b.message_id, status=b.status,
            transactions=b.count, sum_cents=b.sum_cents, approved_by=b.approved_by,
            document=_document(b, code) | {"business_date": day.isoformat()},
        )
        for b, code, day in found
    )


def show_batch(session: Session, batch_id: int) -> BatchDetail:
    batch = repo.find_batch(session, batch_id)
    if batch is None:
        raise errors.NotFound("batch", batch_id)
    creditor = repo.creditor_by_id(session, batch.creditor_id)
    requests = tuple(_request(r) for r in repo.requests_of_batch(session, batch_id))
    refused = tuple(_request(r) for r in repo.refused_of_creditor_in_run(session, batch.run_id, batch.creditor_id))
    document = _document(batch, creditor.code, with_blocks=True) | {
        "requests": [r.to_dict() for r in requests],
        "refused_in_run": [r.to_dict() for r in refused],
    }
    return BatchDetail(
        id=batch.id, creditor_code=creditor.code, message_id=batch.message_id, status=batch.status, path=batch.path,
        file_name=batch.file_name, approved_by=batch.approved_by, requests=requests, refused=refused, document=document,
    )  # fmt: skip
