"""The collection run: due requests into published pain.008 files, exactly once.

The run is a workflow with commits at fixed points, so this module (unlike the other
services) owns its transactions; each step below says what a crash right after it leaves
behind and how the next run carries on. Steps 1 to 3 run creditor by creditor, each under
that creditor's lock (``db/locks.py``): only one run acts on a creditor at a time, runs in
other processes take the other creditors meanwhile (a creditor another run holds is
skipped, and named in the report), and every step is safe to repeat.

1. Recover what an earlier run left: a WRITTEN batch is published if its staged or final
   file has the recorded sha256 (else rewritten); PLANNED batches are (re)written as in
   step 3, before step 2 assigns anything (their content is fully determined by the ledger,
   so the bytes are the same, and their hand-over moves the history of mandates that new
   requests may share); stray temporary files are removed.
2. Assign and plan, a file at a time: each due request is validated and either REFUSED with
   its reason code or decided (collection date, sequence type and amendment; in two child
   processes while the run reads and writes, ``assessing.py``); the decided ones are cut
   into batches (files) and payment blocks whose counts and sums are recorded, their
   requests ASSIGNED. The decisions wait in a temporary table until planning, so each
   request row is written once here (status, date, type, amendment, batch and block
   together) and once more when its file is handed over. Each file is committed on its own
   (the first with the refusals) and written (step 3) while the next one is planned.
   Crash before a file's commit: its requests and the later ones are still pending, the
   next run assesses them again. After: step 3 of any later run, before it assigns.
3. For each planned batch: stream its rows into a temporary file, validated against the
   XSD and against the recorded block totals (``write_pain008`` with a plan); record its
   sha256 (WRITTEN); publish by an atomic link; mark it PUBLISHED, its requests SUBMITTED
   and move the mandates' history. The next batch is staged meanwhile, on a thread of its
   own (``_Stager``); a staged file is only recorded once the one before it is published.
   On PostgreSQL the hand-over's statements run while their own file is staged, in a
   transaction committed after publication (``_hand_over_while_staged``).

Requests stream from the ledger in chunks; nothing holds the run's requests in memory.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from sepa_engine import errors, gc_tuning, outbox
from sepa_engine.clock import Clock
from sepa_engine.config import Settings
from sepa_engine.db import locks
from sepa_engine.db.models import Batch, Creditor, PaymentBlock
from sepa_engine.db.repositories import accounts as accounts_repo
from sepa_engine.db.repositories import collection as repo
from sepa_engine.db.session import Database, reuse_key_check_plans, transaction_undone
from sepa_engine.domain import bank_profiles, calendar, charset
from sepa_engine.domain.assignment import Assessor, Terms
from sepa_engine.domain.batching import Collectible, plan_files
from sepa_engine.domain.directdebit import (
    Amendment,
    BlockKey,
    DirectDebit,
    FileHeader,
    LocalInstrument,
    PostalAddress,
    SequenceType,
    UltimateParty,
)
from sepa_engine.domain.directdebit import Creditor as CreditorParty
from sepa_engine.domain.directdebit import PaymentBlock as BlockHeader
from sepa_engine.domain.mandate import FirstCollectionPolicy
from sepa_engine.domain.statuses import BatchStatus, RequestStatus, batch_transition
from sepa_engine.ids import IdSource
from sepa_engine.iso20022.pain008 import BlockPlan, WrittenFile, creation_time, write_pain008
from sepa_engine.iso20022.versions import writable_version
from sepa_engine.progress import SILENT, Progress
from sepa_engine.review import write_summary
from sepa_engine.services import accounts, assessing

log = structlog.get_logger("sepa_engine.collection")

Checkpoint = Callable[[str], None]
StopSignal = Callable[[], bool]
_T = TypeVar("_T")


def _no_checkpoint(_name: str) -> None:
    return None


def _never_stop() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class FileOutcome:
    batch_id: int
    creditor_code: str
    message_id: str
    path: Path
    count: int
    sum_cents: int
    blocks: tuple[tuple[dt.date, str, int, int], ...]
    recovered: bool = False
    # Published under outbox/pending/: waits for ``batch approve`` before the bank sees it.
    awaiting_approval: bool = False


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """A file a dry run would write: its creditor, totals and blocks, never a message id
    (the real run draws its own)."""

    creditor_code: str
    count: int
    sum_cents: int
    # (collection date, sequence type, transactions, sum in cents), in file order.
    blocks: tuple[tuple[dt.date, str, int, int], ...]
    awaiting_approval: bool = False
    # Planned (or written) by an earlier run that crashed or was stopped: the real run
    # writes it before it assigns anything new.
    left_by_earlier_run: bool = False


@dataclass(slots=True)
class CollectionReport:
    run_id: int | None
    business_date: dt.date
    dry_run: bool
    assigned: int = 0
    refused: int = 0
    files: list[FileOutcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Dry runs keep what they would have refused and written, since nothing is stored.
    refusals: list[tuple[str, str, str, str]] = field(default_factory=list)
    plan: list[PlannedFile] = field(default_factory=list)
    # ``should_stop`` said stop: the run ended between two files. What it had not written
    # yet stays PLANNED (or pending) and the next run carries on from there.
    interrupted: bool = False
    # Codes of the creditors another run held (after ``lock_wait_seconds``): left to it.
    skipped: list[str] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.assigned or self.refused or self.files or self.plan or self.failures or self.interrupted)


# --- the run ----------------------------------------------------------------------------


# The collector is eased for the whole run (gc_tuning.py says why).
@gc_tuning.long_run()
def run_collection(
    db: Database,
    settings: Settings,
    clock: Clock,
    ids: IdSource,
    *,
    creditor_code: str | None = None,
    business_date: dt.date | None = None,
    dry_run: bool = False,
    checkpoint: Checkpoint = _no_checkpoint,
    should_stop: StopSignal | None = None,
    progress: Progress = SILENT,
) -> CollectionReport:
    """One collection run; see the module docstring for its steps.

    ``should_stop`` is asked between files: after a file's transaction is committed and the
    file published, before the next one is assigned or recorded. When it answers true, the
    run ends there with ``report.interrupted`` set; the file staged ahead is called off, no
    temporary file is left behind, and what was not written yet is written by the next run.
    ``progress`` hears the number of transactions to write (``total``) and each file's
    chunks as it is staged (``advance``).
    """
    stop = should_stop or _never_stop
    now = _run_instant(clock, settings.timezone, business_date)
    report = CollectionReport(None, now.astimezone(ZoneInfo(settings.timezone)).date(), dry_run)
    if dry_run:
        # One transaction over every creditor, rolled back: nothing is claimed, nothing locked.
        _dry_run(db, settings, clock, ids, now, report, creditor_code)
        return report
    with db.reader() as session:
        creditors = [(c.id, c.code) for c in repo.creditors(session, creditor_code)]
    if creditor_code is not None and not creditors:
        raise errors.NotFound("creditor", creditor_code)
    with assessing.Assessors() as assessors:
        run = _Run(db, settings, clock, ids, now, report, checkpoint, stop, progress, assessors)
        if creditor_code is not None:
            # The operator named this creditor: wait for it, and say so if it stays busy.
            with locks.creditor_lock(db, creditors[0][0], settings.lock_wait_seconds) as lease:
                run.start()
                run.creditor(creditors[0][0], creditor_code, lease)
        else:
            run.start()
            run.all_creditors(creditors)
    with db.transaction() as session:
        outcome = (
            "failed" if report.failures else "interrupted" if report.interrupted
            else "nothing_to_do" if report.nothing_to_do else "ok"
        )
        repo.finish_run(session, report.run_id, clock.now(), outcome, report.assigned, report.refused, len(report.files))  # type: ignore[arg-type]
    return report


@dataclass(slots=True)
class _Run:
    """A run's steps for one creditor at a time, each under that creditor's lock."""

    db: Database
    settings: Settings
    clock: Clock
    ids: IdSource
    now: dt.datetime
    report: CollectionReport
    checkpoint: Checkpoint
    stop: StopSignal
    progress: Progress
    assessors: assessing.Assessors
    planned_total: int = 0

    def start(self) -> None:
        with self.db.transaction() as session:
            self.report.run_id = repo.start_run(session, self.clock.now(), self.report.business_date, False).id

    def all_creditors(self, creditors: list[tuple[int, str]]) -> None:
        # First pass without waiting, so a run takes every creditor no one holds before it
        # waits for any; then the busy ones again, for what is left of the wait.
        deadline = time.monotonic() + max(self.settings.lock_wait_seconds, 0.0)
        busy: list[tuple[int, str]] = []
        for wait_for_busy in (False, True):
            for creditor_id, code in busy if wait_for_busy else creditors:
                if self.report.interrupted:
                    return
                wait = max(deadline - time.monotonic(), 0.0) if wait_for_busy else 0.0
                if self.settings.lock_wait_seconds < 0 and wait_for_busy:
                    wait = -1.0
                try:
                    with locks.creditor_lock(self.db, creditor_id, wait) as lease:
                        self.creditor(creditor_id, code, lease)
                except locks.LockBusy:
                    if wait_for_busy:
                        self.report.skipped.append(code)
                        log.info("collection.creditor_skipped", creditor=code, reason="lock_busy")
                    else:
                        busy.append((creditor_id, code))

    def creditor(self, creditor_id: int, code: str, lease: locks.Lease) -> None:
        """Steps 1 to 3 for one creditor; the caller holds its lock."""
        report = self.report
        # A lock that went away (PostgreSQL dropped its connection) may be someone else's
        # now: stop between files as for SIGTERM, and leave the rest to the next run.
        def stop() -> bool:
            return bool(self.stop()) or not lease.held()

        report.files.extend(recover(self.db, self.settings, self.clock, creditor_id))
        # Files an earlier run planned and did not write (it crashed or was stopped between
        # files) go to the bank before anything new is assigned: their hand-over moves their
        # mandates' history, so a new request on one of those mandates is assessed after it
        # (RCUR, not a second FRST; its amendment already presented).
        report.files.extend(self.write(creditor_id, stop))
        if report.interrupted or stop():
            # Stopped before anything new was claimed: the requests stay pending.
            report.interrupted = True
            log.info("collection.interrupted", files=len(report.files), step="before_assign", creditor=code)
            return
        # Assigned and planned a file at a time, each file written while the next is planned.
        with closing(self.planning(code)) as planning:
            report.files.extend(self.write(creditor_id, stop, planning))

    def write(self, creditor_id: int, stop: StopSignal, planning: Iterator[tuple[int, int]] | None = None) -> list[FileOutcome]:
        return write_planned(
            self.db, self.settings, self.clock, self.report, self.checkpoint, stop, self.progress,
            creditor_id=creditor_id, totals=self, planning=planning,
        )

    def planning(self, code: str) -> Generator[tuple[int, int], None, None]:
        """Step 2 for one creditor: its due requests assessed, then cut into files, each
        file committed on its own (its batch, blocks and ASSIGNED requests) and yielded as
        (batch id, transactions) for the caller to write, which it does while the next file
        is planned. The decisions wait in a temporary table private to one connection, so
        every transaction of this step runs on that connection.

        The first transaction also holds the refusals. A crash, or the caller stopping,
        between two files leaves the files committed so far PLANNED (the next run writes
        them before it assigns anything) and the rest of the requests pending (the next run
        assesses them again, after that hand-over): each request is in one file or none."""
        with self.db.engine.connect() as connection:
            with Session(bind=connection, expire_on_commit=False) as session:
                # A failure leaves the table to the next open_decisions, which drops it (closing
                # the session rolls back what was in progress). A caller that stops does so
                # between two files, each committed when it was yielded.
                try:
                    yield from self._plan_in_turn(session, code)
                except GeneratorExit:
                    self._drop_decisions(session)
                    raise
                self._drop_decisions(session)

    @staticmethod
    def _drop_decisions(session: Session) -> None:
        with session.begin():
            repo.close_decisions(session)

    def _plan_in_turn(self, session: Session, code: str) -> Iterator[tuple[int, int]]:
        report = self.report
        assert report.run_id is not None
        session.begin()
        reuse_key_check_plans(session)
        creditor = repo.creditors(session, code)[0]
        decided = _assign_creditor(session, self.clock, self.settings, creditor, report.run_id, self.now, report, self.assessors)
        if not decided:
            # Nothing to plan: the refusals alone.
            self.checkpoint("during_assign")
            session.commit()
            self.checkpoint("after_assign")
            return
        # The progress total grows creditor by creditor, as each one's requests are decided.
        self.planned_total += decided
        self.progress.total(self.planned_total)
        files = _planned_files(session, self.settings, self.clock, self.now, self.ids, creditor, report.run_id)
        first = True
        for planned in files:
            _check_applied(creditor.code, planned)
            self.checkpoint("during_assign" if first else "during_plan")
            session.commit()
            self.checkpoint("after_assign" if first else "after_plan")
            report.assigned += planned.plan.count
            decided -= planned.plan.count
            first = False
            yield planned.batch_id, planned.plan.count
            if not decided:
                # Every decision is in a file: no transaction to open for the next one.
                return
            session.begin()
            reuse_key_check_plans(session)
        # plan_files puts every decision in a file, so the loop ends by the return above.
        raise AssertionError(f"{decided} decided requests are in no file")


def _run_instant(clock: Clock, timezone: str, business_date: dt.date | None) -> dt.datetime:
    # A run "for" a business date counts as made at the start of that day, before any
    # cut-off: the date the operator asked for is the submission day if TARGET is open.
    if business_date is None:
        return clock.now()
    return dt.datetime.combine(business_date, dt.time(0, 0), ZoneInfo(timezone))


# --- step 2: assign -----------------------------------------------------------------------


def _dry_run(
    db: Database, settings: Settings, clock: Clock, ids: IdSource, now: dt.datetime, report: CollectionReport,
    creditor_code: str | None,
) -> None:
    """Steps 1 to 3 as the real run would take them, in one transaction over every creditor,
    rolled back: nothing is claimed, nothing locked, no file written; ``report.plan`` says
    what would be."""
    try:
        with db.transaction() as session:
            reuse_key_check_plans(session)
            # Its run row goes with the rollback, like everything else the dry run did.
            run_id = report.run_id = repo.start_run(session, clock.now(), report.business_date, True).id
            creditors = repo.creditors(session, creditor_code)
            if creditor_code is not None and not creditors:
                raise errors.NotFound("creditor", creditor_code)
            with assessing.Assessors() as assessors:
                for creditor in creditors:
                    report.plan.extend(_hand_over_left_files(session, clock, creditor))
                    decided = _assign_creditor(session, clock, settings, creditor, run_id, now, report, assessors)
                    report.assigned += decided
                    for planned in _planned_files(session, settings, clock, now, ids, creditor, run_id) if decided else ():
                        _check_applied(creditor.code, planned)
                        report.plan.append(planned.plan)
                    repo.close_decisions(session)
            raise _DryRunDone
    except _DryRunDone:
        report.run_id = None


def _hand_over_left_files(session, clock: Clock, creditor: Creditor) -> list[PlannedFile]:  # type: ignore[no-untyped-def]
    """A dry run's view of the files an earlier run left planned or written (it crashed or
    was stopped): the real run writes them before it assigns anything (``_Run.creditor``),
    and their hand-over moves the history of mandates that new requests may share, or
    holds those requests behind a file awaiting approval. Done here in the dry run's own
    transaction, rolled back with it, so that its plan shows what the real run would do
    (RCUR after a left FRST, not a second FRST). It assumes each left file is written; the
    real run may still fail one (its bank's rules changed) and then collect its requests."""
    left = [*repo.batches_in(session, [BatchStatus.WRITTEN], creditor.id), *repo.batches_in(session, [BatchStatus.PLANNED], creditor.id)]
    held = bool(creditor.requires_approval)
    at = clock.now()
    files: list[PlannedFile] = []
    for batch in left:
        # The statuses it would reach, set directly: nothing of this is kept.
        if held:
            repo.set_batch(session, batch.id, status=BatchStatus.AWAITING_APPROVAL.value, held_at=at)
        else:
            repo.set_batch(session, batch.id, status=BatchStatus.PUBLISHED.value, published_at=at)
            hand_over(session, clock, batch.id, creditor, at)
        files.append(PlannedFile(
            creditor.code, batch.count, batch.sum_cents,
            _block_totals(batch.blocks),
            awaiting_approval=held, left_by_earlier_run=True,
        ))
    return files


class _DryRunDone(Exception):
    """Raised inside the assignment transaction of a dry run so that it rolls back."""


def _assign_creditor(  # type: ignore[no-untyped-def]
    session, clock: Clock, settings: Settings, creditor: Creditor, run_id: int, now: dt.datetime, report: CollectionReport,
    assessors: assessing.Assessors,
) -> int:
    cutoff = dt.time.fromisoformat(creditor.cutoff)
    bank = bank_profiles.profile(creditor.bank_profile)
    try:
        # Registered while its bank still took the version: the run stops short of a file
        # the bank would reject, and says why; the requests stay pending.
        bank.check_version(creditor.pain008_version, report.business_date)
    except errors.ConfigurationError as exc:
        report.failures.append(f"creditor {creditor.code}: {exc}")
        log.error("creditor.refused", creditor=creditor.code, error=str(exc))
        return 0
    terms = Terms(
        creditor_identifier=creditor.creditor_identifier,
        policy=FirstCollectionPolicy(creditor.first_collection_policy),
        now=now,
        lead_days=creditor.lead_days,
        cutoff=cutoff,
        timezone=creditor.timezone,
        closed=bank.closing_days,
        earliest=calendar.earliest_collection_date(now, creditor.lead_days, cutoff, creditor.timezone, bank.closing_days),
        address_form=bank_profiles.address_form(creditor.pain008_version, report.business_date),
        creditor_has_address=bool(creditor.address_country and creditor.address_town),
    )
    assigned = 0
    # A creditor whose files wait for approval: a request on a mandate whose earlier debit
    # is in a held file waits too, since its sequence type (FRST or RCUR) and amendment
    # depend on that file reaching the bank.
    waits = bool(creditor.requires_approval)
    repo.open_decisions(session)
    due = repo.due_requests(session, creditor.id, terms.earliest, settings.chunk_size, behind_held_files=waits)
    for refused, decided in assessors.assessed(due, Assessor(terms)):
        # Refusals are written now; assignments are decisions that planning writes together
        # with their batch and block (repo.decisions says why).
        stamp = clock.now()
        for request in refused:
            log.info("request.refused", creditor=creditor.code, request_id=request.id, reason_code=request.reason_code)
        if report.dry_run:
            report.refusals.extend((creditor.code, r.end_to_end_id, r.reason_code, r.reason) for r in refused)
        report.refused += len(refused)
        repo.update_requests(session, [{
            "id": r.id, "status": RequestStatus.REFUSED.value, "status_changed_at": stamp,
            "reason_code": r.reason_code, "reason": r.reason, "run_id": run_id,
        } for r in refused])
        repo.add_decisions(session, decided)
        assigned += len(decided)
    return assigned


@dataclass(frozen=True, slots=True)
class _FilePlanned:
    batch_id: int
    plan: PlannedFile
    # How many requests its blocks moved to ASSIGNED: ``plan.count`` unless some changed.
    applied: int


def _planned_files(  # type: ignore[no-untyped-def]
    session, settings: Settings, clock: Clock, now: dt.datetime, ids: IdSource, creditor: Creditor, run_id: int,
) -> Iterator[_FilePlanned]:
    """Cut the creditor's decisions into files and blocks, a file at a time; each block's
    requests become ASSIGNED to it in one statement. A file is yielded once its batch,
    blocks and requests are flushed into ``session``'s transaction, which the caller
    commits (a file at a time in a real run, never in a dry run); the next file is planned
    when the caller asks for it."""
    party = _creditor_party(creditor)
    instrument = LocalInstrument(creditor.local_instrument)
    version = writable_version(creditor.pain008_version)
    # The file is created at the run's instant: a run "as of" a business date writes files
    # of that date, so its collection dates never precede the file's own CreDtTm.
    created = creation_time(now, creditor.timezone)
    stamp = clock.now()
    repo.seal_decisions(session)

    def collectibles() -> Iterator[Collectible[tuple[int, int]]]:
        # One key per (date, type): a value, equal whether built once or per request, and the
        # creditor's columns are ORM attributes (slow to read a million times).
        keys: dict[tuple[dt.date, str], BlockKey] = {}
        for request_id, collection_date, seq, amount in repo.decided(session, settings.chunk_size):
            key = keys.get((collection_date, seq))
            if key is None:
                key = keys[collection_date, seq] = BlockKey(
                    creditor.creditor_identifier, creditor.iban, collection_date, SequenceType(seq), instrument,
                )
            yield Collectible(key, party, (request_id, amount))

    def assign(block: PaymentBlock, first_id: int, last_id: int) -> int:
        # A block's entries are consecutive in (collection date, sequence type, id) order and
        # share its date and type, so its requests are exactly that id range of its key.
        return repo.assign_block(
            session, at=stamp, batch_id=block.batch_id, block_id=block.id,
            collection_date=block.collection_date, sequence_type=block.sequence_type, first_id=first_id, last_id=last_id,
        )

    for planned in plan_files(collectibles(), max_per_file=creditor.max_per_file, ids=ids, created_at=created):
        header = planned.header
        batch = repo.add_batch(session, Batch(
            creditor_id=creditor.id, run_id=run_id, message_id=header.message_id,
            status=BatchStatus.PLANNED.value, version=version.name, created_at=created,
            file_name=f"{header.message_id}.xml", count=0, sum_cents=0,
        ))
        block: PaymentBlock | None = None
        blocks: list[PaymentBlock] = []
        position = applied = 0
        first_id = last_id = 0
        # Totals counted in plain ints and set on the ORM rows once per block and file: an
        # instrumented attribute costs a microsecond or two per read or write, four per entry.
        payment_info_id: str | None = None
        count = sum_cents = file_count = file_sum = 0
        for block_header, (request_id, amount) in planned.entries:
            if block_header.payment_info_id != payment_info_id:
                if block is not None:
                    block.count, block.sum_cents = count, sum_cents
                    applied += assign(block, first_id, last_id)
                payment_info_id = block_header.payment_info_id
                count = sum_cents = 0
                position += 1
                block = repo.add_block(session, PaymentBlock(
                    batch_id=batch.id, position=position, payment_info_id=block_header.payment_info_id,
                    collection_date=block_header.key.collection_date, sequence_type=block_header.key.sequence_type.value,
                    local_instrument=instrument.value, creditor_iban=creditor.iban, count=0, sum_cents=0,
                ))
                blocks.append(block)
                first_id = request_id
            last_id = request_id
            count += 1
            sum_cents += amount
            file_count += 1
            file_sum += amount
        if block is not None:
            block.count, block.sum_cents = count, sum_cents
            applied += assign(block, first_id, last_id)
        batch.count, batch.sum_cents = file_count, file_sum
        session.flush()
        log.info("batch.planned", creditor=creditor.code, batch_id=batch.id, message_id=batch.message_id,
                 transactions=batch.count)
        yield _FilePlanned(batch.id, PlannedFile(
            creditor.code, batch.count, batch.sum_cents,
            _block_totals(blocks),
            awaiting_approval=bool(creditor.requires_approval),
        ), applied)


def _block_totals(blocks: list[PaymentBlock]) -> tuple[tuple[dt.date, str, int, int], ...]:
    """(collection date, sequence type, transactions, sum in cents) of each block, as reports give them."""
    return tuple((b.collection_date, b.sequence_type, b.count, b.sum_cents) for b in blocks)


def _check_applied(creditor_code: str, planned: _FilePlanned) -> None:
    """A request changed under the run (cancelled meanwhile) would leave a file whose totals
    do not match its rows: the file's transaction is rolled back and the run stops with this
    error. Files committed before it stay PLANNED (the next run writes them first); its
    requests and the rest stay pending for the next run."""
    if planned.applied != planned.plan.count:
        count = planned.plan.count
        raise errors.CollectionError(
            "creditor", creditor_code, f"{count - planned.applied} of {count} assigned requests changed during the run",
        )


def _creditor_party(creditor: Creditor) -> CreditorParty:
    address = None
    if creditor.address_country and creditor.address_town:
        address = PostalAddress(
            country=creditor.address_country, town=charset.to_sepa_text(creditor.address_town, charset.TOWN_MAX),
            street=_text(creditor.address_street, charset.STREET_MAX),
            building_number=_text(creditor.address_building_number, charset.BUILDING_NUMBER_MAX),
            postcode=_text(creditor.address_postcode, charset.POSTCODE_MAX),
        )
    return CreditorParty(
        name=charset.to_sepa_text(creditor.name, charset.NAME_MAX), iban=creditor.iban,
        creditor_id=creditor.creditor_identifier, bic=creditor.bic, address=address,
    )


def _text(value: str | None, limit: int) -> str | None:
    return charset.to_sepa_text(value, limit) or None if value else None


# --- step 3: write, record, publish --------------------------------------------------------


def write_planned(
    db: Database,
    settings: Settings,
    clock: Clock,
    report: CollectionReport,
    checkpoint: Checkpoint = _no_checkpoint,
    should_stop: StopSignal = _never_stop,
    progress: Progress = SILENT,
    *,
    creditor_id: int | None = None,
    totals: _Run | None = None,
    planning: Iterator[tuple[int, int]] | None = None,
) -> list[FileOutcome]:
    """Write, record and publish planned batches: those ``planning`` yields as it commits
    them (a run's new files), else the PLANNED batches in the ledger (of one creditor, whose
    lock the caller holds, or of all)."""
    outcomes: list[FileOutcome] = []
    if planning is None:
        with db.reader() as session:
            planned = [(b.id, b.count) for b in repo.batches_in(session, [BatchStatus.PLANNED], creditor_id)]
        if totals is None:
            progress.total(sum(count for _id, count in planned))
        elif planned:
            # Creditor by creditor, the total grows as each one's files are found.
            totals.planned_total += sum(count for _id, count in planned)
            progress.total(totals.planned_total)
        if not planned:
            # The usual answer for leftovers (a run asks before it assigns): no stager to start.
            return outcomes
        planning = iter(planned)
    # The first file now; each next one is planned (a new file committed) while the one
    # before it is staged and handed over, and not at all once the run stops.
    following = next(planning, None)
    if following is None:
        return outcomes
    # PostgreSQL: planning and the hand-over are mostly the server's work, staging the
    # engine's, so each next file is planned on a thread of its own, beside this file's
    # hand-over, and queued for staging as soon as it is committed: the stager goes from file
    # to file. SQLite has one writer: a planner beside the hand-over would only make one wait
    # for the other's lock (1,000,000 requests: 67.3 s against 60.9 and 65.3 s), so the next
    # file is planned on this thread, while this one is still being staged.
    planner = ThreadPoolExecutor(1, thread_name_prefix="planner") if not db.is_sqlite else nullcontext()
    with _Stager(db, settings, checkpoint, progress) as stager, planner as pool:
        # The next file is rendered while this one is recorded and published: rendering is
        # the engine's work, publishing mostly the database's, so the two use both cores.
        ahead = stager.stage(*following) if not should_stop() else None
        while following is not None:
            batch_id = following[0]
            if ahead is None or should_stop():
                # Between two files: the previous one is committed and published; the next
                # one's staging is called off and its temporary file removed. It stays
                # PLANNED for the next run, and nothing more is planned.
                stager.call_off(ahead)
                report.interrupted = True
                log.info("collection.interrupted", files=len(outcomes), left_planned_batch=batch_id)
                break
            current = ahead
            upcoming = _run_on(pool, _plan_and_stage, planning, stager)
            try:
                outcomes.append(_record_and_publish(db, settings, clock, batch_id, current, checkpoint))
            except errors.SepaEngineError as exc:
                _fail_batch(db, clock, batch_id, exc)
                report.failures.append(f"batch {batch_id}: {exc}")
            except BaseException:
                _call_off_upcoming(stager, upcoming)
                raise
            # A failure to plan the next file ends the run here, this file published.
            following, ahead = upcoming.result()
    return outcomes


_Upcoming = tuple[tuple[int, int] | None, "Future[_StagedFile] | None"]


def _plan_and_stage(planning: Iterator[tuple[int, int]], stager: _Stager) -> _Upcoming:
    """The next file (planning it, when ``planning`` plans), queued for staging."""
    following = next(planning, None)
    return following, (stager.stage(*following) if following is not None else None)


def _call_off_upcoming(stager: _Stager, upcoming: Future[_Upcoming]) -> None:
    """The run failed: wait for the next file's planning, and call its staging off. Its
    own failure, if any, is not the one to report."""
    try:
        _following, staging = upcoming.result()
    except BaseException:  # noqa: BLE001 - the caller re-raises the run's own failure
        return
    stager.call_off(staging)


def _run_on(pool: ThreadPoolExecutor | None, work: Callable[..., _T], *args: object) -> Future[_T]:
    """``work`` on the pool's thread (with the caller's structlog context, which lives in
    contextvars), or at once on the caller's thread without a pool; a future either way."""
    if pool is not None:
        return pool.submit(contextvars.copy_context().run, work, *args)
    done: Future[_T] = Future()
    try:
        done.set_result(work(*args))
    except BaseException as exc:  # noqa: BLE001 - handed to whoever asks for the result
        done.set_exception(exc)
    return done


class _CalledOff(Exception):
    """Raised inside a staging the run no longer wants (it stops, or failed)."""


@dataclass(frozen=True, slots=True)
class _StagedFile:
    """A file rendered, validated and staged under its temporary name; not yet recorded."""

    tmp: Path
    written: WrittenFile
    final: Path


class _Stager:
    """Stages files one at a time on a thread of its own, so that the caller can record and
    publish the previous file meanwhile (over its own connection). A database a second
    connection would not see (SQLite in memory) is staged on the caller's thread."""

    def __init__(self, db: Database, settings: Settings, checkpoint: Checkpoint, progress: Progress) -> None:
        self._db, self._settings, self._checkpoint, self._progress = db, settings, checkpoint, progress
        self._called_off = threading.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="stager") if _shared_between_connections(db) else None

    def __enter__(self) -> _Stager:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def stage(self, batch_id: int, count: int) -> Future[_StagedFile]:
        return _run_on(self._pool, self._stage, batch_id, count)

    def call_off(self, staging: Future[_StagedFile] | None) -> None:
        """Stop a staging and remove its temporary file; its batch stays PLANNED."""
        if staging is None:
            return
        self._called_off.set()
        try:
            staged = staging.result()
        except BaseException:  # noqa: BLE001 - called off or failed: either way nothing is staged
            return
        outbox.discard(staged.tmp)

    def _stage(self, batch_id: int, count: int) -> _StagedFile:
        if self._called_off.is_set():
            raise _CalledOff
        counted = _Counted(self._progress, self._settings.chunk_size)
        try:
            return _stage_file(self._db, self._settings, batch_id, self._checkpoint, counted, self._called_off)
        finally:
            if not self._called_off.is_set():
                # Progress counts a file written, or failed, as done: its rest now, not once
                # it is published. A staging called off is not counted.
                counted.finish(count)


