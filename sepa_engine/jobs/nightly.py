"""The jobs a scheduler runs: collection, schedules, inbox import, and ``nightly`` (all three).

``run_nightly`` is what cron calls through ``sepa-engine run-nightly``; ``serve``
(``jobs/daemon.py``) runs the same jobs through ``run_job`` on cron triggers. Each run of a
job is one ``job_runs`` row with its outcome, exit code and a JSON summary of its steps.

The steps do not depend on each other: the schedule creates debits for later dates, and
the inbox holds answers about files already sent. A step that fails is recorded as failed
and the next one still runs. ``should_stop`` (SIGTERM) is passed into every step, which
finishes the transaction or file in progress and returns; no later step starts.

Outcome and exit code of a run, from its steps (worst first):

* ``failed`` (5): a step raised, or the collection could not write a file;
* ``interrupted`` (143, as a shell reports SIGTERM): stopped before it finished;
* ``partial`` (4): refused requests, automatic accounts without a usable mandate or whose
  debit has problems, refused bank files or records sent to the exceptions queue;
* ``ok`` (0): something was done;
* ``nothing_to_do`` (3): every step had nothing to do.

A second scheduler finds the lock busy: ``LockBusy`` propagates, which the CLI turns into
exit code 75 (EX_TEMPFAIL: try again later) and no run row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from sepa_engine import logs
from sepa_engine.clock import Clock
from sepa_engine.config import Settings
from sepa_engine.db import locks
from sepa_engine.db.session import Database
from sepa_engine.domain.money import format_cents
from sepa_engine.exit_codes import ExitCode
from sepa_engine.ids import TimestampIds
from sepa_engine.jobs import runs
from sepa_engine.jobs.accounts import run_schedule
from sepa_engine.jobs.returns_inbox import import_inbox
from sepa_engine.services.collection import run_collection

log = structlog.get_logger("sepa_engine.jobs")

SCHEDULER_LOCK = "scheduler"

OK, NOTHING_TO_DO, PARTIAL, FAILED, INTERRUPTED_OUTCOME = "ok", "nothing_to_do", "partial", "failed", "interrupted"
_EXIT_CODES = {
    OK: int(ExitCode.OK),
    NOTHING_TO_DO: int(ExitCode.NOTHING_TO_DO),
    PARTIAL: int(ExitCode.PARTIAL),
    FAILED: int(ExitCode.FAILED),
    INTERRUPTED_OUTCOME: int(ExitCode.INTERRUPTED),
}
# Worst first: the outcome of a run is the first of these any of its steps had.
_SEVERITY = (FAILED, INTERRUPTED_OUTCOME, PARTIAL, OK, NOTHING_TO_DO)

StopSignal = Callable[[], bool]


def _never() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    outcome: str
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, **self.summary}


@dataclass(slots=True)
class JobResult:
    run_id: int
    job: str
    trigger: str
    steps: list[StepResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # steps not started because of a stop

    @property
    def outcome(self) -> str:
        found = {step.outcome for step in self.steps} | ({INTERRUPTED_OUTCOME} if self.skipped else set())
        return next((o for o in _SEVERITY if o in found), NOTHING_TO_DO)

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self.outcome]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "steps": {step.name: step.to_dict() for step in self.steps},
            "skipped": self.skipped,
        }


# --- the steps ------------------------------------------------------------------------------


def collect_step(db: Database, settings: Settings, clock: Clock, should_stop: StopSignal) -> StepResult:
    report = run_collection(db, settings, clock, TimestampIds(clock), should_stop=should_stop)
    outcome = (
        FAILED if report.failures else INTERRUPTED_OUTCOME if report.interrupted
        else NOTHING_TO_DO if report.nothing_to_do else PARTIAL if report.refused else OK
    )
    return StepResult("collect", outcome, {
        "collection_run_id": report.run_id,
        "business_date": report.business_date.isoformat(),
        "assigned": report.assigned,
        "refused": report.refused,
        "files": [
            {"batch_id": f.batch_id, "creditor": f.creditor_code, "message_id": f.message_id, "path": str(f.path),
             "transactions": f.count, "control_sum": format_cents(f.sum_cents), "recovered": f.recovered}
            for f in report.files
        ],
        "failures": report.failures,
        "skipped_creditors": report.skipped,
    })


def schedules_step(db: Database, settings: Settings, clock: Clock, should_stop: StopSignal) -> StepResult:
    report = run_schedule(db, clock, should_stop=should_stop)
    # No usable mandate (tried again next run), or a debit stored with problems the collection
    # will refuse (a bad IBAN checksum): someone has to look.
    attention = [item for item in report.items if item.problems or item.outcome == "no_usable_mandate"]
    outcome = (
        INTERRUPTED_OUTCOME if should_stop() else PARTIAL if attention
        else OK if report.requested else NOTHING_TO_DO
    )
    return StepResult("schedules", outcome, {
        "requested": len(report.requested),
        "amount": format_cents(sum(item.amount_cents for item in report.requested)),
        "decided": len(report.items),
        "problems": [
            {"creditor": i.creditor_code, "account": i.account_reference, "period": i.period, "outcome": i.outcome}
            for i in attention
        ],
    })


def inbox_step(db: Database, settings: Settings, clock: Clock, should_stop: StopSignal) -> StepResult:
    report = import_inbox(db, settings.inbox_dir, clock, should_stop=should_stop)
    outcome = (
        INTERRUPTED_OUTCOME if report.interrupted else PARTIAL if report.failed or report.exceptions
        else OK if report.processed else NOTHING_TO_DO
    )
    return StepResult("inbox", outcome, {
        "inbox": str(settings.inbox_dir),
        "processed": [
            {"file": r.path.name, "applied": r.applied, "already_applied": r.already_applied,
             "exceptions": r.exceptions, "duplicate": r.duplicate}
            for r in report.processed
        ],
        "failed": report.failed,
        "exceptions": report.exceptions,
    })


Step = Callable[[Database, Settings, Clock, StopSignal], StepResult]
STEPS: dict[str, Step] = {"collect": collect_step, "schedules": schedules_step, "inbox": inbox_step}
# What each job runs, in order; ``nightly`` in the order the issue asks for.
JOBS: dict[str, tuple[str, ...]] = {
    "nightly": ("collect", "schedules", "inbox"),
    "collect": ("collect",),
    "schedules": ("schedules",),
    "inbox": ("inbox",),
}


# --- runs -----------------------------------------------------------------------------------


def run_job(
    db: Database, settings: Settings, clock: Clock, job: str, trigger: str, *, should_stop: StopSignal = _never,
    steps: dict[str, Step] | None = None,
) -> JobResult:
    """One run of ``job``, recorded in ``job_runs``. The caller holds the scheduler lock."""
    chosen = steps or STEPS
    result = JobResult(runs.start(db, job, trigger, clock), job, trigger)
    log.info("job.started", job=job, trigger=trigger, run_id=result.run_id)
    try:
        for name in JOBS[job]:
            if should_stop():
                result.skipped.append(name)
                continue
            try:
                result.steps.append(_run_step(name, chosen[name], db, settings, clock, should_stop))
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: say where, then go
                result.steps.append(StepResult(name, INTERRUPTED_OUTCOME, {"error": repr(exc)}))
                raise
    finally:
        # Whatever happened, the row says how far the run got.
        runs.finish(db, result.run_id, clock, result.outcome, result.exit_code, result.to_dict())
    log.info("job.finished", job=job, run_id=result.run_id, outcome=result.outcome, exit_code=result.exit_code)
    return result


def _run_step(name: str, step: Step, db: Database, settings: Settings, clock: Clock, should_stop: StopSignal) -> StepResult:
    started = time.monotonic()
    try:
        result = step(db, settings, clock, should_stop)
    except Exception as exc:  # a failing step is recorded; the next ones still run
        log.error("job.step_failed", step=name, error=str(exc), exc_info=True)
        # Stored in the run's row and shown by `status`: masked as the log line is.
        result = StepResult(name, FAILED, {"error": logs.masked_text(str(exc)) or type(exc).__name__})
    log.info("job.step", step=name, outcome=result.outcome,
             seconds=round(time.monotonic() - started, 3))
    return result


def run_nightly(
    db: Database, settings: Settings, clock: Clock, *, trigger: str = "cron", should_stop: StopSignal = _never,
    steps: dict[str, Step] | None = None,
) -> JobResult:
    """Collection, schedules, inbox import under the scheduler lock; raises ``LockBusy``."""
    with locks.run_lock(db, SCHEDULER_LOCK, settings.scheduler.lock_wait_seconds):
        runs.abandon_unfinished(db)
        return run_job(db, settings, clock, "nightly", trigger, should_stop=should_stop, steps=steps)
