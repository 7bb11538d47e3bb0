"""Bank answers -> ledger: match each record of a pain.002 / camt file to our debits and apply it.

The caller owns the transaction and gives one per file: ``reconcile_file`` raises on a file
it refuses (unreadable, hostile, unknown message, ``strict`` deviations, a statement of an
account that is not one of our creditors'), and everything it did is then rolled back, so
a file is applied whole or not at all. ``record_refusal`` notes the refusal afterwards in
a transaction of its own.

Matching, in order (RULES.md section 4):

1. the end-to-end id;
2. the original message id and payment information id: a group or block record of a
   pain.002 covers every transaction it names; a transaction record without a usable
   end-to-end id must match exactly one debit of the block with its amount;
3. the mandate reference, the amount and the collection date.

Nothing found, or more than one candidate, sends the record to the exceptions queue with
the reason. Replays change nothing: a file already imported is recognised by its sha256,
and a fact already applied from another file by its natural key (see ``returns_models``).

What a record does is decided by ``domain.return_decisions.decide`` (the policy of its
reason code from ``domain.reason_codes`` overlaid by the creditor's ``reason_code_policies``
rows): a list of effects that ``_Run._apply_row`` (bulk, on a chunk's rows) and ``_Run.apply``
(record by record, through the ORM) each execute, and nothing else here decides.

Cost: records are applied in chunks (``CHUNK``). Per chunk, a few statements read the debits,
the keys already applied and the mandates, and a few executemany statements write statuses,
returned payments, retries and applied rows (``_Run`` says how records in one chunk still
behave as if applied one by one). Nothing a chunk reads stays in the session, so memory does
not grow with the file. Files of ``READ_IN_CHILD_BYTES`` or more are parsed in a child
process meanwhile. A batch that becomes settled settles its debits still at the bank (a lump
sum says nothing of each); a transaction's details arriving after that change nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sepa_engine import errors, gc_tuning
from sepa_engine.clock import Clock, business_today
from sepa_engine.db.models import Batch, DebitRequest, Mandate
from sepa_engine.db.repositories import returns as repo
from sepa_engine.db.repositories.returns import MandateRow, RequestRow
from sepa_engine.db.returns_models import AppliedReturn, ReturnException, ReturnFile
from sepa_engine.db.session import reuse_key_check_plans
from sepa_engine.domain import money, reason_codes
from sepa_engine.domain import return_decisions as decisions
from sepa_engine.domain.accounts import EntryKind
from sepa_engine.domain.mandate import MandateStatus, transition
from sepa_engine.domain.masking import mask_iban
from sepa_engine.domain.reason_codes import MandateEffect, ReasonCode
from sepa_engine.domain.statuses import (
    BatchStatus,
    RequestStatus,
    batch_transition,
    request_transition,
)
from sepa_engine.iso20022.returns import Kind, ReturnRecord, Scope
from sepa_engine.progress import SILENT, Progress
from sepa_engine.services.retries import DecidedRetry, retry_refused, schedule_retries, schedule_retry
from sepa_engine.services.return_reading import READ_IN_CHILD_BYTES, ChildReader, Reader

log = structlog.get_logger("sepa_engine.reconciliation")
T = TypeVar("T")

_R = RequestStatus
# The values compared per record, read once (an enum member's .value is a property call).
_PENDING = _R.PENDING.value
_PAYMENT = EntryKind.PAYMENT.value
_KIND = {kind: kind.value for kind in Kind}
_BLOCKED = MandateStatus.BLOCKED.value
_SUPERSEDED = MandateStatus.SUPERSEDED.value
# Records a bank applies to one debit (the others are about files, blocks or bookings).
_TARGET = frozenset(Kind(outcome.value) for outcome in decisions.Outcome)
_OUTCOME = {Kind(outcome.value): outcome for outcome in decisions.Outcome}
# Debits a bank record can still be about.
_AT_BANK = tuple(s.value for s in (_R.SUBMITTED, _R.SETTLED))
_DISPUTED_KINDS = frozenset(Kind(outcome.value) for outcome in decisions.DISPUTED)
# The kind of a retry's pre-notification (the schedule's are "schedule").
_HASH_CHUNK = 1 << 20
# Records applied per round of bulk statements: large enough that a statement's fixed cost
# is spread thin, small enough that what a chunk holds in memory stays a few megabytes.
CHUNK = 2_000


class FileStatus:
    APPLIED = "applied"
    REFUSED = "refused"


class ExceptionStatus:
    OPEN = "open"
    RESOLVED = "resolved"


@dataclass
class ReconcileReport:
    path: Path
    sha256: str
    message: str | None = None
    message_id: str | None = None
    # The same bytes were imported before: nothing was read or changed.
    duplicate_of: int | None = None
    file_id: int | None = None
    records: int = 0
    applied: int = 0
    already_applied: int = 0
    exceptions: int = 0
    skipped: int = 0
    blocked_mandates: int = 0
    retries: int = 0
    batches: dict[str, str] = field(default_factory=dict)  # message id -> status after this file
    warnings: list[str] = field(default_factory=list)

    @property
    def duplicate(self) -> bool:
        return self.duplicate_of is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "message": self.message,
            "message_id": self.message_id,
            "duplicate_of": self.duplicate_of,
            "file_id": self.file_id,
            "records": self.records,
            "applied": self.applied,
            "already_applied": self.already_applied,
            "exceptions": self.exceptions,
            "skipped": self.skipped,
            "blocked_mandates": self.blocked_mandates,
            "retries": self.retries,
            "batches": self.batches,
            "warnings": self.warnings,
        }


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise errors.UnreadableFile("file", str(path), f"cannot be read: {exc.strerror or exc}") from None
    return digest.hexdigest()


def reconcile_file(
    session: Session,
    path: str | os.PathLike[str],
    *,
    clock: Clock,
    strict: bool = False,
    max_bytes: int | None = None,
    progress: Progress = SILENT,
    chunk_size: int = CHUNK,
    read_in_child: bool | None = None,
) -> ReconcileReport:
    """Apply one bank file to the ledger (see the module docstring). Never commits.

    Records are applied ``chunk_size`` at a time (see ``_Run``); ``progress`` advances by
    the number of records of each chunk once it is applied. Files of
    ``READ_IN_CHILD_BYTES`` or more are read in a child process (``return_reading``) unless
    ``read_in_child`` says otherwise.
    """
    source = Path(path)
    digest = file_sha256(source)
    report = ReconcileReport(path=source, sha256=digest)
    seen = repo.file_by_sha256(session, digest)
    if seen is not None and seen.status == FileStatus.REFUSED:
        # Refused before: read again (``record_refusal`` says when that helps). Locked first,
        # so that of two imports at once the second finds it applied.
        seen = repo.lock_file(session, seen.id)
    if seen is not None and seen.status != FileStatus.REFUSED:
        return _duplicate(report, seen)
    with gc_tuning.long_run():
        return _apply_file(
            session, source, report, clock=clock, strict=strict, max_bytes=max_bytes, progress=progress,
            chunk_size=chunk_size, read_in_child=read_in_child, refused=seen,
        )


def _duplicate(report: ReconcileReport, seen: ReturnFile) -> ReconcileReport:
    """The same bytes were applied before: nothing is read or changed."""
    report.duplicate_of = seen.id
    report.message, report.message_id = seen.message, seen.message_id
    log.info("return_file.duplicate", path=str(report.path), file_id=seen.id)
    return report


def _apply_file(
    session: Session, source: Path, report: ReconcileReport, *, clock: Clock, strict: bool, max_bytes: int | None,
    progress: Progress, chunk_size: int, read_in_child: bool | None, refused: ReturnFile | None,
) -> ReconcileReport:
    """``reconcile_file`` for a file not applied before (``refused``: its row from a refusal,
    which this import takes over)."""
    digest = report.sha256
    # Its checks look up the ledger's debits, accounts and entries, which it does not fill.
    reuse_key_check_plans(session)
    if read_in_child is None:
        read_in_child = source.stat().st_size >= READ_IN_CHILD_BYTES
    reader = (ChildReader if read_in_child else Reader)(source, strict, max_bytes, chunk_size)
    with reader:
        report.message = reader.message
        if refused is not None:
            row = refused
            row.path, row.message, row.status, row.refusal = str(source), reader.message, FileStatus.APPLIED, None
            row.imported_at = clock.now()
            session.flush()
        else:
            row = ReturnFile(
                sha256=digest, path=str(source), message=reader.message, status=FileStatus.APPLIED,
                records=0, applied=0, already_applied=0, exceptions=0, skipped=0, imported_at=clock.now(),
            )
            seen = _insert_file(session, row)
            if seen is not None:  # answered as a later import would be
                return _duplicate(report, seen)
        report.file_id = row.id
        run = _Run(session, clock, row, report, is_camt=reader.message.startswith("camt"))
        for chunk in reader.chunks():
            report.records += len(chunk)
            run.handle_chunk(chunk)
            progress.advance(len(chunk))
        summary = reader.summary()
    report.message_id = row.message_id = summary.message_id
    report.skipped += summary.skipped
    report.warnings = list(summary.warnings)
    run.date_acknowledgements(_report_day(summary.created))
    run.refuse_foreign_statement()
    run.close_batches()
    row.records, row.applied, row.already_applied = report.records, report.applied, report.already_applied
    row.exceptions, row.skipped = report.exceptions, report.skipped
    session.flush()
    log.info(
        "return_file.applied", file_id=row.id, path=str(source), message=report.message, records=report.records,
        applied=report.applied, already_applied=report.already_applied, exceptions=report.exceptions,
        retries=report.retries, blocked_mandates=report.blocked_mandates,
    )
    return report


def record_refusal(
    session: Session, path: str | os.PathLike[str], sha256: str | None, problem: str, *, clock: Clock
) -> None:
    """Note a refused file (in a transaction of its own, after the rollback).

    A refused file sent again under the same bytes is read again, never answered as a
    duplicate: refused for a reason outside it (a statement of an account whose creditor was
    registered since), it is applied and takes the refusal's row over; refused for its own
    bytes, it is refused again and the row keeps the latest reason.
    """
    if sha256 is None:
        return
    existing = repo.file_by_sha256(session, sha256)
    if existing is None:
        existing = _insert_file(session, ReturnFile(
            sha256=sha256, path=str(path), status=FileStatus.REFUSED, refusal=problem, records=0, applied=0,
            already_applied=0, exceptions=0, skipped=0, imported_at=clock.now(),
        ))
        if existing is None:
            return
    if existing.status == FileStatus.REFUSED:
        existing.refusal, existing.imported_at = problem, clock.now()


def _insert_file(session: Session, row: ReturnFile) -> ReturnFile | None:
    """Insert ``row``; None when it went in, else the row of the same bytes another import
    committed meanwhile (on PostgreSQL this insert waited for that commit)."""
    try:
        with session.begin_nested():
            repo.add(session, row)
    except IntegrityError:
        existing = repo.file_by_sha256(session, row.sha256)
        if existing is None:
            raise
        return existing
    return None


def policy_for(session: Session, creditor_id: int, code: str | None) -> ReasonCode:
    """The default policy of ``code`` overlaid with the creditor's override, if any."""
    default = reason_codes.lookup(code)
    override = repo.policy_override(session, creditor_id, default.code) if default.code else None
    if override is None:
        return default
    changes: dict[str, Any] = {}
    if override.mandate_effect is not None:
        changes["mandate_effect"] = MandateEffect(override.mandate_effect)
    if override.max_retries is not None:
        changes["max_retries"] = override.max_retries
        changes["retry_allowed"] = override.max_retries > 0
    if override.opens_dispute is not None:
        changes["opens_dispute"] = override.opens_dispute
    return dataclasses.replace(default, **changes)