def _shared_between_connections(db: Database) -> bool:
    database = db.engine.url.database
    return not (db.is_sqlite and (not database or database == ":memory:"))


@dataclass(slots=True)
class _Counted:
    """Tells ``progress`` about a file's transactions a chunk at a time as they are written."""

    progress: Progress
    chunk: int
    seen: int = 0
    told: int = 0

    def rows(self, rows: Iterator[repo.EntryRow], called_off: threading.Event) -> Iterator[repo.EntryRow]:
        for row in rows:
            yield row
            self.seen += 1
            if self.seen - self.told >= self.chunk:
                if called_off.is_set():
                    raise _CalledOff
                self.progress.advance(self.seen - self.told)
                self.told = self.seen

    def finish(self, count: int) -> None:
        # The rest of the file (or all of it, when it failed or was recovered unseen).
        if count > self.told:
            self.progress.advance(count - self.told)
        self.told = count


def _final_path(settings: Settings, creditor: Creditor, batch: Batch) -> Path:
    if creditor.requires_approval:
        return pending_path(settings, creditor.code, batch.file_name)
    return released_path(settings, creditor.code, batch.file_name)


def released_path(settings: Settings, creditor_code: str, file_name: str) -> Path:
    """Where the bank transfer picks files up: ``outbox/<creditor>/``."""
    return settings.outbox_dir / creditor_code / file_name


