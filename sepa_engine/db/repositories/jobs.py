"""Queries of the service side: job runs (``run-nightly``, ``serve``) and what ``status`` shows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sepa_engine.db.models import Batch, Creditor, DebitRequest
from sepa_engine.db.repositories import rowcount
from sepa_engine.db.returns_models import ReturnException
from sepa_engine.db.service_models import JobRun

# Written by the approval workflow (issue 7); queried by its value so that this module does
# not depend on when the status enum gains it.
AWAITING_APPROVAL = "awaiting_approval"


# --- job runs ------------------------------------------------------------------------------


def start_run(session: Session, job: str, trigger: str, started_at: dt.datetime, host: str, pid: int) -> JobRun:
    run = JobRun(job=job, trigger=trigger, started_at=started_at, host=host[:100], pid=pid)
    session.add(run)
    session.flush()
    return run


def finish_run(
    session: Session, run_id: int, finished_at: dt.datetime, outcome: str, exit_code: int, summary: str
) -> None:
    session.execute(
        update(JobRun)
        .where(JobRun.id == run_id)
        .values(finished_at=finished_at, outcome=outcome, exit_code=exit_code, summary=summary)
    )


def abandon_unfinished(session: Session, summary: str) -> int:
    """Close the runs a dead holder of the scheduler lock left open; call under that lock."""
    result = session.execute(
        update(JobRun).where(JobRun.outcome.is_(None)).values(outcome="interrupted", summary=summary)
    )
    return rowcount(result) or 0


def run(session: Session, run_id: int) -> JobRun | None:
    return session.get(JobRun, run_id)


def last_runs(session: Session) -> Sequence[JobRun]:
    """The latest run of each job, by job name."""
    latest = select(JobRun.job, func.max(JobRun.id).label("id")).group_by(JobRun.job).subquery()
    return session.scalars(select(JobRun).join(latest, latest.c.id == JobRun.id).order_by(JobRun.job)).all()


def last_completed_start(session: Session, job: str) -> dt.datetime | None:
    """When the latest run of ``job`` that went to its end started (interrupted ones do not count)."""
    return session.scalar(
        select(func.max(JobRun.started_at)).where(
            JobRun.job == job, JobRun.outcome.is_not(None), JobRun.outcome != "interrupted"
        )
    )


# --- status ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingRow:
    creditor: Creditor
    count: int
    sum_cents: int
    first_requested: dt.date | None


def pending_by_creditor(session: Session) -> list[PendingRow]:
    """Every creditor with its pending requests (none is a row too), by creditor code."""
    pending = (
        select(
            DebitRequest.creditor_id,
            func.count().label("n"),
            func.sum(DebitRequest.amount_cents).label("cents"),
            func.min(DebitRequest.requested_date).label("first"),
        )
        .where(DebitRequest.indexed_status == "pending")  # the queue index's predicate
        .group_by(DebitRequest.creditor_id)
        .subquery()
    )
    rows = session.execute(
        select(Creditor, pending.c.n, pending.c.cents, pending.c.first)
        .outerjoin(pending, pending.c.creditor_id == Creditor.id)
        .order_by(Creditor.code)
    ).all()
    return [PendingRow(c, int(n or 0), int(cents or 0), first) for c, n, cents, first in rows]


def open_exceptions(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ReturnException).where(ReturnException.status == "open")) or 0


def awaiting_approval(session: Session) -> Sequence[tuple[Batch, str]]:
    return session.execute(
        select(Batch, Creditor.code)
        .join(Creditor, Creditor.id == Batch.creditor_id)
        .where(Batch.status == AWAITING_APPROVAL)
        .order_by(Batch.id)
    ).all()
