"""serve's scheduler: slots missed while no process was up run once, within the grace."""

from __future__ import annotations

import datetime as dt
import threading
import time
import zlib
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_MISSED
from sqlalchemy import event, func, select, text

from sepa_engine import errors
from sepa_engine.clock import FixedClock, SystemClock
from sepa_engine.config import JobSchedule, SchedulerSettings, Settings
from sepa_engine.crontab import cron_trigger
from sepa_engine.db import locks
from sepa_engine.db.repositories import jobs as repo
from sepa_engine.db.service_models import JobRun
from sepa_engine.jobs import daemon, nightly
from sepa_engine.jobs.daemon import build_scheduler, first_missed_slot
from sepa_engine.jobs.nightly import StepResult

PARIS = dt.timezone(dt.timedelta(hours=1))
MONTHLY = "0 0 1 * *"


def _settings(tmp_path: Path, database_url: str, cron: str, grace: int) -> Settings:
    return Settings(
        database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox",
        scheduler=SchedulerSettings(misfire_grace_seconds=grace, jobs=(JobSchedule("nightly", cron),)),
    )


def _ran(db, job: str, at: dt.datetime, outcome: str = "ok") -> None:
    with db.transaction() as s:
        run = repo.start_run(s, job, "cron", at, "host", 1)
        repo.finish_run(s, run.id, at, outcome, 0, "{}")


def _runs(db) -> int:
    with db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(JobRun)))


def _counting_steps(calls: list[str], started: threading.Event):
    def make(name: str):
        def step(db, settings, clock, should_stop):
            calls.append(name)
            started.set()
            return StepResult(name, "nothing_to_do", {})
        return step
    return {name: make(name) for name in nightly.STEPS}


def test_the_first_missed_slot_is_the_first_after_the_last_recorded_run(db):
    weekdays = cron_trigger("30 22 * * 1-5", "Europe/Paris").get_next_fire_time
    monday_slot = dt.datetime(2026, 11, 23, 22, 30, tzinfo=PARIS)
    # Never ran on this ledger: nothing was missed.
    assert first_missed_slot(db, "nightly", weekdays, monday_slot + dt.timedelta(days=3)) is None
    # A run recorded at the very second of its slot does not count that slot as missed.
    _ran(db, "nightly", monday_slot)
    assert first_missed_slot(db, "nightly", weekdays, monday_slot + dt.timedelta(hours=1)) is None
    thursday_morning = dt.datetime(2026, 11, 26, 8, 0, tzinfo=PARIS)
    assert first_missed_slot(db, "nightly", weekdays, thursday_morning) == monday_slot + dt.timedelta(days=1)
    # Other jobs' runs do not count.
    assert first_missed_slot(db, "inbox", weekdays, thursday_morning) is None


def test_a_run_stopped_before_its_end_does_not_count_so_a_restart_runs_it_again(db):
    weekdays = cron_trigger("30 22 * * 1-5", "Europe/Paris").get_next_fire_time
    monday_slot = dt.datetime(2026, 11, 23, 22, 30, tzinfo=PARIS)
    _ran(db, "nightly", monday_slot - dt.timedelta(days=3))  # the Friday before, complete
    _ran(db, "nightly", monday_slot, outcome="interrupted")  # SIGTERM during a deployment
    assert first_missed_slot(db, "nightly", weekdays, monday_slot + dt.timedelta(minutes=5)) == monday_slot


def test_missed_slots_after_downtime_run_once_not_once_per_slot(db, database_url, tmp_path):
    now = SystemClock().now()
    _ran(db, "nightly", now - dt.timedelta(days=150))  # about five monthly slots ago
    calls: list[str] = []
    started = threading.Event()
    scheduler = build_scheduler(db, _settings(tmp_path, database_url, MONTHLY, grace=60 * 86400), SystemClock(),
                                threading.Event(), steps=_counting_steps(calls, started))
    scheduler.start()
    try:
        assert started.wait(10), "the missed run did not start"
        # Handed over once, for the latest missed slot; the next run is the next slot to come.
        assert scheduler.get_job("nightly").next_run_time > now
    finally:
        scheduler.shutdown(wait=True)  # waits for every run the scheduler handed to its worker

    assert calls == ["collect", "schedules", "inbox"]
    assert _runs(db) == 2


def test_a_slot_missed_beyond_the_grace_is_skipped_until_the_next_one(db, database_url, tmp_path):
    now = SystemClock().now()
    _ran(db, "nightly", now - dt.timedelta(days=150))
    calls: list[str] = []
    missed = threading.Event()
    scheduler = build_scheduler(db, _settings(tmp_path, database_url, MONTHLY, grace=60), SystemClock(),
                                threading.Event(), steps=_counting_steps(calls, threading.Event()))
    scheduler.add_listener(lambda event: missed.set(), EVENT_JOB_MISSED)
    scheduler.start()
    try:
        assert missed.wait(10), "the late slot was not reported as missed"
    finally:
        scheduler.shutdown(wait=True)
    assert calls == [] and _runs(db) == 1


