"""What ``sepa-engine status`` shows: the ledger's state as an operator on call needs it.

* pending requests per creditor, and the date they would be collected on if the next run
  started now: the first TARGET day on or after both the earliest requested date and the
  creditor's earliest collection date (lead time and cut-off), as the collection run
  computes it (``domain/calendar.collection_date``);
* each job's last run (``job_runs``) and its outcome, and the next slot of each job that
  ``serve`` would run from the configuration;
* open return exceptions;
* files waiting for approval.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.orm import Session

from sepa_engine.clock import Clock
from sepa_engine.config import Settings
from sepa_engine.crontab import cron_trigger
from sepa_engine.db.repositories import jobs as repo
from sepa_engine.db.service_models import JobRun
from sepa_engine.domain import calendar
from sepa_engine.domain.money import format_cents


def overview(session: Session, settings: Settings, clock: Clock) -> dict[str, Any]:
    now = clock.now()
    return {
        "at": now.isoformat(),
        "creditors": _creditors(session, now),
        "jobs": _jobs(session, settings, now),
        "open_exceptions": repo.open_exceptions(session),
        "awaiting_approval": [
            {
                "batch_id": batch.id,
                "creditor": code,
                "message_id": batch.message_id,
                "transactions": batch.count,
                "control_sum": format_cents(batch.sum_cents),
                "created_at": batch.created_at.isoformat(),
            }
            for batch, code in repo.awaiting_approval(session)
        ],
    }


def _creditors(session: Session, now: dt.datetime) -> list[dict[str, Any]]:
    result = []
    for row in repo.pending_by_creditor(session):
        creditor = row.creditor
        next_date = None
        if row.first_requested is not None:
            next_date = calendar.collection_date(
                row.first_requested, now, creditor.lead_days, dt.time.fromisoformat(creditor.cutoff), creditor.timezone
            )
        result.append({
            "creditor": creditor.code,
            "pending": row.count,
            "pending_amount": format_cents(row.sum_cents),
            "first_requested_date": row.first_requested.isoformat() if row.first_requested else None,
            "next_collection_date": next_date.isoformat() if next_date else None,
        })
    return result


def _jobs(session: Session, settings: Settings, now: dt.datetime) -> list[dict[str, Any]]:
    last = {run.job: run for run in repo.last_runs(session)}
    configured = {job.name: job for job in settings.scheduler.jobs}
    result = []
    for name in sorted(configured.keys() | last.keys()):
        job = configured.get(name)
        next_run = None
        if job is not None and job.enabled:
            fire = cron_trigger(job.cron, settings.scheduler_timezone).get_next_fire_time(None, now)
            next_run = fire.isoformat() if fire else None
        result.append({
            "job": name,
            "cron": job.cron if job else None,
            "enabled": job.enabled if job else False,
            "next_run": next_run,
            "last_run": _run(last[name]) if name in last else None,
        })
    return result


def _run(run: JobRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "trigger": run.trigger,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        # Null while it runs, or when its process died before the next scheduler noticed.
        "outcome": run.outcome or "running",
        "exit_code": run.exit_code,
        "host": run.host,
        "pid": run.pid,
        "summary": json.loads(run.summary) if run.summary else None,
    }
