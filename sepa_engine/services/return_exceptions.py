"""The exceptions queue: bank records the reconciliation could not apply by itself, for a
person to list and resolve (as ignored, or as about one debit, which applies the record)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock
from sepa_engine.db.models import Batch, DebitRequest, PaymentBlock
from sepa_engine.db.repositories import returns as repo
from sepa_engine.db.returns_models import ReturnException, ReturnFile
from sepa_engine.domain import money
from sepa_engine.domain.identifiers import compact_iban
from sepa_engine.domain.masking import mask_iban
from sepa_engine.iso20022.returns import Kind, ReturnRecord, Scope
from sepa_engine.services.reconciliation import _TARGET, ExceptionStatus, ReconcileReport, _Run

log = structlog.get_logger("sepa_engine.reconciliation")

@dataclass(frozen=True, slots=True)
class ExceptionView:
    id: int
    file_id: int
    end_to_end_id: str | None
    reason: str
    status: str
    resolution: str | None
    note: str | None
    created_at: dt.datetime
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "file_id": self.file_id, "end_to_end_id": self.end_to_end_id, "reason": self.reason,
            "status": self.status, "resolution": self.resolution, "note": self.note,
            "created_at": self.created_at.isoformat(), "record": self.record,
        }


def view(row: ReturnException) -> ExceptionView:
    return ExceptionView(
        row.id, row.return_file_id, row.end_to_end_id, row.reason, row.status, row.resolution, row.note,
        row.created_at, json.loads(row.record),
    )


def list_exceptions(session: Session, *, status: str | None = ExceptionStatus.OPEN, after_id: int = 0, limit: int = 1000) -> list[ExceptionView]:
    return [view(row) for row in repo.exceptions(session, status=status, after_id=after_id, limit=limit)]


def resolve_exception(
    session: Session, exception_id: int, *, resolution: str, note: str | None = None, actor: str = "operator", clock: Clock
) -> ExceptionView:
    """Close an exception: ``"ignored"``, or a debit request id the record is then applied to."""
    row = repo.exception_for_update(session, exception_id)
    if row is None:
        raise errors.NotFound("exception", exception_id)
    if row.status != ExceptionStatus.OPEN:
        raise errors.ReturnFileError("exception", exception_id, f"is already resolved ({row.resolution})")
    if resolution == "ignored":
        row.resolution = "ignored"
    else:
        try:
            request_id = int(resolution)
        except ValueError:
            raise errors.InvalidFormat("--as", resolution, "must be a debit request id or 'ignored'") from None
        request = repo.request_by_id(session, request_id)
        if request is None:
            raise errors.NotFound("request", request_id)
        data = json.loads(row.record)
        record = _record_from(data)
        if record is None:
            raise errors.ReturnFileError("exception", exception_id, "is not about one debit: resolve it as ignored")
        _check_same_file_and_account(session, request, request_id, record, data.get("account_iban"))
        if record.amount_cents is not None and record.amount_cents != request.amount_cents:
            # An R-transaction is about the whole instructed amount, its charges apart (RULES.md
            # section 4: match on AmtDtls/InstdAmt, book the fee separately): another amount is
            # another debit, as automatic matching holds (reconciliation._amount_problem).
            raise errors.ReturnFileError(
                "request", request_id,
                f"is a debit of {money.format_cents(request.amount_cents)}, the record is of "
                f"{money.format_cents(record.amount_cents)}: it is about another debit",
            )
        file = session.get(ReturnFile, row.return_file_id)
        assert file is not None
        report = ReconcileReport(path=Path(file.path), sha256=file.sha256)
        # A statement's record moves its file as a matched one does: it says nothing of the
        # file's acceptance, which only a pain.002 gives.
        run = _Run(session, clock, file, report, is_camt=(file.message or "").startswith("camt."))
        run.apply(record, request)
        if report.exceptions:
            raise errors.ReturnFileError("request", request_id, "cannot take this record (see the open exceptions)")
        run.close_batches()
        row.resolution = f"matched:{request_id}"
    row.status, row.note = ExceptionStatus.RESOLVED, note
    row.resolved_by, row.resolved_at = actor[:70], clock.now()
    session.flush()
    log.info("return.exception_resolved", exception_id=row.id, resolution=row.resolution)
    return view(row)


def _check_same_file_and_account(
    session: Session, request: DebitRequest, request_id: int, record: ReturnRecord, account_iban: str | None,
) -> None:
    """What the record still says of the debit it is about, and a mistyped id would contradict
    (rents are often the same amount): the file, when it names one of ours, and the account
    the money went to, for a statement's record (its entry's account)."""
    named = repo.batch_by_message_id(session, record.original_message_id) if record.original_message_id else None
    if named is not None and named.id != request.batch_id:
        batch = session.get(Batch, request.batch_id) if request.batch_id is not None else None
        where = f"is in file {batch.message_id}" if batch is not None else "is in no file"
        raise errors.ReturnFileError(
            "request", request_id, f"{where}, the record is about file {named.message_id}: it is about another debit",
        )
    block = session.get(PaymentBlock, request.block_id) if request.block_id is not None else None
    if account_iban and block is not None and compact_iban(account_iban) != compact_iban(block.creditor_iban):
        raise errors.ReturnFileError(
            "request", request_id,
            f"was collected to account {mask_iban(block.creditor_iban)}, the record is about account "
            f"{mask_iban(account_iban)}: it is about another debit",
        )


def _record_from(data: dict[str, Any]) -> ReturnRecord | None:
    try:
        kind = Kind(data["kind"])
        scope = Scope(data["scope"])
    except (KeyError, ValueError):
        return None
    if kind not in _TARGET or scope is not Scope.TRANSACTION:
        return None  # a status of a whole file or block, or no outcome for a debit

    def cents(name: str) -> int | None:
        value = data.get(name)
        return None if value is None else money.parse_amount(str(value), name)

    def date(name: str) -> dt.date | None:
        value = data.get(name)
        return None if value is None else dt.date.fromisoformat(value)

    return ReturnRecord(
        scope=scope, kind=kind, location=str(data.get("location") or ""), status=data.get("status"),
        booked=bool(data.get("booked")), end_to_end_id=data.get("end_to_end_id"),
        original_message_id=data.get("original_message_id"), payment_info_id=data.get("payment_info_id"),
        mandate_reference=data.get("mandate_reference"), amount_cents=cents("amount"), currency=data.get("currency"),
        reason_code=data.get("reason_code"), fees_cents=cents("fees"), booking_date=date("booking_date"),
        settlement_date=date("settlement_date"),
    )
