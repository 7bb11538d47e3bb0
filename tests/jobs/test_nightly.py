"""run-nightly's runner: steps in order, one job_runs row per run, the worst step's code."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db import locks
from sepa_engine.db.models import DebitRequest
from sepa_engine.db.service_models import JobRun
from sepa_engine.exit_codes import ExitCode
from sepa_engine.jobs import nightly, runs
from sepa_engine.jobs.nightly import StepResult, run_nightly
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 21, 30, tzinfo=dt.timezone.utc)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", inbox_dir=tmp_path / "inbox"
    )


def _steps(outcomes: dict[str, str], calls: list[str], stop_after: str | None = None, stop: threading.Event | None = None):
    def make(name: str):
        def step(db, settings, clock, should_stop):
            calls.append(name)
            if outcomes[name] == "raise":
                raise RuntimeError(f"{name} broke")
            if name == stop_after and stop is not None:
                stop.set()
            return StepResult(name, outcomes[name], {"name": name})
        return step
    return {name: make(name) for name in nightly.STEPS}


def _rows(db) -> list[JobRun]:
    with db.reader() as s:
        return list(s.scalars(select(JobRun).order_by(JobRun.id)))


@pytest.mark.parametrize(
    ("outcomes", "outcome", "code"),
    [
        ({"collect": "ok", "schedules": "nothing_to_do", "inbox": "nothing_to_do"}, "ok", 0),
        ({"collect": "nothing_to_do", "schedules": "nothing_to_do", "inbox": "nothing_to_do"}, "nothing_to_do", 3),
        ({"collect": "partial", "schedules": "ok", "inbox": "nothing_to_do"}, "partial", 4),
        ({"collect": "ok", "schedules": "partial", "inbox": "failed"}, "failed", 5),
    ],
)
def test_the_run_takes_the_worst_outcome_of_its_steps(db, settings, outcomes, outcome, code):
    calls: list[str] = []
    result = run_nightly(db, settings, FixedClock(NOW), steps=_steps(outcomes, calls))
    assert calls == ["collect", "schedules", "inbox"]
    assert (result.outcome, result.exit_code) == (outcome, code)
    (row,) = _rows(db)
    assert (row.job, row.trigger, row.outcome, row.exit_code) == ("nightly", "cron", outcome, code)
    assert row.started_at == NOW and row.finished_at == NOW and row.pid == os.getpid() and row.host
    assert json.loads(row.summary)["steps"]["inbox"]["outcome"] == outcomes["inbox"]


def test_a_failing_step_is_recorded_and_the_later_steps_still_run(db, settings):
    calls: list[str] = []
    result = run_nightly(db, settings, FixedClock(NOW), steps=_steps(
        {"collect": "raise", "schedules": "ok", "inbox": "ok"}, calls))
    assert calls == ["collect", "schedules", "inbox"]
    assert (result.outcome, result.exit_code) == ("failed", 5)
    assert json.loads(_rows(db)[0].summary)["steps"]["collect"] == {"outcome": "failed", "error": "collect broke"}


def test_a_stop_during_a_step_lets_it_finish_and_starts_no_later_step(db, settings):
    calls: list[str] = []
    stop = threading.Event()
    result = run_nightly(db, settings, FixedClock(NOW), should_stop=stop.is_set, steps=_steps(
        {"collect": "ok", "schedules": "ok", "inbox": "ok"}, calls, stop_after="collect", stop=stop))
    assert calls == ["collect"]
    assert result.skipped == ["schedules", "inbox"]
    assert (result.outcome, result.exit_code) == ("interrupted", ExitCode.INTERRUPTED)
    (row,) = _rows(db)
    assert row.outcome == "interrupted" and row.finished_at is not None


def test_a_second_scheduler_finds_the_lock_busy_and_records_nothing(db, settings):
    calls: list[str] = []
    with locks.run_lock(db, nightly.SCHEDULER_LOCK):
        with pytest.raises(locks.LockBusy):
            run_nightly(db, settings, FixedClock(NOW), steps=_steps(
                {"collect": "ok", "schedules": "ok", "inbox": "ok"}, calls))
    assert calls == [] and _rows(db) == []


def test_a_run_left_open_by_a_dead_process_is_closed_as_interrupted_by_the_next(db, settings):
    clock = FixedClock(NOW - dt.timedelta(days=1))
    crashed = runs.start(db, "nightly", "cron", clock)
    run_nightly(db, settings, FixedClock(NOW), steps=_steps(
        {"collect": "ok", "schedules": "ok", "inbox": "ok"}, []))
    first, second = _rows(db)
    assert first.id == crashed and first.outcome == "interrupted" and first.finished_at is None
    assert second.outcome == "ok"


def test_the_real_steps_collect_refuse_and_report_partial(db, settings):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 12_345)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 0)  # refused: AM01

    result = run_nightly(db, settings, FixedClock(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)))

    assert [s.name for s in result.steps] == ["collect", "schedules", "inbox"]
    collect = result.steps[0]
    assert (collect.outcome, collect.summary["assigned"], collect.summary["refused"]) == ("partial", 1, 1)
    assert [s.outcome for s in result.steps[1:]] == ["nothing_to_do", "nothing_to_do"]
    assert (result.outcome, result.exit_code) == ("partial", 4)
    assert len(list(settings.outbox_dir.rglob("*.xml"))) == 1
    with db.reader() as s:
        assert sorted(s.scalars(select(DebitRequest.status))) == ["refused", "submitted"]

    again = run_nightly(db, settings, FixedClock(dt.datetime(2026, 11, 23, 8, 5, tzinfo=dt.timezone.utc)))
    assert (again.outcome, again.exit_code) == ("nothing_to_do", 3)


def test_a_step_the_database_failed_is_recorded_without_the_row_or_parameters_it_quoted(db, settings):
    # The step's error, stored in the run's row and shown by `sepa-engine status`, was the
    # database error whole: PostgreSQL's "Failing row contains (..., Jeanne Dupont, ...)",
    # SQLAlchemy's "[parameters: (..., 'Jeanne Dupont', ...)]".
    from sepa_engine.db.models import DebtorAccount

    def collect(db, settings, clock, should_stop):
        with db.transaction() as s:
            s.add(DebtorAccount(creditor_id=None, reference="CUST-9", name="Jeanne Dupont", created_at=NOW))
            s.flush()

    steps = _steps({"collect": "ok", "schedules": "ok", "inbox": "ok"}, [])
    result = run_nightly(db, settings, FixedClock(NOW), steps={**steps, "collect": collect})

    assert result.outcome == "failed"
    error = json.loads(_rows(db)[0].summary)["steps"]["collect"]["error"]
    assert "creditor_id" in error and "Jeanne" not in error
