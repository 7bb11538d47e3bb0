"""``batch approve``: a person releases a file held in outbox/pending to the bank's folder.

Creditors configured with ``requires_approval`` get their files written, validated and
published under ``outbox/pending/<creditor>/`` (batch AWAITING_APPROVAL, requests still
ASSIGNED). Approval, in one transaction holding the batch's row lock:

1. check the batch awaits approval (else a clear error: unknown, already approved, or in
   another status);
2. check the held file is still the one recorded (its sha256), then move the summaries and
   the pain.008 file to ``outbox/<creditor>/`` by link + unlink, never overwriting
   (``outbox.move``);
3. mark it PUBLISHED with who and when (a conditional UPDATE on the status), submit its
   requests, book the payments, move the mandates' history; commit.

Before step 2, the collection dates are checked again (issue 14, item 6): a file held past
the day its bank could still take it would go out with a date the bank can no longer meet.
Such a batch is never released: it becomes SUPERSEDED (kept for audit under
``outbox/pending/<creditor>/superseded/``), its requests go back to the queue, a collection
run for the creditor writes them again with a reachable date and a new MsgId (held in its
turn), and approval is refused with ``CollectionDateUnreachable`` naming the new batch.

``batch withdraw`` is the other way out of pending, for a file a person reviewed and will not
send: in one transaction holding the same row lock, the held file and its summaries move to
``outbox/pending/<creditor>/withdrawn/`` (kept for audit), the batch becomes WITHDRAWN with who,
when and why, and its requests go back to the queue, as a superseded file's do: the next run
writes them again, held for approval in its turn (cancel upstream what must not be collected).

A crash after step 2 leaves the file in the bank's folder and the batch AWAITING_APPROVAL:
approving again finds the file already moved (same inode, or gone from pending with the
recorded sha256 in place) and finishes step 3. Two approvals at once queue on the row lock
(SQLite: the database write lock); the second then sees PUBLISHED and is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy.orm import Session

from sepa_engine import errors, outbox
from sepa_engine.clock import Clock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch, Creditor
from sepa_engine.db.repositories import collection as repo
from sepa_engine.db.session import Database
from sepa_engine.domain import bank_profiles, calendar
from sepa_engine.domain.statuses import BatchStatus, batch_transition
from sepa_engine.ids import IdSource, TimestampIds
from sepa_engine.review import review_paths, write_summary
from sepa_engine.services import debit_gate
from sepa_engine.services.collection import Checkpoint, hand_over, released_path, run_collection

log = structlog.get_logger("sepa_engine.approval")

ACTOR_MAX = 70  # batches.approved_by, batches.withdrawn_by
REASON_MAX = 500  # what a reviewer writes; batches.failure is text
SUPERSEDED_FOLDER = "superseded"
WITHDRAWN_FOLDER = "withdrawn"


class CollectionDateUnreachable(errors.CollectionError):
    """A held file's collection date can no longer be met: it was re-dated, not approved."""

    code = "collection_date_unreachable"
    problem = "can no longer be met"


class NotAwaitingApproval(errors.CollectionError):
    """The batch is not (or no longer) held for approval: nothing to approve."""

    code = "not_awaiting_approval"
    problem = "is not awaiting approval"


class HeldFileChanged(errors.CollectionError):
    """The held file is no longer the one written and recorded: it is not released."""

    code = "held_file_changed"
    problem = "changed since it was written"


class HeldDebitsChanged(errors.CollectionError):
    """Debits of the held file the ledger no longer allows (their mandate is no longer in
    force, or what they pay went under dispute): the file is not released."""

    code = "held_debits_changed"
    problem = "can no longer be collected"


