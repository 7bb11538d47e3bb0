"""A debit is never collected twice: not after a crash at any step, not when two runs start
at once, not when a request arrives during a run. Each test ends by checking the same
invariants over the ledger and the outbox together."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db import locks
from sepa_engine.db.models import Batch, DebitRequest, Run
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = [
    "during_assign", "after_assign", "during_plan", "after_plan", "after_stage", "after_written_commit", "before_publish",
    "after_publish",
]


def _process(
    url: str, outbox: Path, prefix: str, crash_at: str = "-", lock_wait: float = 0.0, creditor: str = "-"
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.run_collection_process", url, str(outbox), prefix, crash_at, str(lock_wait), creditor],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _settings(database_url: str, outbox: Path) -> Settings:
    return Settings(database_url=database_url, var_dir=outbox.parent, outbox_dir=outbox, chunk_size=50)


def assert_exactly_once(db, outbox: Path, expected_requests: int) -> None:
    """Every request in exactly one published file; files and ledger agree; no temporaries."""
    assert not list(outbox.rglob("*.part")), "a temporary file was left behind"
    in_files: list[str] = []
    published_paths = set()
    with db.reader() as s:
        batches = s.scalars(select(Batch)).all()
        for batch in batches:
            assert batch.status == "published", (batch.id, batch.status)
            path = Path(batch.path)
            published_paths.add(path)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == batch.sha256
            doc = etree.parse(str(path))
            ids = [e.text for e in doc.iter("{*}EndToEndId")]
            assert len(ids) == batch.count
            in_files.extend(ids)
        submitted = set(s.scalars(select(DebitRequest.end_to_end_id).where(DebitRequest.status == "submitted")))
        not_submitted = s.scalars(select(DebitRequest.status).where(DebitRequest.status != "submitted")).all()
    assert sorted(p.name for p in outbox.rglob("*.xml")) == sorted(p.name for p in published_paths)
    assert len(in_files) == len(set(in_files)), "a request appears in two files"
    assert set(in_files) == submitted
    assert len(submitted) == expected_requests, (len(submitted), not_submitted)


@pytest.mark.parametrize("crash_at", CHECKPOINTS)
def test_crash_at_any_step_then_rerun_publishes_each_request_once(db, database_url, tmp_path, crash_at):
    creditor = ledger.creditor(db, max_per_file=40)
    ledger.many_requests(db, creditor, 100, mandates=60)
    outbox = tmp_path / "outbox"

    crashed = _process(database_url, outbox, "CRASH", crash_at)
    crashed.wait(timeout=120)
    assert crashed.returncode == 70, crashed.stderr.read()
    _assert_left_behind(db, outbox, crash_at)

    report = run_collection(db, _settings(database_url, outbox), FixedClock(NOW), SequentialIds("RERUN"))
    assert not report.failures
    assert_exactly_once(db, outbox, 100)
    # A third run finds nothing left to do.
    again = run_collection(db, _settings(database_url, outbox), FixedClock(NOW), SequentialIds("THIRD"))
    assert again.nothing_to_do


# What a crash at each checkpoint leaves for the next run: (first batch status, its temp file,
# its final file). The next file is staged while the first is recorded and published, so a
# crash there may also leave the next file's temporary file; that batch is still PLANNED.
LEFT_BEHIND = {
    "during_assign": (None, False, False),
    "after_assign": ("planned", False, False),
    # The second file is planned while the first is staged: a crash then comes before or
    # after the first file's temporary file is written (None: either).
    "during_plan": ("planned", None, False),
    "after_plan": ("planned", None, False),
    "after_stage": ("planned", True, False),
    "after_written_commit": ("written", True, False),
    "before_publish": ("written", True, False),
    "after_publish": ("written", False, True),
}


def _assert_left_behind(db, outbox: Path, crash_at: str) -> None:
    status, temp, final = LEFT_BEHIND[crash_at]
    with db.reader() as s:
        batches = s.scalars(select(Batch).order_by(Batch.id)).all()
        if crash_at in ("during_plan", "after_plan"):
            # One file committed (two after the second's commit), the rest still pending.
            files = 1 if crash_at == "during_plan" else 2
            assert len(batches) == files
            assert s.scalar(select(func.count()).where(DebitRequest.status == "pending")) == 100 - 40 * files
    first = batches[0] if batches else None
    assert (first.status if first else None) == status
    first_name = first.file_name if first else None
    temps = {p.name for p in outbox.rglob("*.part")}
    if temp is not None:
        assert (f".{first_name}.part" in temps) is temp, temps
    assert [p.name for p in outbox.rglob("*.xml")] == ([first_name] if final else [])
    # Any other temporary file is a file staged ahead, never recorded: its batch is PLANNED.
    planned = {f".{b.file_name}.part" for b in batches if b.status == "planned"}
    assert temps - {f".{first_name}.part"} <= planned, (temps, planned)


def test_two_runs_started_together_collect_each_request_once(db, database_url, tmp_path):
    creditor = ledger.creditor(db, max_per_file=50)
    ledger.many_requests(db, creditor, 300, mandates=150)
    outbox = tmp_path / "outbox"

    runs = [_process(database_url, outbox, prefix, lock_wait=120) for prefix in ("ALPHA", "BRAVO")]
    for run in runs:
        run.wait(timeout=180)
        assert run.returncode == 0, run.stderr.read()
    assert_exactly_once(db, outbox, 300)


def test_run_that_will_not_wait_skips_the_creditor_another_run_holds_and_touches_nothing(db, database_url, tmp_path):
    creditor = ledger.creditor(db, code="busy")
    ledger.many_requests(db, creditor, 20)
    outbox = tmp_path / "outbox"

    with locks.creditor_lock(db, creditor):
        busy = _process(database_url, outbox, "BUSY", lock_wait=0)
        out, err = busy.communicate(timeout=60)
    assert busy.returncode == 0, err
    assert "files=0 assigned=0 skipped=busy" in out
    with db.reader() as s:
        assert set(s.scalars(select(DebitRequest.status))) == {"pending"}
        assert not s.scalars(select(Batch)).all()


def test_run_for_a_named_creditor_another_run_holds_exits_busy_without_a_run_row(db, database_url, tmp_path):
    creditor = ledger.creditor(db, code="busy")
    ledger.many_requests(db, creditor, 20)
    outbox = tmp_path / "outbox"

    with locks.creditor_lock(db, creditor):
        busy = _process(database_url, outbox, "BUSY", lock_wait=0, creditor="busy")
        busy.wait(timeout=60)
    assert busy.returncode == 3
    with db.reader() as s:
        assert set(s.scalars(select(DebitRequest.status))) == {"pending"}
        assert not s.scalars(select(Run)).all()


def test_run_holding_one_creditor_leaves_another_creditors_lock_free(db, tmp_path):
    first = ledger.creditor(db, code="first", creditor_identifier=_creditor_identifier(1))
    second = ledger.creditor(db, code="second", creditor_identifier=_creditor_identifier(2))
    with locks.creditor_lock(db, first):
        with locks.creditor_lock(db, second):
            with pytest.raises(locks.LockBusy):
                with locks.creditor_lock(db, first):
                    pass


def _creditor_identifier(n: int) -> str:
    """A valid French creditor identifier per n (EPC262-08: ISO 7064 MOD 97-10 check digits
    over the national identifier and "FR00", business code left out)."""
    national = f"{n:06d}"
    digits = "".join(str(int(c, 36)) for c in national + "FR00")
    return f"FR{98 - int(digits) % 97:02d}ZZZ{national}"


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_started_together_over_ten_creditors_collect_each_request_once(db, database_url, tmp_path, processes):
    creditors = [
        ledger.creditor(db, code=f"cred{n}", max_per_file=10, creditor_identifier=_creditor_identifier(n))
        for n in range(10)
    ]
    for creditor in creditors:
        ledger.many_requests(db, creditor, 25, mandates=20)
    outbox = tmp_path / "outbox"

    runs = [_process(database_url, outbox, f"P{n}X") for n in range(processes)]
    reported_files = 0
    skipped: set[str] = set()
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        fields = dict(item.split("=", 1) for item in out.strip().splitlines()[-1].split())
        reported_files += int(fields["files"])
        skipped.update(code for code in fields["skipped"].split(",") if code)
    assert_exactly_once(db, outbox, 250)
    with db.reader() as s:
        batches = s.scalars(select(Batch)).all()
        by_creditor = {c: sum(1 for b in batches if b.creditor_id == c) for c in creditors}
    # Each file recorded once and reported by exactly the one run that wrote it; a creditor
    # one run skipped was collected by another (3 files of at most 10 for 25 requests).
    assert reported_files == len(batches) == 30
    assert len({b.message_id for b in batches}) == len(batches)
    assert set(by_creditor.values()) == {3}
    assert skipped <= {f"cred{n}" for n in range(10)}


def test_request_enqueued_during_a_run_is_collected_by_this_run_or_the_next(db, database_url, tmp_path):
    creditor = ledger.creditor(db)
    first_mandate = ledger.mandate(db, creditor)
    ledger.request(db, creditor, first_mandate)
    late_mandate = ledger.mandate(db, creditor)
    outbox = tmp_path / "outbox"
    inserted: list[int] = []

    def enqueue_meanwhile(name: str) -> None:
        if name == "during_assign":
            # Another connection inserts while the run's assignment transaction is open
            # (on SQLite it waits for the write lock; on PostgreSQL it commits at once).
            thread = threading.Thread(target=lambda: inserted.append(ledger.request(db, creditor, late_mandate)))
            thread.start()
            threads.append(thread)

    threads: list[threading.Thread] = []
    run_collection(db, _settings(database_url, outbox), FixedClock(NOW), SequentialIds("ONE"), checkpoint=enqueue_meanwhile)
    for thread in threads:
        thread.join(timeout=60)
    assert inserted
    run_collection(db, _settings(database_url, outbox), FixedClock(NOW), SequentialIds("TWO"))
    assert_exactly_once(db, outbox, 2)