def pending_path(settings: Settings, creditor_code: str, file_name: str) -> Path:
    """Where a file waits for approval: ``outbox/pending/<creditor>/``."""
    return settings.outbox_dir / outbox.PENDING_FOLDER / creditor_code / file_name


def awaits_approval(settings: Settings, final: Path) -> bool:
    return final.parent.parent == settings.outbox_dir / outbox.PENDING_FOLDER


def _stage_file(
    db: Database, settings: Settings, batch_id: int, checkpoint: Checkpoint, counted: _Counted, called_off: threading.Event,
) -> _StagedFile:
    with db.reader() as session:
        batch = repo.batch(session, batch_id)
        creditor = repo.creditor_by_id(session, batch.creditor_id)
        version = writable_version(batch.version)
        party = _creditor_party(creditor)
        header = FileHeader(batch.message_id, batch.created_at.astimezone(ZoneInfo(creditor.timezone)), party.name, party.creditor_id)
        instrument = LocalInstrument(creditor.local_instrument)
        headers = {
            b.id: BlockHeader(
                b.payment_info_id,
                BlockKey(creditor.creditor_identifier, b.creditor_iban, b.collection_date, SequenceType(b.sequence_type), instrument),
                party,
            )
            for b in batch.blocks
        }
        plan = [BlockPlan(headers[b.id], b.count, b.sum_cents) for b in batch.blocks]
        final = _final_path(settings, creditor, batch)
        default_ultimate = _ultimate_creditor(creditor.ultimate_creditor_name, creditor.ultimate_creditor_id)
        # The bank profile's rules are checked in the writer's one read-back of the file;
        # a file breaking one is never staged, and the batch fails naming the rule.
        bank = bank_profiles.profile(creditor.bank_profile)
        # Closed here, not when collected: a file given up half written (called off, or
        # failed) leaves its read open on the connection, which would go back to the pool
        # with it (SQLite then refused the next writer: "database is locked").
        with closing(repo.batch_entries(session, batch_id, settings.chunk_size)) as batch_rows:
            rows = counted.rows(batch_rows, called_off)
            entries = ((headers[row.block_id], _direct_debit(row, default_ultimate)) for row in rows)
            tmp, written = outbox.stage(
                final, lambda fh: write_pain008(fh, version, header, entries, plan=plan, spool_dir=final.parent, profile=bank)
            )
    checkpoint("after_stage")
    return _StagedFile(tmp, written, final)