# --- one file ------------------------------------------------------------------------------
class _Run:
    """One file being applied.

    A chunk of records is applied in *segments*: runs of transaction records that carry an
    end-to-end id (nearly every record of a real file). For a segment, one statement each
    reads the debits by end-to-end id, the natural keys already applied, the mandates
    (locked on PostgreSQL), the pending requests of the mandates that are or become
    blocked, and which debits paid invoices. The records are then decided one after the
    other on those rows, which the segment updates in memory, so two records about the
    same debit or mandate behave as if applied one by one. The writes wait in a
    ``_Pending`` and go out as a few executemany statements when the segment ends.

    Whatever must read the ledger as the records before left it flushes those writes
    first: fallback matching and every other record kind (which take the record-by-record
    path, ``handle``), fees and disputes (services of their own), and a failure on a
    mandate whose retry is not written yet (it may have to cancel that retry). After a
    record-by-record ``apply``, the rest of the segment is read again.
    """

    def __init__(self, session: Session, clock: Clock, file: ReturnFile, report: ReconcileReport, *, is_camt: bool) -> None:
        self.session = session
        self.clock = clock
        self.file = file
        self.file_id = file.id
        self.report = report
        self.is_camt = is_camt
        # Batches this file spoke about: message id -> "did a pain.002 answer it".
        self.touched: dict[int, bool] = {}
        self.matched_any = False
        self.foreign_accounts: set[str] = set()
        # Batches acknowledged by this file: True when this file acknowledged them first.
        self._acknowledged: dict[int, bool] = {}
        # Small per-file caches: a file speaks about a few creditors and a few codes.
        self._creditors: dict[int, tuple[str, str, int]] = {}
        self._policies: dict[tuple[int, str | None], ReasonCode] = {}
        self._ours: dict[str, bool] = {}
        self._days: dict[tuple[str, dt.datetime], dt.date] = {}
        # Bound once: the module's lazy proxy would build a logger for every per-record call,
        # even one filtered out by the level.
        self.log = log.bind(file_id=self.file_id)

    # -- chunks
    def handle_chunk(self, records: list[ReturnRecord]) -> None:
        segment: list[ReturnRecord] = []
        for record in records:
            if self._by_end_to_end_id(record):
                segment.append(record)
                continue
            if segment:
                self._segment(segment)
                segment = []
            self.handle(record)
        if segment:
            self._segment(segment)

    def _by_end_to_end_id(self, record: ReturnRecord) -> bool:
        return (
            record.scope is Scope.TRANSACTION
            and record.kind in _TARGET
            and bool(record.end_to_end_id)
            and (record.booked or not self.is_camt)
        )

    def _segment(self, records: list[ReturnRecord]) -> None:
        start = 0
        while start < len(records):
            start = self._segment_from(records, start)

    def _segment_from(self, records: list[ReturnRecord], start: int) -> int:
        """Apply ``records[start:]``; the index to go on from when the rows went stale."""
        self.session.flush()  # the reads below go around the ORM (no autoflush)
        part = records[start:]
        found = repo.request_rows_by_end_to_end_ids(self.session, {r.end_to_end_id for r in part})  # type: ignore[misc]
        pairs = [(record, found.get(record.end_to_end_id)) for record in part]  # type: ignore[arg-type]
        state = self._prepare(pairs)
        for offset, (record, row) in enumerate(pairs):
            if row is None:
                # Fallback matching reads the ledger: it must see the records before.
                self._write(state)
                if self.handle(record):
                    self._write(state)
                    return start + offset + 1  # the rows read above may be stale now
                continue
            if record.amount_cents is not None and record.amount_cents != row.amount_cents:
                self._unmatched(record, _amount_problem(record, row.amount_cents))
                continue
            self._apply_row(record, row, state)
        self._write(state)
        return len(records)

    def _prepare(self, pairs: list[tuple[ReturnRecord, RequestRow | None]]) -> _Segment:
        """Read, in a few statements, what applying these (record, debit) pairs will need."""
        state = _Segment({row.id: row for _, row in pairs if row is not None}, self.clock.now())
        keys: set[str] = set()
        failing: list[tuple[ReturnRecord, RequestRow]] = []
        for record, row in pairs:
            if row is None:
                continue
            keys.add(f"{_KIND[record.kind]}:request:{row.id}")
            if record.kind.is_failure():
                failing.append((record, row))
        state.applied = repo.applied_keys(self.session, keys)
        state.mandates = repo.mandate_rows_for_update(self.session, {row.mandate_id for _, row in failing})
        blocking = {m.id for m in state.mandates.values() if m.status == _BLOCKED}
        disputable: set[int] = set()
        for record, row in failing:
            policy = self._policy(row.creditor_id, record.reason_code)
            if policy.mandate_effect is MandateEffect.BLOCK:
                blocking.add(row.mandate_id)
            if policy.opens_dispute and record.kind in _DISPUTED_KINDS:
                disputable.add(row.id)
        state.pending = {mandate_id: [] for mandate_id in blocking}
        for pending in repo.pending_request_rows(self.session, blocking, _PENDING):
            state.pending[pending.mandate_id].append(state.rows.setdefault(pending.id, pending))
        state.paid_invoices = repo.requests_paying_invoices(self.session, disputable)
        return state

    # -- one record on the segment's rows
    def _apply_row(self, record: ReturnRecord, row: RequestRow, state: _Segment) -> None:
        """The bulk executor of ``decide``: the effects on the segment's rows, written later."""
        self.matched_any = True
        if row.batch_id is not None:
            self.touched[row.batch_id] = self.touched.get(row.batch_id, False) or not self.is_camt
        key = f"{_KIND[record.kind]}:request:{row.id}"
        facts = _facts(record)
        debit = decisions.Debit(
            row.status, row.sequence_type, row.attempt, key in state.applied, bool(row.amended),
            row.amend_original_creditor_identifier,
        )
        policy = mandate = None
        mandate_state = None
        if facts.outcome.is_failure():
            policy = self._policy(row.creditor_id, record.reason_code)
            mandate = state.mandates[row.mandate_id]
            mandate_state = decisions.MandateState(
                mandate.status, mandate.status_reason, mandate.first_collected_on is not None,
                final_collected=mandate.final_collected,
            )
            if decisions.asks_others_at_bank(facts, debit, mandate_state):
                mandate_state = dataclasses.replace(
                    mandate_state, others_at_bank=self._others_at_bank(mandate.id, row.id, state)
                )
            if decisions.asks_amendment_elsewhere(facts, debit):
                mandate_state = dataclasses.replace(
                    mandate_state, amendment_elsewhere=self._amended_at_bank(mandate.id, row.id, state)
                )
        code, timezone, notice_days = self._creditor(row.creditor_id)
        effects = decisions.decide(
            facts, debit, mandate_state, policy, today=self._today(timezone, state.now), notice_days=notice_days
        )
        first = effects[0]
        if isinstance(first, decisions.AlreadyApplied):
            self.report.already_applied += 1
            return
        if isinstance(first, decisions.QueueException):
            self.exception(record, f"debit {row.end_to_end_id} {first.reason}")
            return
        if mandate is not None and mandate.id in state.writes.retry_mandates:
            # This failure may cancel the retry an earlier record enqueued on the mandate:
            # the retry must exist (with its id) first.
            self._write(state)
        state.applied.add(key)
        done: list[object] = []
        for effect in effects:
            self._execute_on_rows(effect, record, row, mandate, state, code, done)
        state.writes.applied.append((done, {
            "natural_key": key, "return_file_id": self.file_id, "kind": _KIND[record.kind],
            "debit_request_id": row.id, "batch_id": row.batch_id, "end_to_end_id": row.end_to_end_id,
            "reason_code": record.reason_code, "amount_cents": row.amount_cents, "fees_cents": record.fees_cents,
            "booking_date": record.booking_date, "applied_at": state.now,
        }))
        self.report.applied += 1
        # Per record at debug: a file of 100,000 returns would otherwise spend seconds on a
        # line each; the applied_returns row is the record of it, return_file.applied the sum.
        self.log.debug("return.applied", kind=_KIND[record.kind], request_id=row.id, reason_code=record.reason_code)

    def _execute_on_rows(
        self, effect: decisions.Effect, record: ReturnRecord, row: RequestRow, mandate: MandateRow | None,
        state: _Segment, code: str, done: list[object],
    ) -> None:
        """One effect on the segment's rows; its writes wait in ``state.writes`` (see ``_write``)."""
        now = state.now
        if isinstance(effect, decisions.SetStatus):
            row.status = effect.status.value
            changes: dict[str, object] = {"status": row.status, "status_changed_at": now}
            if record.kind.is_failure():
                row.reason_code, row.reason = effect.reason_code, effect.reason
                changes.update(reason_code=row.reason_code, reason=row.reason)
            state.writes.request(row.id, changes)
            return
        assert mandate is not None  # every other effect is a failure's
        if isinstance(effect, decisions.BookReturn):
            state.writes.returned.append((code, _returned_payment()(
                row.end_to_end_id, effect.on, f"return:{row.id}", record.reason_code, row.amount_cents
            )))
            state.writes.returned_debits[row.end_to_end_id] = (row, mandate)
        elif isinstance(effect, decisions.BookFee):
            self._write(state)  # the fee entry follows the returned payment in the ledger
            book_fee(self.session, code, self._orm(row), effect.cents, record.kind, on=effect.on, clock=self.clock)
            done.append(f"fee {money.format_cents(effect.cents)}")
        elif isinstance(effect, decisions.ResetFirstCollection):
            mandate.first_collected_on = None
            state.writes.mandate(mandate.id, {"first_collected_on": None})
            done.append("first collection reset")
        elif isinstance(effect, decisions.ResetFinalCollection):
            mandate.final_collected = False
            state.writes.mandate(mandate.id, {"final_collected": False})
            done.append("final collection reset")
        elif isinstance(effect, decisions.CarryAmendment):
            changes = {"amendment_pending": True}
            if effect.original_creditor_identifier:
                changes["presented_creditor_identifier"] = effect.original_creditor_identifier
            state.writes.mandate(mandate.id, changes)
            done.append("amendment carried again")
        elif isinstance(effect, decisions.BlockMandate):
            mandate.status = transition(MandateStatus(mandate.status), MandateStatus.BLOCKED).value
            mandate.status_reason = effect.reason_code
            state.writes.mandate(mandate.id, {
                "status": mandate.status, "status_reason": mandate.status_reason, "status_changed_at": now,
            })
            self.report.blocked_mandates += 1
            done.append("mandate blocked")
            self.log.debug("mandate.blocked", mandate_id=mandate.id, reason_code=effect.reason_code)
        elif isinstance(effect, decisions.HoldMandate):
            mandate.status = transition(MandateStatus(mandate.status), MandateStatus.HELD).value
            mandate.status_reason = effect.reason_code
            state.writes.mandate(mandate.id, {
                "status": mandate.status, "status_reason": mandate.status_reason, "status_changed_at": now,
            })
            done.append("mandate held")
            self.log.debug("mandate.held", mandate_id=mandate.id, reason_code=effect.reason_code)
        elif isinstance(effect, decisions.CancelPending):
            for pending in state.pending.get(mandate.id, ()):
                if pending.status != _PENDING:
                    continue
                pending.status = _transition(pending.status, _R.CANCELLED).value
                pending.reason_code, pending.reason = effect.reason_code, effect.reason
                state.writes.request(pending.id, {
                    "status": pending.status, "status_changed_at": now,
                    "reason_code": pending.reason_code, "reason": pending.reason,
                })
                done.append(f"request {pending.id} cancelled")
        elif isinstance(effect, decisions.Retry):
            retry = DecidedRetry(code, mandate, row, effect)
            state.writes.retries.append(retry)
            state.writes.retry_mandates.add(mandate.id)
            done.append(retry)
            if mandate.status == _SUPERSEDED:
                # Enqueued on the mandate that replaced this one, which a later record of
                # the segment may block: written now, so that it is there to cancel.
                self._write(state)
        elif isinstance(effect, decisions.OpenDispute):
            if row.id in state.paid_invoices:
                self._write(state)  # the dispute reads the account with this return booked
                if open_dispute_for_return(self.session, code, self._orm(row), effect, clock=self.clock):
                    done.append("dispute opened")
        else:  # pragma: no cover - a new kind of effect needs its branch here and in _execute
            raise AssertionError(f"no bulk executor for {effect!r}")

    def _amended_at_bank(self, mandate_id: int, request_id: int, state: _Segment) -> bool:
        """Another request of the mandate that carried an amendment, still at the bank or
        settled, as the segment left them."""
        for other in repo.amended_request_ids_of_mandate(self.session, mandate_id, _AT_BANK):
            current = state.rows.get(other)
            if other != request_id and (current is None or current.status in _AT_BANK):
                return True
        return False

    def _others_at_bank(self, mandate_id: int, request_id: int, state: _Segment) -> bool:
        """Another request of the mandate still at the bank or settled, as the segment left them."""
        for other in repo.request_ids_of_mandate(self.session, mandate_id, _AT_BANK):
            current = state.rows.get(other)
            if other != request_id and (current is None or current.status in _AT_BANK):
                return True
        return False

    def _write(self, state: _Segment) -> None:
        """Send what the segment decided so far to the database, in a few statements."""
        from sepa_engine.services import accounts

        writes = state.writes
        if writes.empty():
            return
        self.session.flush()  # ORM changes of the record-by-record path go first
        for rows in _by_shape(writes.requests):
            repo.update_requests(self.session, rows)
        for rows in _by_shape(writes.mandates):
            repo.update_mandates(self.session, rows)
        debits = self._returned_debits(writes.returned_debits)
        for code, items in _runs(writes.returned):
            accounts.record_returned_payments(self.session, code, items, clock=self.clock, debits=debits)
        for _code, retries in _runs([(r.creditor_code, r) for r in writes.retries]):
            schedule_retries(self.session, retries, clock=self.clock)
            for retry in retries:
                if retry.id is None:  # refused by the account gate: its applied return says why
                    self.log.info("return.retry_refused", request_id=retry.original.id,
                                  reason_code=getattr(retry.gate, "reason_code", None))
                    continue
                self.report.retries += 1
                if retry.mandate_id in state.pending:
                    state.pending[retry.mandate_id].append(retry.pending_row())
        repo.insert_applied(self.session, [
            {**row, "effects": "; ".join(str(effect) for effect in effects) or None} for effects, row in writes.applied
        ])
        self._forget_stale()
        state.writes = _Pending()

    def _returned_debits(self, debits: dict[str, tuple[RequestRow, MandateRow]]) -> dict[str, repo.ReturnedDebitRow]:
        """The debits of the returned payments to book, from the segment's rows (already
        written) and their mandates' accounts, with which of them have their payment booked.

        ``accounts.record_returned_payments`` would otherwise read them again, by end-to-end
        id joined to their mandates: 7.4 s of statements for 100,000 returns on PostgreSQL,
        where reading the payments alone probes one index."""
        if not debits:
            return {}
        booked = repo.requests_with_payment(self.session, {row.id for row, _ in debits.values()}, _PAYMENT)
        return {
            e2e: repo.ReturnedDebitRow(
                row.id, row.creditor_id, mandate.debtor_account_id, row.amount_cents, e2e, row.status, row.id in booked
            )
            for e2e, (row, mandate) in debits.items()
        }

    def _forget_stale(self) -> None:
        # The bulk statements went around the ORM: loaded debits and mandates would be stale.
        for instance in list(self.session.identity_map.values()):
            if isinstance(instance, (DebitRequest, Mandate)):
                self.session.expire(instance)

    def _orm(self, row: RequestRow) -> DebitRequest:
        request = repo.request_by_id(self.session, row.id)
        assert request is not None  # read in this transaction
        return request

    def _today(self, timezone: str, now: dt.datetime) -> dt.date:
        """The creditor's business day at the segment's instant (``clock.business_today``)."""
        key = (timezone, now)
        today = self._days.get(key)
        if today is None:
            today = self._days[key] = now.astimezone(ZoneInfo(timezone)).date()
        return today

    def _creditor(self, creditor_id: int) -> tuple[str, str, int]:
        """Code, time zone and agreed pre-notification notice (days) of a creditor."""
        known = self._creditors.get(creditor_id)
        if known is None:
            creditor = repo.creditor_by_id(self.session, creditor_id)
            known = self._creditors[creditor_id] = (creditor.code, creditor.timezone, creditor.prenotification_days)
        return known

    def _policy(self, creditor_id: int, code: str | None) -> ReasonCode:
        key = (creditor_id, code)
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = policy_for(self.session, creditor_id, code)
        return policy

    # -- record by record
    def handle(self, record: ReturnRecord) -> bool:
        """Apply one record on its own; True when it changed debits or mandates."""
        if self.is_camt and not record.booked:
            # INFO / PDNG: announced, not booked; only booked entries move money.
            self.report.skipped += 1
            return False
        if record.kind is Kind.UNKNOWN:
            self.exception(record, f"status {record.status or '(none)'} not understood: a person decides")
            return False
        if record.kind is Kind.ACCEPTED:
            self.accepted(record)
            return False
        if record.scope in (Scope.GROUP, Scope.PAYMENT_BLOCK):
            self.covering(record)
            return True
        if record.scope is Scope.ENTRY:
            self.entry(record)
            return False
        request, problem = self.match(record)
        if request is None:
            self._unmatched(record, problem)
            return False
        self.apply(record, request)
        return True

    def _unmatched(self, record: ReturnRecord, problem: str) -> None:
        if record.account_iban and not self._is_ours(record.account_iban):
            self.foreign_accounts.add(record.account_iban)
        self.exception(record, problem)

    def _is_ours(self, iban: str) -> bool:
        known = self._ours.get(iban)
        if known is None:
            known = self._ours[iban] = repo.creditor_by_iban(self.session, iban) is not None
        return known

    def accepted(self, record: ReturnRecord) -> None:
        batch = repo.batch_by_message_id(self.session, record.original_message_id) if record.original_message_id else None
        if batch is None:
            self.exception(record, f"acceptance of message {record.original_message_id!r}, which is not one of our files")
            return
        self.matched_any = True
        # One applied row per batch, ``accepted:<batch id>``: the review's timeline shows the
        # acknowledgement from it (the first report that accepted any of the file). A later report saying the same is already applied and
        # changes nothing; the other records of this report about the batch count as before.
        first = self._acknowledged.get(batch.id)
        if first is None:
            key = f"accepted:{batch.id}"
            # No amount: a partly accepting report (PART, with ACCP blocks) acknowledges the
            # file, not its whole control sum; its rejects have rows of their own.
            first = self._acknowledged[batch.id] = (
                repo.applied_by_key(self.session, key) is None
                and self._applied_once(key, record, batch.id, None, "file acknowledged")
            )
        if not first:
            self.report.already_applied += 1
            return
        self.touched[batch.id] = True
        self.report.applied += 1

    def covering(self, record: ReturnRecord) -> None:
        """A pain.002 group or block status: applies to every transaction it covers."""
        batch = repo.batch_by_message_id(self.session, record.original_message_id) if record.original_message_id else None
        block = repo.block_by_payment_info_id(self.session, record.payment_info_id) if record.payment_info_id else None
        if record.scope is Scope.PAYMENT_BLOCK and block is not None and batch is not None and block.batch_id != batch.id:
            block = None
        if record.scope is Scope.GROUP and batch is None:
            self.exception(record, f"group status about message {record.original_message_id!r}, which is not one of our files")
            return
        if record.scope is Scope.PAYMENT_BLOCK and block is None:
            self.exception(record, f"block status about payment information {record.payment_info_id!r}, which is not ours")
            return
        if record.kind is not Kind.REJECTED:
            self.exception(record, f"{record.kind.value} status for a whole {record.scope.value}: a person decides")
            return
        if block is not None:
            scope = {"block_id": block.id}
            self.touched[block.batch_id] = True
        else:
            assert batch is not None
            scope = {"batch_id": batch.id}
            self.touched[batch.id] = True
        self.matched_any = True
        # A whole file may be a million debits: applied a chunk at a time, as the chunks of
        # a file of transaction records are. Each page starts after the last id applied.
        after = 0
        while True:
            self.session.flush()
            covered = repo.request_rows_covered(self.session, statuses=_AT_BANK, after_id=after, limit=CHUNK, **scope)
            if not covered:
                return
            state = self._prepare([(record, row) for row in covered])
            for row in covered:
                self._apply_row(record, row, state)
            self._write(state)
            after = covered[-1].id

    def entry(self, record: ReturnRecord) -> None:
        """A booking without transaction details: a lump sum credited for one of our files."""
        batch = repo.batch_by_message_id(self.session, record.original_message_id) if record.original_message_id else None
        if record.kind is not Kind.SETTLED or batch is None or not record.entry_reference:
            self.exception(record, "booking entry without transaction details: its details come in another file")
            return
        self.matched_any = True
        key = f"settled:entry:{record.entry_reference}"
        if repo.applied_by_key(self.session, key) is not None or not self._applied_once(
            key, record, batch.id, record.amount_cents or record.entry_amount_cents, "lump-sum credit"
        ):
            self.report.already_applied += 1
            return
        self.touched.setdefault(batch.id, False)
        self.report.applied += 1

    # -- matching
    def match(self, record: ReturnRecord) -> tuple[DebitRequest | None, str]:
        if record.end_to_end_id:
            request = repo.request_by_end_to_end_id(self.session, record.end_to_end_id)
            if request is not None:
                if record.amount_cents is not None and record.amount_cents != request.amount_cents:
                    return None, _amount_problem(record, request.amount_cents)
                return request, ""
        if record.original_message_id and record.payment_info_id:
            block = repo.block_by_payment_info_id(self.session, record.payment_info_id)
            batch = repo.batch_by_message_id(self.session, record.original_message_id)
            if block is not None and batch is not None and block.batch_id == batch.id:
                candidates = repo.requests_of_block(self.session, block.id, _AT_BANK, record.amount_cents)
                if record.mandate_reference:
                    candidates = [c for c in candidates if self._mandate_reference(c) == record.mandate_reference]
                if len(candidates) == 1:
                    return candidates[0], ""
                if len(candidates) > 1:
                    return None, f"{len(candidates)} debits of block {record.payment_info_id} fit: ambiguous"
        if record.mandate_reference and record.amount_cents is not None:
            creditors = repo.creditor_ids_by_identifier(self.session, record.creditor_id) if record.creditor_id else None
            candidates = repo.requests_by_mandate_reference(
                self.session, record.mandate_reference, record.amount_cents, _AT_BANK, creditors
            )
            on = record.requested_collection_date or record.settlement_date
            if on is not None:
                candidates = [c for c in candidates if c.collection_date == on]
            if len(candidates) == 1:
                return candidates[0], ""
            if len(candidates) > 1:
                return None, f"{len(candidates)} debits under mandate {record.mandate_reference} fit: ambiguous"
        shown = record.end_to_end_id or "(none)"
        return None, f"no debit matches end-to-end id {shown}, message {record.original_message_id!r} or the mandate"

    def _mandate_reference(self, request: DebitRequest) -> str | None:
        from sepa_engine.db.models import Mandate

        mandate = self.session.get(Mandate, request.mandate_id)
        return mandate.reference if mandate is not None else None

    # -- applying
    def apply(self, record: ReturnRecord, request: DebitRequest) -> None:
        """The record-by-record executor of ``decide``: the effects through the ORM, on the
        debit as the last writer committed it (locked and loaded anew: ``repo.lock_request``)."""
        request = repo.lock_request(self.session, request.id)
        self.matched_any = True
        if request.batch_id is not None:
            self.touched[request.batch_id] = self.touched.get(request.batch_id, False) or not self.is_camt
        key = f"{record.kind.value}:request:{request.id}"
        facts = _facts(record)
        debit = decisions.Debit(
            request.status, request.sequence_type, request.attempt, repo.applied_by_key(self.session, key) is not None,
            _carried_amendment(request), request.amend_original_creditor_identifier,
        )
        policy = mandate = mandate_state = None
        if facts.outcome.is_failure() and not debit.already_applied:
            policy = self._policy(request.creditor_id, record.reason_code)
            mandate = repo.mandate_for_update(self.session, request.mandate_id)
            mandate_state = decisions.MandateState(
                mandate.status, mandate.status_reason, mandate.first_collected_on is not None,
                final_collected=mandate.final_collected,
            )
            if decisions.asks_others_at_bank(facts, debit, mandate_state):
                others = repo.other_requests_count(self.session, mandate.id, request.id, _AT_BANK) > 0
                mandate_state = dataclasses.replace(mandate_state, others_at_bank=others)
            if decisions.asks_amendment_elsewhere(facts, debit):
                amended = repo.amended_request_ids_of_mandate(self.session, mandate.id, _AT_BANK)
                mandate_state = dataclasses.replace(mandate_state, amendment_elsewhere=bool(set(amended) - {request.id}))
        code, timezone, notice_days = self._creditor(request.creditor_id)
        effects = decisions.decide(
            facts, debit, mandate_state, policy, today=business_today(self.clock, timezone), notice_days=notice_days
        )
        first = effects[0]
        if isinstance(first, decisions.AlreadyApplied):
            self.report.already_applied += 1
            return
        if isinstance(first, decisions.QueueException):
            self.exception(record, f"debit {request.end_to_end_id} {first.reason}")
            return
        done: list[str] = []
        for effect in effects:
            self._execute(effect, record, request, mandate, code, done)
        self.applied_row(key, record, request, request.batch_id, request.amount_cents, "; ".join(done) or None)
        self.report.applied += 1
        self.log.debug("return.applied", kind=record.kind.value, request_id=request.id, reason_code=record.reason_code)

    def _applied_once(self, key: str, record: ReturnRecord, batch_id: int, amount: int | None, effects: str) -> bool:
        """The applied row of a fact about a whole file (no debit to lock first); False when
        another import committed the same fact meanwhile (PostgreSQL: this insert waited for
        that commit, and the unique key refused it)."""
        try:
            with self.session.begin_nested():
                self.applied_row(key, record, None, batch_id, amount, effects)
        except IntegrityError:
            return False
        return True

    def applied_row(
        self, key: str, record: ReturnRecord, request: DebitRequest | None, batch_id: int | None, amount: int | None, effects: str | None
    ) -> None:
        repo.add(
            self.session,
            AppliedReturn(
                natural_key=key, return_file_id=self.file_id, kind=record.kind.value,
                debit_request_id=request.id if request is not None else None, batch_id=batch_id,
                end_to_end_id=request.end_to_end_id if request is not None else record.end_to_end_id,
                reason_code=record.reason_code, amount_cents=amount, fees_cents=record.fees_cents,
                booking_date=record.booking_date, effects=effects, applied_at=self.clock.now(),
            ),
        )

    def _execute(
        self, effect: decisions.Effect, record: ReturnRecord, request: DebitRequest, mandate: Mandate | None,
        code: str, done: list[str],
    ) -> None:
        """One effect through the ORM, at once."""
        now = self.clock.now()
        if isinstance(effect, decisions.SetStatus):
            request.status, request.status_changed_at = effect.status.value, now
            if record.kind.is_failure():
                request.reason_code, request.reason = effect.reason_code, effect.reason
            return
        assert mandate is not None  # every other effect is a failure's
        if isinstance(effect, decisions.BookReturn):
            book_returned_payment(self.session, code, request, record, on=effect.on, clock=self.clock)
        elif isinstance(effect, decisions.BookFee):
            book_fee(self.session, code, request, effect.cents, record.kind, on=effect.on, clock=self.clock)
            done.append(f"fee {money.format_cents(effect.cents)}")
        elif isinstance(effect, decisions.ResetFirstCollection):
            mandate.first_collected_on = None
            done.append("first collection reset")
        elif isinstance(effect, decisions.ResetFinalCollection):
            mandate.final_collected = False
            done.append("final collection reset")
        elif isinstance(effect, decisions.CarryAmendment):
            mandate.amendment_pending = True
            if effect.original_creditor_identifier:
                mandate.presented_creditor_identifier = effect.original_creditor_identifier
            done.append("amendment carried again")
        elif isinstance(effect, decisions.BlockMandate):
            mandate.status = transition(MandateStatus(mandate.status), MandateStatus.BLOCKED).value
            mandate.status_reason, mandate.status_changed_at = effect.reason_code, now
            self.report.blocked_mandates += 1
            done.append("mandate blocked")
            self.log.debug("mandate.blocked", mandate_id=mandate.id, reason_code=effect.reason_code)
        elif isinstance(effect, decisions.HoldMandate):
            mandate.status = transition(MandateStatus(mandate.status), MandateStatus.HELD).value
            mandate.status_reason, mandate.status_changed_at = effect.reason_code, now
            done.append("mandate held")
            self.log.debug("mandate.held", mandate_id=mandate.id, reason_code=effect.reason_code)
        elif isinstance(effect, decisions.CancelPending):
            for pending in repo.pending_requests_of_mandate(self.session, mandate.id, _R.PENDING.value):
                pending.status = request_transition(pending.status, _R.CANCELLED).value
                pending.status_changed_at = now
                pending.reason_code, pending.reason = effect.reason_code, effect.reason
                done.append(f"request {pending.id} cancelled")
        elif isinstance(effect, decisions.Retry):
            retry = schedule_retry(self.session, code, mandate.reference, request, effect, clock=self.clock)
            if isinstance(retry, errors.SepaEngineError):
                done.append(retry_refused(retry))
                self.log.info("return.retry_refused", request_id=request.id, reason_code=retry.reason_code)
            elif retry is not None:
                self.report.retries += 1
                done.append(f"retry {retry}")
        elif isinstance(effect, decisions.OpenDispute):
            if open_dispute_for_return(self.session, code, request, effect, clock=self.clock):
                done.append("dispute opened")
        else:  # pragma: no cover - a new kind of effect needs its branch here and in _execute_on_rows
            raise AssertionError(f"no executor for {effect!r}")

    def exception(self, record: ReturnRecord, reason: str) -> None:
        add_exception(self.session, self.file_id, record.to_dict(), reason, record.end_to_end_id, clock=self.clock)
        self.report.exceptions += 1

    # -- end of file
    def date_acknowledgements(self, day: dt.date | None) -> None:
        """The acknowledgements this file wrote carry the report's own date (its CreDtTm),
        which the review shows: the bank's answer may be imported days after it was sent."""
        if day is not None and any(self._acknowledged.values()):
            self.session.flush()
            repo.date_file_answers(self.session, self.file_id, Kind.ACCEPTED.value, day)

    def refuse_foreign_statement(self) -> None:
        # A statement of an account that is none of our creditors', about nothing of ours,
        # is somebody else's file sent to us by mistake: refused, rather than flooding the
        # queue. (A pain.002 names no account of ours; its unknown records are exceptions.)
        if self.foreign_accounts and not self.matched_any:
            accounts = sorted(self.foreign_accounts)
            # Another company's account: masked like every IBAN an operator or a log sees.
            raise errors.ReturnFileError(
                "account", ", ".join(accounts), "is not the account of any of our creditors: file refused",
                shown_value=", ".join(mask_iban(iban) for iban in accounts),
            )

    def close_batches(self) -> None:
        # Locked in id order: two files closing the same batches never wait for each other
        # in a cycle.
        for batch_id, answered_by_pain002 in sorted(self.touched.items()):
            batch = repo.batch_for_update(self.session, batch_id)
            if batch is None:
                continue
            status = advance_batch(self.session, batch, answered_by_pain002, self.file_id, clock=self.clock)
            self.report.batches[batch.message_id] = status
            if status == "mismatch":
                self.report.exceptions += 1
                self.report.batches[batch.message_id] = batch.status


