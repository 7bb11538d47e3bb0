"""run-nightly, serve and status as cron, systemd and an operator use them."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.clock import SystemClock
from sepa_engine.db import locks
from sepa_engine.db.models import Batch, DebitRequest, Run
from sepa_engine.db.repositories import collection as collection_repo
from sepa_engine.db.repositories import jobs as jobs_repo
from sepa_engine.db.returns_models import ReturnException, ReturnFile
from sepa_engine.db.service_models import JobRun
from sepa_engine.exit_codes import ExitCode
from sepa_engine.jobs.nightly import SCHEDULER_LOCK
from tests import ledger

LOCK_BUSY = ExitCode.LOCK_BUSY

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("sepa-engine")


def _config(tmp_path: Path, database_url: str, extra: str = "") -> Path:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{tmp_path / "outbox"}"\ninbox_dir = "{tmp_path / "inbox"}"\n'
        + extra
    )
    return path


def _job_runs(db) -> list[JobRun]:
    with db.reader() as s:
        return list(s.scalars(select(JobRun).order_by(JobRun.id)))


def _statuses(db, column) -> dict[str, int]:
    with db.reader() as s:
        return dict(s.execute(select(column, func.count()).group_by(column)).all())  # type: ignore[arg-type]


def _env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SEPA_ENGINE_DATABASE_URL", None)
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_run_nightly_exits_3_when_every_step_had_nothing_to_do_and_4_when_requests_were_refused(db, database_url, tmp_path):
    config = str(_config(tmp_path, database_url))

    empty = runner.invoke(app, ["run-nightly", "--json", "--config", config])
    assert empty.exit_code == 3, empty.output
    assert json.loads(empty.stdout)["outcome"] == "nothing_to_do"

    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 5_000)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 0)
    partial = runner.invoke(app, ["run-nightly", "--config", config])
    assert partial.exit_code == 4, partial.output
    assert "1 collected, 1 refused, 1 file(s)" in partial.stdout
    assert [(r.trigger, r.outcome, r.exit_code) for r in _job_runs(db)] == [("cron", "nothing_to_do", 3), ("cron", "partial", 4)]


def test_run_nightly_exits_75_and_does_nothing_while_another_scheduler_holds_the_ledger(db, database_url, tmp_path):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 5_000)
    config = str(_config(tmp_path, database_url))

    with locks.run_lock(db, SCHEDULER_LOCK):
        busy = runner.invoke(app, ["run-nightly", "--config", config])

    assert busy.exit_code == LOCK_BUSY == 75
    assert "lock busy" in busy.output and "Traceback" not in busy.output
    assert _job_runs(db) == [] and _statuses(db, DebitRequest.status) == {"pending": 1}


def test_a_lock_holder_killed_with_sigkill_does_not_block_the_next_run(db, database_url, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.hold_scheduler_lock", database_url],
        cwd=ROOT, env=_env(database_url), stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        config = str(_config(tmp_path, database_url))
        assert runner.invoke(app, ["run-nightly", "--config", config]).exit_code == LOCK_BUSY
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)

    # The server notices the dead connection within moments; the kernel frees a flock at once.
    config = str(_config(tmp_path, database_url, "[scheduler]\nlock_wait_seconds = 10\n"))
    after = runner.invoke(app, ["run-nightly", "--config", config])
    assert after.exit_code == 3, after.output


def _wait_for(what, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


FILES = 20


def test_serve_stops_on_sigterm_after_the_file_in_progress_and_leaves_nothing_half_written(db, database_url, tmp_path):
    creditor = ledger.creditor(db, max_per_file=10)
    ledger.many_requests(db, creditor, FILES * 10)
    # The last nightly run was yesterday: this minute's slot (and every one since) was
    # missed, so serve runs it once, at once, instead of waiting for the next minute.
    with db.transaction() as s:
        jobs_repo.start_run(s, "nightly", "cron", SystemClock().now() - dt.timedelta(days=1), "host", 1)
    with db.transaction() as s:
        s.execute(JobRun.__table__.update().values(outcome="ok", exit_code=0, finished_at=SystemClock().now()))
    config = _config(tmp_path, database_url, '[scheduler.jobs.nightly]\ncron = "* * * * *"\n')
    outbox = tmp_path / "outbox"
    service = subprocess.Popen([str(SCRIPT), "serve", "--config", str(config)], cwd=tmp_path, env=_env(database_url),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: list(outbox.rglob("*.xml")) or service.poll() is not None)
        assert service.poll() is None, service.communicate()[1]
        service.send_signal(signal.SIGTERM)
        _out, err = service.communicate(timeout=60)
    finally:
        if service.poll() is None:
            service.kill()
            print(service.communicate()[1])
    assert service.returncode == 0, err

    assert list(outbox.rglob("*.part")) == []
    serve_run = _job_runs(db)[-1]
    assert (serve_run.trigger, serve_run.outcome, serve_run.exit_code) == ("serve", "interrupted", 143)
    assert serve_run.finished_at is not None
    summary = json.loads(serve_run.summary)
    assert summary["skipped"] == ["schedules", "inbox"]
    batches = _statuses(db, Batch.status)
    # Files are planned one ahead of the one written: at most one is left planned, the rest
    # of the requests were never put in a file and stay pending.
    published, planned = batches.get("published", 0), batches.get("planned", 0)
    assert 1 <= published < FILES and planned <= 1
    requests = _statuses(db, DebitRequest.status)
    assert (requests.get("submitted"), requests.get("assigned", 0)) == (published * 10, planned * 10)
    assert requests.get("pending", 0) == (FILES - published - planned) * 10
    with db.reader() as s:
        assert s.scalars(select(Run.outcome)).all() == ["interrupted"]

    # The next run writes what the stopped one had planned, and nothing twice.
    rest = runner.invoke(app, ["run-nightly", "--config", str(config)])
    assert rest.exit_code == 0, rest.output
    assert _statuses(db, Batch.status) == {"published": FILES}
    assert _statuses(db, DebitRequest.status) == {"submitted": FILES * 10}
    assert len(list(outbox.rglob("*.xml"))) == FILES


def test_a_second_serve_exits_75_while_the_first_holds_the_ledger_and_sigterm_stops_an_idle_one(db, database_url, tmp_path):
    config = _config(tmp_path, database_url, '[scheduler.jobs.nightly]\ncron = "0 3 1 1 *"\n')
    service = subprocess.Popen([str(SCRIPT), "serve", "--config", str(config)], cwd=tmp_path, env=_env(database_url),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert service.stderr is not None
        _wait_for(lambda: "serve.started" in service.stderr.readline() or service.poll() is not None)
        second = runner.invoke(app, ["serve", "--config", str(config)])
        nightly = runner.invoke(app, ["run-nightly", "--config", str(config)])
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    finally:
        if service.poll() is None:
            service.kill()
    assert (second.exit_code, nightly.exit_code) == (LOCK_BUSY, LOCK_BUSY), second.output
    assert "lock busy" in second.output
    assert service.returncode == 0
    assert _job_runs(db) == []


def test_serve_refuses_a_bad_cron_line_naming_the_key(db, database_url, tmp_path):
    config = _config(tmp_path, database_url, '[scheduler.jobs.collect]\ncron = "30 25 * * *"\n')
    result = runner.invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 64
    assert "scheduler.jobs.collect.cron '30 25 * * *' is not a valid crontab line" in result.output


def test_status_shows_pending_per_creditor_last_runs_exceptions_and_files_to_approve(db, database_url, tmp_path):
    creditor = ledger.creditor(db, code="gim")
    ledger.creditor(db, code="quiet", creditor_identifier="FR19ZZZ654321")
    mandate = ledger.mandate(db, creditor)
    ledger.request(db, creditor, mandate, 5_000, requested_date=dt.date(2030, 1, 10))  # a Thursday
    ledger.request(db, creditor, mandate, 2_500, requested_date=dt.date(2030, 1, 1))  # a TARGET holiday
    now = SystemClock().now()
    with db.transaction() as s:
        run = jobs_repo.start_run(s, "nightly", "cron", now, "host-a", 42)
        jobs_repo.finish_run(s, run.id, now, "partial", 4, '{"steps": {}}')
        collection_run = collection_repo.start_run(s, now, now.date(), False)
        s.add(Batch(creditor_id=creditor, run_id=collection_run.id, message_id="MSG-APPROVE", status="awaiting_approval",
                    version="pain.008.001.08", created_at=now, file_name="MSG-APPROVE.xml", count=2, sum_cents=7_500))
        returned = ReturnFile(sha256="0" * 64, path="answer.xml", status="applied", imported_at=now)
        s.add(returned)
        s.flush()
        for state in ("open", "open", "resolved"):
            s.add(ReturnException(return_file_id=returned.id, record="{}", reason="no match", status=state, created_at=now))
    config = str(_config(tmp_path, database_url))

    result = runner.invoke(app, ["status", "--json", "--config", config])

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["creditors"] == [
        {"creditor": "gim", "pending": 2, "pending_amount": "75.00", "first_requested_date": "2030-01-01",
         "next_collection_date": "2030-01-02"},
        {"creditor": "quiet", "pending": 0, "pending_amount": "0.00", "first_requested_date": None,
         "next_collection_date": None},
    ]
    (nightly,) = document["jobs"]
    assert (nightly["job"], nightly["cron"], nightly["enabled"]) == ("nightly", "30 22 * * 1-5", True)
    assert nightly["last_run"]["outcome"] == "partial" and nightly["last_run"]["exit_code"] == 4
    assert dt.datetime.fromisoformat(nightly["next_run"]) > now
    assert document["open_exceptions"] == 2
    assert [(b["message_id"], b["creditor"], b["control_sum"]) for b in document["awaiting_approval"]] == [
        ("MSG-APPROVE", "gim", "75.00")
    ]

    table = runner.invoke(app, ["status", "--config", config], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "MSG-APPROVE" in table.stdout and "Open return exceptions: 2" in table.stdout