def _no_checkpoint(_name: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Approval:
    batch_id: int
    creditor_code: str
    message_id: str
    path: Path
    approved_by: str
    approved_at: dt.datetime
    count: int
    sum_cents: int


def approve_batch(
    db: Database, settings: Settings, clock: Clock, batch_id: int, *, actor: str, checkpoint: Checkpoint = _no_checkpoint,
    ids: IdSource | None = None,
) -> Approval:
    actor = _actor(actor)
    with db.transaction() as session:
        batch = repo.lock_batch(session, batch_id)
        if batch is None:
            raise errors.NotFound("batch", batch_id)
        _check_awaiting(batch)
        creditor = repo.creditor_by_id(session, batch.creditor_id)
        source = Path(batch.path or "")
        late = _unreachable(batch, creditor, clock)
        if late is not None:
            # Committed before the file moves: a crash in between leaves a superseded batch
            # whose file still sits in pending, which nothing will ever release.
            _supersede(session, clock, batch)
    if late is not None:
        return _redate(db, settings, clock, ids, batch_id, creditor.code, source, *late)
    with db.transaction() as session:
        batch = repo.lock_batch(session, batch_id)
        if batch is None:
            raise errors.NotFound("batch", batch_id)
        _check_awaiting(batch)
        creditor = repo.creditor_by_id(session, batch.creditor_id)
        target = released_path(settings, creditor.code, batch.file_name)
        # The file a person reviewed in pending may have been edited since (by hand, or saved
        # again by an editor): what goes to the bank must be the file the ledger recorded,
        # whose amounts and counts the payments were booked from.
        if source.exists() and outbox.sha256(source) != batch.sha256:
            raise HeldFileChanged(
                "file", str(source),
                f"is not the file written for batch {batch_id} (sha256 differs: changed since it was written); "
                "nothing was approved",
            )
        _check_debits_still_collectable(session, batch, creditor)
        # Summaries first, the pain.008 last: the bank's folder never shows a file whose
        # summaries are still elsewhere.
        for summary_source, summary_target in zip(review_paths(source), review_paths(target), strict=True):
            if summary_source.exists() or summary_target.exists():
                outbox.move(summary_source, summary_target)
        checkpoint("before_move")
        if not outbox.move(source, target) and outbox.sha256(target) != batch.sha256:
            raise errors.CollectionError(
                "file", str(target), f"is not the file recorded for batch {batch_id} (sha256 differs); nothing was approved"
            )
        checkpoint("after_move")
        at = clock.now()
        if not repo.approve_batch(session, batch_id, actor, at, str(target)):
            raise NotAwaitingApproval("batch.status", batch_id, "cannot be approved: another approval got there first")
        hand_over(session, clock, batch_id, creditor, at)
        # Summaries are derived from the ledger: written again where the file now is, with
        # the approval in their timeline (and in place of any that went missing).
        session.flush()
        session.refresh(batch)
        write_summary(session, batch, creditor, target)
        approval = Approval(batch_id, creditor.code, batch.message_id, target, actor, at, batch.count, batch.sum_cents)
    log.info(
        "batch.approved", creditor=approval.creditor_code, batch_id=batch_id, message_id=approval.message_id,
        file=target.name, approved_by=actor, transactions=approval.count,
    )
    return approval


@dataclass(frozen=True, slots=True)
class Withdrawal:
    batch_id: int
    creditor_code: str
    message_id: str
    path: Path  # where the file is kept, under outbox/pending/<creditor>/withdrawn/
    withdrawn_by: str
    withdrawn_at: dt.datetime
    reason: str
    released: int  # requests back in the queue
    count: int
    sum_cents: int


def withdraw_batch(
    db: Database, settings: Settings, clock: Clock, batch_id: int, *, actor: str, reason: str,
    checkpoint: Checkpoint = _no_checkpoint,
) -> Withdrawal:
    """Stop a held file at review: never released, kept for audit, its requests back in the
    queue. The file moves first, under the batch's row lock: a crash after the move leaves the
    batch held, and withdrawing again finds the file already moved and finishes."""
    actor = _actor(actor, verb="withdraws")
    reason = _reason(reason)
    with db.transaction() as session:
        batch = repo.lock_batch(session, batch_id)
        if batch is None:
            raise errors.NotFound("batch", batch_id)
        _check_awaiting(batch, "withdrawn")
        creditor = repo.creditor_by_id(session, batch.creditor_id)
        source = Path(batch.path or "")
        kept = source.parent / WITHDRAWN_FOLDER / source.name
        checkpoint("before_move")
        # The summaries, then the file; one already moved, or gone, is not moved again (a held
        # file someone deleted can still be withdrawn: its debits are what matters).
        for held, target in zip((*review_paths(source), source), (*review_paths(kept), kept), strict=True):
            if held.exists() or target.exists():
                outbox.move(held, target)
        checkpoint("after_move")
        at = clock.now()
        repo.set_batch(
            session, batch_id, status=batch_transition(batch.status, BatchStatus.WITHDRAWN).value, path=str(kept),
            withdrawn_by=actor, withdrawn_at=at, failure=f"withdrawn at review by {actor}: {reason}",
        )
        released = repo.release_batch_requests(session, batch_id, at)
        session.flush()
        session.refresh(batch)
        if kept.exists():
            # The kept review says what became of the file; the creditor's index is the one
            # of its pending folder.
            write_summary(session, batch, creditor, kept, index_of=source.parent)
        withdrawal = Withdrawal(batch_id, creditor.code, batch.message_id, kept, actor, at, reason, released,
                                batch.count, batch.sum_cents)
    log.info(
        "batch.withdrawn", creditor=withdrawal.creditor_code, batch_id=batch_id, message_id=withdrawal.message_id,
        file=kept.name, withdrawn_by=actor, transactions=withdrawal.count, released=released,
    )
    return withdrawal


# How many of a held file's refused debits the error names (the file may hold thousands).
_SHOWN_PROBLEMS = 5


def _check_debits_still_collectable(session: Session, batch: Batch, creditor: Creditor) -> None:
    """The ledger may have changed since the file was held: a mandate revoked, blocked or
    replaced, an invoice put under dispute, a dispute or a credit note that leaves the account
    owing less than its debits ask. Those withdraw pending debits, not the held file's, which
    would reach the bank on approval: a collection without a mandate in force, of money under
    dispute, or of more than is due. Such a file is not released; withdrawing it puts its
    debits back in the queue, where the next run decides each again."""
    batch_id = batch.id
    problems = repo.held_debit_problems(session, batch_id)
    reported = {p.request_id for p in problems}
    since = batch.held_at or batch.written_at or batch.created_at
    over = [i for i in debit_gate.held_debits_over_due(session, creditor, batch_id, since) if i not in reported]
    if over:
        named = repo.end_to_end_ids(session, over)
        problems = sorted([*problems, *(
            repo.HeldDebitProblem(i, named[i], "would take more than the account owes outside disputes "
                                               "(a dispute or a credit note since the file was held)")
            for i in over
        )])
    if not problems:
        return
    shown = "; ".join(f"{p.end_to_end_id}: {p.problem}" for p in problems[:_SHOWN_PROBLEMS])
    more = f" and {len(problems) - _SHOWN_PROBLEMS} more" if len(problems) > _SHOWN_PROBLEMS else ""
    raise HeldDebitsChanged(
        "batch", batch_id,
        f"holds {len(problems)} debit(s) the ledger no longer allows ({shown}{more}); nothing was approved: "
        f"withdraw it (sepa-engine batch withdraw {batch_id} --reason ...) and the next run writes the others again",
    )


def _reason(reason: str) -> str:
    text = " ".join(str(reason or "").split())
    if not text:
        raise errors.InvalidFormat("reason", reason, "must say why the file is withdrawn (--reason TEXT)")
    if len(text) > REASON_MAX:
        raise errors.InvalidLength("reason", text, f"is longer than {REASON_MAX} characters")
    return text


def _unreachable(batch: Batch, creditor: Creditor, clock: Clock) -> tuple[dt.date, dt.date] | None:
    """(first block date, earliest date the bank takes now) when a block's date is too early."""
    bank = bank_profiles.profile(creditor.bank_profile)
    earliest = calendar.earliest_collection_date(
        clock.now(), creditor.lead_days, dt.time.fromisoformat(creditor.cutoff), creditor.timezone, bank.closing_days,
    )
    first = min(b.collection_date for b in batch.blocks)
    return (first, earliest) if first < earliest else None


def _supersede(session, clock: Clock, batch: Batch) -> None:  # type: ignore[no-untyped-def]
    # The requests were never handed over (ASSIGNED, mandates' history unmoved): back to
    # the queue in the same transaction as the status, so they are in exactly one place.
    repo.set_batch(session, batch.id, status=batch_transition(batch.status, BatchStatus.SUPERSEDED).value,
                   failure="collection date can no longer be met at approval: re-dated into a new file")
    repo.release_batch_requests(session, batch.id, clock.now())


def _redate(
    db: Database, settings: Settings, clock: Clock, ids: IdSource | None, batch_id: int, creditor_code: str,
    held: Path, first: dt.date, earliest: dt.date,
) -> Approval:
    kept = held.parent / SUPERSEDED_FOLDER / held.name
    for source in (*review_paths(held), held):
        if source.exists():
            outbox.move(source, kept.parent / source.name)
    report = run_collection(db, settings, clock, ids or TimestampIds(clock), creditor_code=creditor_code)
    new = [f for f in report.files if f.creditor_code == creditor_code and f.batch_id != batch_id]
    where = (
        f"its debits are in batch {new[0].batch_id} ({new[0].message_id}), awaiting approval"
        if new else "its debits are back in the queue for the next run"
    )
    log.warning("batch.superseded", batch_id=batch_id, creditor=creditor_code, collection_date=first.isoformat(),
                earliest=earliest.isoformat(), new_batch=new[0].batch_id if new else None)
    raise CollectionDateUnreachable(
        f"batch {batch_id} collection date", first.isoformat(),
        f"can no longer be met (the bank takes {earliest.isoformat()} at the earliest for a file sent now): "
        f"the file was not released and is kept for audit in {kept.parent}; {where}",
    )


def _actor(actor: str, *, verb: str = "approves") -> str:
    field = "withdrawn_by" if verb == "withdraws" else "approved_by"
    name = " ".join(str(actor or "").split())
    if not name:
        raise errors.InvalidFormat(field, actor, f"must name the person who {verb} (--by NAME)")
    if len(name) > ACTOR_MAX:
        raise errors.InvalidLength(field, name, f"is longer than {ACTOR_MAX} characters")
    return name


def _check_awaiting(batch: Batch, wanted: str = "approved") -> None:
    if batch.status == BatchStatus.AWAITING_APPROVAL.value:
        return
    if batch.approved_by is not None:
        at = batch.approved_at.isoformat() if batch.approved_at else "?"
        raise NotAwaitingApproval(
            "batch.status", batch.status,
            f"cannot be {wanted}: batch {batch.id} was already approved by {batch.approved_by} at {at}",
        )
    if batch.withdrawn_by is not None:
        at = batch.withdrawn_at.isoformat() if batch.withdrawn_at else "?"
        raise NotAwaitingApproval(
            "batch.status", batch.status,
            f"cannot be {wanted}: batch {batch.id} was withdrawn at review by {batch.withdrawn_by} at {at}",
        )
    raise NotAwaitingApproval(
        "batch.status", batch.status,
        f"cannot be {wanted}: only a batch awaiting_approval can be, and batch {batch.id} is not",
    )