@functools.cache
def _returned_payment() -> type[Any]:
    """``accounts.ReturnedPayment``, imported once: the import statement in the per-effect
    code cost 4 % of a 100,000-return file (cProfile)."""
    from sepa_engine.services import accounts

    return accounts.ReturnedPayment


def _report_day(created: str | None) -> dt.date | None:
    """The day of a report's CreDtTm, in the bank's own offset (None when absent or unreadable)."""
    try:
        return dt.datetime.fromisoformat(created).date() if created else None
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)
def _transition(current: str, target: RequestStatus) -> RequestStatus:
    """``request_transition``, remembered: the chunked path asks the same few pairs 100,000 times."""
    return request_transition(current, target)


def _facts(record: ReturnRecord) -> decisions.Record:
    """What ``decide`` needs of a record about one debit."""
    return decisions.Record(
        _OUTCOME[record.kind], record.reason_code, record.fees_cents, record.booking_date or record.settlement_date
    )


def _carried_amendment(request: DebitRequest) -> bool:
    """``returns.CARRIED_AMENDMENT`` on a loaded request."""
    return bool(
        request.amend_original_mandate_id or request.amend_original_creditor_identifier
        or request.amend_original_iban or request.amend_new_debtor_agent
    )


def _amount_problem(record: ReturnRecord, debit_cents: int) -> str:
    return (
        f"end-to-end id {record.end_to_end_id} matches a debit of "
        f"{money.format_cents(debit_cents)}, not {money.format_cents(record.amount_cents)}"  # type: ignore[arg-type]
    )


