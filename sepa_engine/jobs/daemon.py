"""``sepa-engine serve``: the jobs of ``[scheduler.jobs]`` on APScheduler cron triggers.

* **One scheduler per ledger.** The process holds the scheduler lock (``db/locks.py``) for
  its whole life, so a second ``serve`` or a ``run-nightly`` from cron exits with "lock
  busy" (after ``scheduler.lock_wait_seconds``). The lock dies with the process. It guards
  the jobs, not the creditors: the collection job's run takes each creditor's own lock, so
  ``collect`` processes elsewhere (another host on the same PostgreSQL) collect the creditors
  it does not hold at the same time.
* **One job at a time.** Jobs run on a single worker thread, each under ``max_instances=1``.
* **Missed runs run once.** Triggers coalesce, so a job late by several slots runs once.
  The job store is in memory, so after downtime the slots missed while no process was up
  are found from the ledger: the first slot after the start of the job's last run that
  went to its end (``job_runs``; an interrupted or crashed run does not count, so a restart
  during the nightly run finishes it) becomes its next run time, and APScheduler coalesces
  from there to now.
  A slot older than ``scheduler.misfire_grace_seconds`` is skipped, not run late.
* **Losing the lock.** On PostgreSQL the lock lives with one connection, which a server
  restart ends silently. Before each job and every ``_LEASE_CHECK`` seconds ``serve`` asks
  whether it still holds it; if not, it stops (``LockLost``, exit 5) rather than run beside
  a second scheduler, and the service manager restarts it.
* **Stopping.** ``stop`` (an Event set by SIGTERM/SIGINT) is the ``should_stop`` of the
  running job, which finishes its current transaction or file and returns; no job starts
  after it is set. ``serve`` then returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from sepa_engine import errors
from sepa_engine.clock import Clock
from sepa_engine.config import Settings
from sepa_engine.crontab import cron_trigger
from sepa_engine.db import locks
from sepa_engine.db.repositories import jobs as repo
from sepa_engine.db.session import Database
from sepa_engine.jobs import runs
from sepa_engine.jobs.nightly import SCHEDULER_LOCK, Step, run_job

log = structlog.get_logger("sepa_engine.serve")

TRIGGER = "serve"
# A run recorded at the very second of its slot must not count that slot as missed.
_AFTER_LAST_RUN = dt.timedelta(seconds=1)
_LEASE_CHECK = 30.0


def build_scheduler(
    db: Database,
    settings: Settings,
    clock: Clock,
    stop: threading.Event,
    *,
    steps: dict[str, Step] | None = None,
    lease: locks.Lease | None = None,
) -> BackgroundScheduler:
    """A scheduler (not started) with one cron job per enabled ``[scheduler.jobs.*]`` table."""
    enabled = settings.scheduler.enabled_jobs()
    if not enabled:
        raise errors.ConfigurationError("[scheduler.jobs]", None, "enables no job: serve would never run anything")
    zone = settings.scheduler_timezone
    scheduler = BackgroundScheduler(
        timezone=zone,
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.scheduler.misfire_grace_seconds,
        },
    )
    scheduler.add_listener(_on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    now = clock.now()
    for job in enabled:
        trigger = cron_trigger(job.cron, zone)
        options: dict[str, object] = {}
        missed = first_missed_slot(db, job.name, trigger.get_next_fire_time, now)
        if missed is not None:
            options["next_run_time"] = missed
            log.info("serve.catch_up", job=job.name, missed_since=missed.isoformat())
        scheduler.add_job(
            _runner(db, settings, clock, stop, job.name, steps, lease or locks.Lease()), trigger,
            id=job.name, name=job.name, **options,
        )
    return scheduler


def first_missed_slot(
    db: Database,
    job: str,
    next_fire_time: Callable[[dt.datetime | None, dt.datetime], dt.datetime | None],
    now: dt.datetime,
) -> dt.datetime | None:
    """The first slot of ``job`` after its last completed run, if that slot has passed."""
    with db.reader() as session:
        last = repo.last_completed_start(session, job)
    if last is None:
        # Never ran on this ledger: nothing was missed, the first slot is in the future.
        return None
    slot = next_fire_time(None, last + _AFTER_LAST_RUN)
    return slot if slot is not None and slot <= now else None


def _runner(
    db: Database,
    settings: Settings,
    clock: Clock,
    stop: threading.Event,
    job: str,
    steps: dict[str, Step] | None,
    lease: locks.Lease,
) -> Callable[[], None]:
    def run() -> None:
        if stop.is_set():
            log.info("serve.job_not_started", job=job, reason="stopping")
            return
        if not lease.held():
            log.error("serve.lock_lost", job=job)
            stop.set()
            return
        try:
            run_job(db, settings, clock, job, TRIGGER, should_stop=stop.is_set, steps=steps)
        except Exception as exc:  # the service keeps running; the next slot tries again
            log.error("serve.job_failed", job=job, error=str(exc), exc_info=True)

    run.__name__ = f"sepa_engine_{job}"
    return run


def _on_event(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_MISSED:
        log.warning("serve.job_missed", job=event.job_id, slot=event.scheduled_run_time.isoformat())


def serve(
    db: Database,
    settings: Settings,
    clock: Clock,
    stop: threading.Event,
    *,
    steps: dict[str, Step] | None = None,
    lease_check_seconds: float = _LEASE_CHECK,
) -> None:
    """Run the configured jobs until ``stop`` is set; raises ``LockBusy`` if another scheduler
    runs, ``LockLost`` if the lock went away under it."""
    # APScheduler's own lines are plain text on stderr; its warnings (a missed slot) are
    # logged as structured events here instead, and job errors by the job wrapper.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    with locks.run_lock(db, SCHEDULER_LOCK, settings.scheduler.lock_wait_seconds) as lease:
        abandoned = runs.abandon_unfinished(db)
        if abandoned:
            log.warning("serve.abandoned_runs", count=abandoned)
        scheduler = build_scheduler(db, settings, clock, stop, steps=steps, lease=lease)
        scheduler.start()
        log.info("serve.started", timezone=settings.scheduler_timezone, jobs={
            job.id: job.next_run_time.isoformat() if job.next_run_time else None for job in scheduler.get_jobs()
        })
        lost = False
        try:
            # A timed wait, so the main thread gets back to Python and runs signal handlers.
            next_check = time.monotonic() + lease_check_seconds
            while not stop.wait(0.5):
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + lease_check_seconds
                    if not lease.held():
                        log.error("serve.lock_lost")
                        break
            lost = not lease.held()
            log.info("serve.stopping")
        finally:
            stop.set()
            # Waits for the job in progress; jobs queued behind it see ``stop`` and return.
            scheduler.shutdown(wait=True)
        if lost:
            raise locks.LockLost("lock", SCHEDULER_LOCK)
        log.info("serve.stopped")