def test_jobs_queued_when_the_stop_comes_do_not_start(db, database_url, tmp_path):
    _ran(db, "nightly", SystemClock().now() - dt.timedelta(days=40))
    calls: list[str] = []
    stop = threading.Event()
    stop.set()
    scheduler = build_scheduler(db, _settings(tmp_path, database_url, MONTHLY, grace=60 * 86400), SystemClock(),
                                stop, steps=_counting_steps(calls, threading.Event()))
    scheduler.start()
    scheduler.shutdown(wait=True)
    assert calls == [] and _runs(db) == 1


def test_serve_with_no_enabled_job_is_a_configuration_error(db, database_url, tmp_path):
    settings = Settings(database_url=database_url, scheduler=SchedulerSettings(
        jobs=(JobSchedule("nightly", "30 22 * * *", enabled=False),)))
    with pytest.raises(errors.ConfigurationError, match=r"\[scheduler.jobs\] enables no job"):
        build_scheduler(db, settings, FixedClock(dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)), threading.Event())


class _LostLease(locks.Lease):
    def held(self) -> bool:
        return False


def test_a_scheduler_that_lost_its_lock_starts_no_job_and_stops(db, database_url, tmp_path):
    _ran(db, "nightly", SystemClock().now() - dt.timedelta(days=40))
    calls: list[str] = []
    stop = threading.Event()
    scheduler = build_scheduler(db, _settings(tmp_path, database_url, MONTHLY, grace=60 * 86400), SystemClock(),
                                stop, steps=_counting_steps(calls, threading.Event()), lease=_LostLease())
    scheduler.start()
    try:
        assert stop.wait(10), "the scheduler did not stop"
    finally:
        scheduler.shutdown(wait=True)
    assert calls == [] and _runs(db) == 1


def test_serve_stops_with_lock_lost_when_the_server_drops_its_lock(db, database_url, tmp_path):
    """PostgreSQL: a server restart ends the lock's connection silently. SQLite: the flock
    lives with the process, so the same serve keeps its lock until it is stopped."""
    settings = _settings(tmp_path, database_url, MONTHLY, grace=60)
    stop = threading.Event()
    outcome: list[BaseException | None] = []

    def serving() -> None:
        try:
            daemon.serve(db, settings, SystemClock(), stop, steps=_counting_steps([], threading.Event()),
                         lease_check_seconds=0.1)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=serving)
    thread.start()
    try:
        if db.is_sqlite:
            assert not thread.join(1.0) and thread.is_alive(), "serve stopped by itself"
            stop.set()
            thread.join(10)
            assert outcome == [None]
        else:
            holder = _advisory_holder(db)
            with db.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})
                admin.commit()
            thread.join(10)
            assert len(outcome) == 1 and isinstance(outcome[0], locks.LockLost)
    finally:
        stop.set()
        thread.join(10)


def test_a_lock_whose_connection_drops_as_it_is_taken_is_lost_not_a_database_error(db):
    """Found in CI under load: the test above killed serve's lock connection between
    pg_try_advisory_lock and its commit, and serve ended with psycopg's OperationalError
    instead of LockLost (exit 5). SQLite: the flock is the process's, not a connection's."""
    if db.is_sqlite:
        with locks.run_lock(db, "dropped") as lease:
            db.engine.dispose()  # every pooled connection goes
            assert lease.held()
            with pytest.raises(locks.LockBusy):
                with locks.run_lock(db, "dropped"):
                    pass
        return

    def drop_after_taking(_conn, cursor, statement, *_args):
        if "pg_try_advisory_lock" in statement:
            with db.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": cursor.connection.info.backend_pid})
                admin.commit()

    event.listen(db.engine, "after_cursor_execute", drop_after_taking)
    try:
        with pytest.raises(locks.LockLost):
            with locks.run_lock(db, "dropped"):
                raise AssertionError("a lock whose connection is gone was handed out")
    finally:
        event.remove(db.engine, "after_cursor_execute", drop_after_taking)


def _advisory_holder(db) -> int:
    query = text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid::bigint = :k")
    key = zlib.crc32(f"sepa-engine:{nightly.SCHEDULER_LOCK}".encode())
    # A deadline, not a count of tries: on a loaded CI machine serve's thread may take seconds.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            pid = conn.execute(query, {"k": key}).scalar()
        if pid is not None:
            return int(pid)
        time.sleep(0.05)
    raise AssertionError("serve never took the scheduler lock")