def _record_and_publish(
    db: Database, settings: Settings, clock: Clock, batch_id: int, staging: Future[_StagedFile], checkpoint: Checkpoint,
) -> FileOutcome:
    if db.is_sqlite:
        # One writer at a time: the hand-over can only start once the file is recorded.
        staged = staging.result()
    else:
        try:
            return _hand_over_while_staged(db, settings, clock, batch_id, staging, checkpoint)
        except _ApprovalChanged as changed:
            # The creditor's approval setting changed between the two reads: the folder the
            # file was staged for decides, as when the hand-over followed publication.
            staged = changed.staged
        except _HandOverUndone:
            # Undone before the file was recorded, so nothing of it is in the ledger: the file
            # is recorded and published, then handed over, as on SQLite.
            staged = staging.result()
    _record(db, clock, batch_id, staged, checkpoint)
    return _publish(db, settings, clock, batch_id, staged.tmp, staged.final, checkpoint)


def _hand_over_while_staged(
    db: Database, settings: Settings, clock: Clock, batch_id: int, staging: Future[_StagedFile], checkpoint: Checkpoint,
) -> FileOutcome:
    """PostgreSQL: the hand-over's statements (a few seconds of the server's work for a file
    of 100,000) run on a connection of their own while the stager is still rendering the
    file, and wait uncommitted until it is recorded and published. A crash or a failed file
    rolls them back; they commit after publication, as when they ran after it, so each
    checkpoint leaves what it left before and recovery does not change."""
    with db.transaction() as handing:
        reuse_key_check_plans(handing)
        # Not the batch row: this session must read it afresh once the file is recorded.
        creditor = repo.creditor_by_id(handing, accounts_repo.creditor_of_batch(handing, batch_id))
        handed_over = not creditor.requires_approval
        if handed_over:
            try:
                hand_over(handing, clock, batch_id, creditor, clock.now())
            except DBAPIError as exc:
                if not transaction_undone(exc):
                    raise
                # Its mandates or accounts met another writer's in a cycle (ARCHITECTURE, "Cycles
                # the order cannot rule out"). Left to the next run, the file would miss its date.
                log.warning("batch.hand_over_undone", batch_id=batch_id, sqlstate=getattr(exc.orig, "sqlstate", None))
                raise _HandOverUndone from exc
        staged = staging.result()
        if awaits_approval(settings, staged.final) == handed_over:
            raise _ApprovalChanged(staged)
        _record(db, clock, batch_id, staged, checkpoint)
        return _publish(db, settings, clock, batch_id, staged.tmp, staged.final, checkpoint, handing=handing)


