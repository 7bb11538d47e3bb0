"""``batch approve``: a person releases a file held in outbox/pending to the bank's folder.

Creditors configured with ``requires_approval`` get their files written, validated and
published under ``outbox/pending/<creditor>/`` (batch AWAITING_APPROVAL, requests still
ASSIGNED). Approval, in one transaction holding the batch's row lock:

1. check the batch awaits approval (else a clear error: unknown, already approved, or in
   another status);
2. move the summaries, then the pain.008 file, to ``outbox/<creditor>/`` by link + unlink,
   never overwriting (``outbox.move``);
3. mark it PUBLISHED with who and when (a conditional UPDATE on the status), submit its
   requests, book the payments, move the mandates' history; commit.

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

from sepa_engine import errors, outbox
from sepa_engine.clock import Clock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch
from sepa_engine.db.repositories import collection as repo
from sepa_engine.db.session import Database
from sepa_engine.domain.statuses import BatchStatus
from sepa_engine.review import review_paths, write_summary
from sepa_engine.services.collection import Checkpoint, hand_over, released_path

log = structlog.get_logger("sepa_engine.approval")

ACTOR_MAX = 70  # batches.approved_by


class NotAwaitingApproval(errors.CollectionError):
    """The batch is not (or no longer) held for approval: nothing to approve."""

    code = "not_awaiting_approval"
    problem = "is not awaiting approval"


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
    db: Database, settings: Settings, clock: Clock, batch_id: int, *, actor: str, checkpoint: Checkpoint = _no_checkpoint
) -> Approval:
    actor = _actor(actor)
    with db.transaction() as session:
        batch = repo.lock_batch(session, batch_id)
        if batch is None:
            raise errors.NotFound("batch", batch_id)
        _check_awaiting(batch)
        creditor = repo.creditor_by_id(session, batch.creditor_id)
        source = Path(batch.path or "")
        target = released_path(settings, creditor.code, batch.file_name)
        # Summaries first, the pain.008 last: the bank's folder never shows a file whose
        # summaries are still elsewhere.
        missing_summaries = False
        for summary_source, summary_target in zip(review_paths(source), review_paths(target)):
            if summary_source.exists() or summary_target.exists():
                outbox.move(summary_source, summary_target)
            else:
                missing_summaries = True
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
        if missing_summaries:
            # Summaries are derived from the ledger: write them again where the file now is.
            write_summary(session, batch, creditor, target)
        approval = Approval(batch_id, creditor.code, batch.message_id, target, actor, at, batch.count, batch.sum_cents)
    log.info(
        "batch.approved", creditor=approval.creditor_code, batch_id=batch_id, message_id=approval.message_id,
        file=target.name, approved_by=actor, transactions=approval.count,
    )
    return approval


def _actor(actor: str) -> str:
    name = " ".join(str(actor or "").split())
    if not name:
        raise errors.InvalidFormat("approved_by", actor, "must name the person who approves (--by NAME)")
    if len(name) > ACTOR_MAX:
        raise errors.InvalidLength("approved_by", name, f"is longer than {ACTOR_MAX} characters")
    return name


def _check_awaiting(batch: Batch) -> None:
    if batch.status == BatchStatus.AWAITING_APPROVAL.value:
        return
    if batch.approved_by is not None:
        at = batch.approved_at.isoformat() if batch.approved_at else "?"
        raise NotAwaitingApproval(
            "batch.status", batch.status,
            f"cannot be approved: batch {batch.id} was already approved by {batch.approved_by} at {at}",
        )
    raise NotAwaitingApproval(
        "batch.status", batch.status,
        f"cannot be approved: only a batch awaiting_approval can be, and batch {batch.id} is not",
    )