def _runs(items: list[tuple[str, T]]) -> Iterator[tuple[str, list[T]]]:
    """Consecutive items of the same creditor, in order (ids are then given in file order)."""
    for code, group in groupby(items, key=lambda item: item[0]):
        yield code, [value for _code, value in group]


def _by_shape(changes: dict[int, dict[str, object]]) -> list[list[dict[str, object]]]:
    """Rows for executemany UPDATEs by id: one list per set of changed columns, in id order.

    A bank lists its returns in no order of ours; updated in id order, a segment's rows are
    found walking the table forward (SQLite, 100,000 returns in a random order into 1,000,000
    debits: 24.9-26.2 s against 26.3-27.6 s, BENCHMARKS.md). Each id is in one row of a
    statement, so the order changes nothing else."""
    shapes: dict[frozenset[str], list[dict[str, object]]] = {}
    for row_id, values in sorted(changes.items()):
        shapes.setdefault(frozenset(values), []).append({"b_id": row_id, **values})
    return list(shapes.values())


class _Pending:
    """Writes a segment decided and has not sent yet."""

    def __init__(self) -> None:
        self.requests: dict[int, dict[str, object]] = {}
        self.mandates: dict[int, dict[str, object]] = {}
        self.returned: list[tuple[str, Any]] = []
        # The debit and mandate of each returned payment, by end-to-end id (``_Run._returned_debits``).
        self.returned_debits: dict[str, tuple[RequestRow, MandateRow]] = {}
        self.retries: list[DecidedRetry] = []
        self.retry_mandates: set[int] = set()
        self.applied: list[tuple[list[object], dict[str, object]]] = []

    def request(self, request_id: int, changes: dict[str, object]) -> None:
        self.requests.setdefault(request_id, {}).update(changes)

    def mandate(self, mandate_id: int, changes: dict[str, object]) -> None:
        self.mandates.setdefault(mandate_id, {}).update(changes)

    def empty(self) -> bool:
        return not (self.requests or self.mandates or self.returned or self.retries or self.applied)