class _HandOverUndone(Exception):
    """PostgreSQL undid the hand-over begun while the file was staged (a deadlock): it is
    done again after publication, in a transaction of its own."""


class _ApprovalChanged(Exception):
    """Rolls back a hand-over begun for a file that was then staged to wait for approval
    (or the reverse)."""

    def __init__(self, staged: _StagedFile) -> None:
        super().__init__("the creditor's approval setting changed while its file was staged")
        self.staged = staged


def _record(db: Database, clock: Clock, batch_id: int, staged: _StagedFile, checkpoint: Checkpoint) -> None:
    with db.transaction() as session:
        _record_written(session, clock, batch_id, staged.written, staged.final)
    checkpoint("after_written_commit")


def _record_written(session, clock: Clock, batch_id: int, written: WrittenFile, final: Path) -> None:  # type: ignore[no-untyped-def]
    batch = repo.batch(session, batch_id)
    if (written.count, written.sum_cents) != (batch.count, batch.sum_cents):
        raise errors.ControlSumMismatch("batch", batch.message_id, "file totals differ from the ledger's")
    repo.set_batch(
        session, batch_id, status=batch_transition(batch.status, BatchStatus.WRITTEN).value,
        sha256=written.sha256, size=written.size, path=str(final), written_at=clock.now(),
    )


def _publish(
    db: Database, settings: Settings, clock: Clock, batch_id: int, tmp: Path | None, final: Path, checkpoint: Checkpoint,
    recovered: bool = False, handing: Session | None = None,
) -> FileOutcome:
    """Publish the recorded file and commit its hand-over; ``handing`` is a transaction that
    already ran it (``_hand_over_while_staged``), to be finished and committed here."""
    checkpoint("before_publish")
    if tmp is not None:
        outbox.publish(tmp, final)
    checkpoint("after_publish")
    held = awaits_approval(settings, final)
    with nullcontext(handing) if handing is not None else db.transaction() as session:
        batch = repo.batch(session, batch_id)
        creditor = repo.creditor_by_id(session, batch.creditor_id)
        if held:
            # Complete and valid, but not the bank's yet: its requests stay ASSIGNED (claimed,
            # never collected again) and the mandates' history waits for ``batch approve``.
            repo.set_batch(
                session, batch_id, status=batch_transition(batch.status, BatchStatus.AWAITING_APPROVAL).value,
                held_at=clock.now(),
            )
        else:
            at = clock.now()
            repo.set_batch(session, batch_id, status=batch_transition(batch.status, BatchStatus.PUBLISHED).value, published_at=at)
            if handing is None:
                reuse_key_check_plans(session)
                hand_over(session, clock, batch_id, creditor, at)
        outcome = FileOutcome(
            batch_id, creditor.code, batch.message_id, final, batch.count, batch.sum_cents,
            _block_totals(batch.blocks), recovered, held,
        )
        write_summary(session, batch, creditor, final)
    log.info("batch.awaiting_approval" if held else "batch.published", creditor=outcome.creditor_code, batch_id=batch_id,
             message_id=outcome.message_id, transactions=outcome.count, recovered=recovered)
    return outcome