class _Segment:
    """The rows a segment reads once and then keeps up to date in memory."""

    def __init__(self, rows: dict[int, RequestRow], now: dt.datetime) -> None:
        self.rows = rows
        # One instant for the segment's changes, as for one chunk of a batch enqueue: the
        # rows of one round trip share it (and its text is formatted once per write).
        self.now = now
        self.applied: set[str] = set()
        self.mandates: dict[int, MandateRow] = {}
        # Pending requests of the mandates that are or may become blocked, by id.
        self.pending: dict[int, list[RequestRow]] = {}
        self.paid_invoices: set[int] = set()
        self.writes = _Pending()


def add_exception(
    session: Session, file_id: int, record: dict[str, Any], reason: str, end_to_end_id: str | None, *, clock: Clock
) -> ReturnException:
    row = ReturnException(
        return_file_id=file_id, record=json.dumps(record, sort_keys=True, default=str),
        end_to_end_id=(end_to_end_id or None) and end_to_end_id[:35], reason=reason,
        status=ExceptionStatus.OPEN, created_at=clock.now(),
    )
    repo.add(session, row)
    log.info("return.exception", file_id=file_id, exception_id=row.id, reason=reason)
    return row


def advance_batch(session: Session, batch: Batch, answered_by_pain002: bool, file_id: int, *, clock: Clock) -> str:
    """Move a file along published -> acknowledged / partly_rejected / rejected -> settled
    (settled_with_rejects when some of its debits were rejected).

    Returns the new status, or "mismatch" when every debit has an answer and the money
    credited differs from the control sum less the rejects (an exception is queued).

    When the file becomes settled, the money for all of it is in: its debits still
    ``submitted`` (a lump sum booked without details says nothing of each) were paid, and
    become ``settled`` in one statement. A lump sum is the bank's total for the file, so
    it is compared at once, even while debits are unanswered one by one: they never
    will be.
    """
    totals = repo.batch_totals(session, batch.id)
    rejected_count, rejected_cents = totals.get(_R.REJECTED.value, (0, 0))
    waiting = totals.get(_R.SUBMITTED.value, (0, 0))[0]
    current = BatchStatus(batch.status)
    wanted: BatchStatus | None = None
    if rejected_count and rejected_count == batch.count:
        wanted = BatchStatus.REJECTED
    elif rejected_count:
        wanted = BatchStatus.PARTLY_REJECTED
    elif answered_by_pain002:
        wanted = BatchStatus.ACKNOWLEDGED
    credited = repo.credited_cents(session, batch.id, Kind.SETTLED.value)
    expected = batch.sum_cents - rejected_cents
    if credited and credited == expected and wanted is not BatchStatus.REJECTED:
        wanted = BatchStatus.SETTLED_WITH_REJECTS if rejected_count else BatchStatus.SETTLED
    elif credited and credited != expected and (waiting == 0 or repo.has_lump_sum(session, batch.id, Kind.SETTLED.value)):
        reason = (
            f"file {batch.message_id}: credited {money.format_cents(credited)}, expected "
            f"{money.format_cents(expected)} (control sum less rejects)"
        )
        # Every later file about this batch sees the same gap: one open exception says it.
        if not repo.open_exception_with_reason(session, reason):
            add_exception(
                session, file_id,
                {"batch": batch.message_id, "control_sum": money.format_cents(batch.sum_cents),
                 "rejected": money.format_cents(rejected_cents), "credited": money.format_cents(credited)},
                reason, None, clock=clock,
            )
            _move(session, batch, current, wanted)
            return "mismatch"
        _move(session, batch, current, wanted)
        return batch.status
    if _move(session, batch, current, wanted) and wanted is not None and wanted.is_settled() and waiting:
        status = request_transition(_R.SUBMITTED, _R.SETTLED).value
        settled = repo.settle_waiting_requests(session, batch.id, _R.SUBMITTED.value, status, clock.now())
        for instance in list(session.identity_map.values()):
            if isinstance(instance, DebitRequest):
                session.expire(instance)  # the UPDATE went around the ORM
        log.info("batch.debits_settled", batch_id=batch.id, message_id=batch.message_id, count=settled)
    return batch.status