def hand_over(session, clock: Clock, batch_id: int, creditor: Creditor, at: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """What happens in the ledger when a file reaches the bank's folder (the batch row itself
    is the caller's): its requests are SUBMITTED, the mandates' history moved, the payments
    booked. Called by the run's publication, or by ``batch approve`` for a held file."""
    repo.submit_batch_requests(session, batch_id, at)
    # Mandates before accounts, the order every writer takes them in (ARCHITECTURE, "One
    # lock order"): the payments' foreign-key checks key-share-lock the accounts, and a
    # hand-over that took those first and then waited for a mandate an enqueue or a
    # reconciliation held, while that one waited for the account, was a deadlock
    # (tests/services/test_lock_order.py, test_reconciliation_concurrency.py).
    repo.record_presentation(session, batch_id, creditor.creditor_identifier)
    # The money is in flight from here: the account ledger books the payments in the
    # same transaction, so "submitted" and "booked" can never disagree after a crash.
    accounts.book_submitted_payments(session, clock, batch_id=batch_id)


def _fail_batch(db: Database, clock: Clock, batch_id: int, exc: errors.SepaEngineError) -> None:
    with db.transaction() as session:
        batch = repo.batch(session, batch_id)
        repo.set_batch(session, batch_id, status=batch_transition(batch.status, BatchStatus.FAILED).value, failure=str(exc))
        released = repo.release_batch_requests(session, batch_id, clock.now())
    log.error("batch.failed", batch_id=batch_id, error=str(exc), released=released)


def _ultimate_creditor(name: str | None, identifier: str | None) -> UltimateParty | None:
    if not name:
        return None
    return UltimateParty(charset.to_sepa_text(name, charset.NAME_MAX), identifier or None)


def _direct_debit(row: repo.EntryRow, default_ultimate: UltimateParty | None = None) -> DirectDebit:
    address = None
    if row.debtor_country and row.debtor_town:
        address = PostalAddress(
            country=row.debtor_country,
            town=charset.to_sepa_text(row.debtor_town, charset.TOWN_MAX),
            street=_text(row.debtor_street, charset.STREET_MAX),
            building_number=_text(row.debtor_building_number, charset.BUILDING_NUMBER_MAX),
            postcode=_text(row.debtor_postcode, charset.POSTCODE_MAX),
        )
    amendment = None
    # Amendment.is_empty's test on the row itself: most debits amend nothing.
    if (
        row.amend_original_mandate_id or row.amend_original_creditor_identifier or row.amend_original_creditor_name
        or row.amend_original_iban or row.amend_new_debtor_agent
    ):
        amendment = Amendment(
            original_mandate_id=row.amend_original_mandate_id,
            original_creditor_id=row.amend_original_creditor_identifier,
            original_creditor_name=row.amend_original_creditor_name,
            original_debtor_iban=row.amend_original_iban,
            new_debtor_agent=row.amend_new_debtor_agent,
        )
    return DirectDebit(
        end_to_end_id=row.end_to_end_id,
        amount_cents=row.amount_cents,
        mandate_id=row.mandate_reference,
        mandate_signed_on=row.mandate_signed_on,
        debtor_name=charset.to_sepa_text(row.debtor_name, charset.NAME_MAX),
        debtor_iban=row.mandate_iban.replace(" ", "").upper(),
        debtor_bic=row.mandate_bic or None,
        debtor_address=address,
        remittance=_text(row.remittance, charset.REMITTANCE_MAX),
        amendment=amendment,
        # The request's own ultimate creditor wins over the creditor's (a property manager
        # collecting for several owners names each one on its requests).
        ultimate_creditor=_ultimate_creditor(row.ultimate_creditor_name, row.ultimate_creditor_id) or default_ultimate,
        ultimate_debtor=_text(row.ultimate_debtor_name, charset.NAME_MAX),
        ultimate_debtor_id=row.ultimate_debtor_id or None,
    )


# --- step 1: recover ------------------------------------------------------------------------


def recover(db: Database, settings: Settings, clock: Clock, creditor_id: int) -> list[FileOutcome]:
    """Finish what a crashed run left for a creditor whose lock the caller holds: WRITTEN
    batches are published or sent back to PLANNED, stray temporary files removed."""
    outcomes: list[FileOutcome] = []
    with db.reader() as session:
        creditor = repo.creditor_by_id(session, creditor_id)
        written = [(b.id, b.sha256, b.path) for b in repo.batches_in(session, [BatchStatus.WRITTEN], creditor_id)]
        live = {Path(path or "") for _id, _sha, path in written}
        for b in repo.batches_in(session, [BatchStatus.PLANNED], creditor_id):
            live.add(_final_path(settings, creditor, b))
        # Only this creditor's folders: another process may be staging a file of another
        # creditor right now, and its temporary file is not a leftover.
        folders = {released_path(settings, creditor.code, "x").parent, pending_path(settings, creditor.code, "x").parent}
    for batch_id, sha256, path in written:
        final = Path(path or "")
        tmp = outbox.temp_path(final)
        if final.exists() and _sha256(final) == sha256:
            outcomes.append(_publish(db, settings, clock, batch_id, None, final, _no_checkpoint, recovered=True))
        elif tmp.exists() and _sha256(tmp) == sha256:
            outcomes.append(_publish(db, settings, clock, batch_id, tmp, final, _no_checkpoint, recovered=True))
        else:
            # The staged file is gone or damaged: write it again from the ledger.
            with db.transaction() as session:
                repo.set_batch(session, batch_id, status=batch_transition(BatchStatus.WRITTEN, BatchStatus.PLANNED).value, sha256=None, size=None)
            log.warning("batch.rewrite", batch_id=batch_id)
    for leftover in (p for folder in sorted(folders) for p in sorted(folder.glob(_TEMP_GLOB))):
        owner = leftover.with_name(leftover.name[len(outbox.TEMP_PREFIX) : -len(outbox.TEMP_SUFFIX)])
        if owner not in live:
            outbox.discard(leftover)
            log.warning("outbox.leftover_removed", path=str(leftover))
    return outcomes


_sha256 = outbox.sha256
_TEMP_GLOB = f"{outbox.TEMP_PREFIX}*{outbox.TEMP_SUFFIX}"