def _move(session: Session, batch: Batch, current: BatchStatus, wanted: BatchStatus | None) -> bool:
    """True when the batch moved to ``wanted``."""
    if wanted is None or wanted is current:
        return False
    try:
        batch.status = batch_transition(current, wanted).value
    except errors.CollectionError:
        return False  # e.g. a late pain.002 after settlement: the later state stands
    session.flush()
    log.info("batch.status", batch_id=batch.id, message_id=batch.message_id, status=batch.status)
    return True


# --- effects on the rest of the ledger (each one function, so each can be replaced) -------
def book_returned_payment(
    session: Session, creditor_code: str, request: DebitRequest, record: ReturnRecord, *, on: dt.date, clock: Clock
) -> None:
    """The money is owed again: a returned-payment entry on the debtor's account (issue 5)."""
    from sepa_engine.services import accounts

    accounts.record_returned_payment(
        session, creditor_code, request.end_to_end_id, returned_on=on, reason_code=record.reason_code,
        amount_cents=request.amount_cents, idempotency_key=f"return:{request.id}", clock=clock,
    )


def book_fee(
    session: Session, creditor_code: str, request: DebitRequest, fee_cents: int, kind: Kind, *, on: dt.date, clock: Clock
) -> None:
    """The bank's charge for the R-transaction, passed on to the debtor's account as a fee."""
    from sepa_engine.services import accounts
    from sepa_engine.services.account_inputs import LedgerEntryInput

    reference = repo.account_reference(session, _account_id(session, request))
    accounts.record_entry(
        session, creditor_code, reference,
        LedgerEntryInput(
            kind="fee", number=f"RFEE-{request.id}-{kind.value[:3].upper()}", issue_date=on,
            amount=Decimal(fee_cents) / 100, label=f"bank charge: {kind.value} {request.end_to_end_id}"[:140],
        ),
        idempotency_key=f"return-fee:{request.id}:{kind.value}", clock=clock,
    )


def _account_id(session: Session, request: DebitRequest) -> int:
    from sepa_engine.db.models import Mandate

    mandate = session.get(Mandate, request.mandate_id)
    assert mandate is not None
    return mandate.debtor_account_id


def open_dispute_for_return(
    session: Session, creditor_code: str, request: DebitRequest, decided: decisions.OpenDispute, *, clock: Clock
) -> bool:
    """Open a dispute on the invoices the debit paid (MD06 refunds...); False when it paid none."""
    from sepa_engine.services import disputes
    from sepa_engine.services.account_inputs import DisputedInvoice, DisputeInput

    invoices = repo.invoices_paid_by(session, request.id)
    if not invoices:
        return False
    reference = repo.account_reference(session, _account_id(session, request))
    disputes.open_dispute(
        session, creditor_code, reference,
        DisputeInput(
            reason=f"{decided.reason_code}: {decided.meaning} (debit {request.end_to_end_id})",
            invoices=tuple(DisputedInvoice(number=number, amount=money.format_cents(cents)) for number, cents in invoices),
        ),
        actor="reconciliation", idempotency_key=f"return-dispute:{request.id}", clock=clock,
    )
    return True
