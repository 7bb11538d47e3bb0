from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from sepa_engine.banksim import simulate
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db import locks
from sepa_engine.db.models import DebitRequest
from sepa_engine.db.returns_models import AppliedReturn, ReturnFile
from sepa_engine.db.session import Database
from sepa_engine.ids import SequentialIds
from sepa_engine.jobs.returns_inbox import InboxReport, import_inbox
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.concurrency import at_once, in_thread, the_other_side_of_a_cycle
from tests.services.test_reconciliation import LATER, NOW, _pain002_tx, collect


def test_inbox_files_are_reconciled_then_moved_to_processed_or_failed(db, database_url, tmp_path: Path):
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    inbox = tmp_path / "inbox"
    simulate(collect(db, settings), inbox, 0.3, 0.3, seed=1)
    (inbox / "zz-broken.xml").write_text("<Document>")

    report = import_inbox(db, inbox, LATER)

    assert len(report.processed) == 2 and list(report.failed) == ["zz-broken.xml"]
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["RUN000001-camt054.xml", "RUN000001-pain002.xml"]
    assert [p.name for p in (inbox / "failed").iterdir()] == ["zz-broken.xml"]
    assert [p for p in inbox.iterdir() if p.is_file()] == []
    assert import_inbox(db, inbox, LATER).processed == []


def test_two_imports_of_one_inbox_at_once_apply_and_move_each_file_once(db, database_url, tmp_path: Path):
    # An operator's `returns import-inbox` beside the scheduler's: the second found files the
    # first had moved meanwhile and failed on them (FileNotFoundError), or refused them.
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    inbox = tmp_path / "inbox"
    creditor = ledger.creditor(db)
    for n in range(3):
        for i in range(3):
            ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000 + i)
        (written,) = run_collection(db, settings, FixedClock(NOW + dt.timedelta(days=n)), SequentialIds(f"R{n}")).files
        simulate(written.path, inbox, 0.3, 0.3, seed=n)
    names = sorted(p.name for p in inbox.iterdir())
    (inbox / "zz-broken.xml").write_text("<Document>")

    outcomes = at_once(lambda: import_inbox(db, inbox, LATER), lambda: import_inbox(db, inbox, LATER))

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    applied = [r.path.name for o in outcomes for r in o.processed if not r.duplicate]  # type: ignore[attr-defined]
    assert sorted(applied) == names
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == names
    assert [p.name for p in (inbox / "failed").iterdir()] == ["zz-broken.xml"]
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(ReturnFile)) == len(names) + 1


def test_an_import_waiting_for_another_stops_when_asked_and_leaves_the_inbox_alone(db, database_url, tmp_path: Path):
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    inbox = tmp_path / "inbox"
    simulate(collect(db, settings), inbox, 0.3, 0.3, seed=1)
    before = sorted(p.name for p in inbox.iterdir())
    asked: list[bool] = []

    def stop_on_second_ask() -> bool:
        asked.append(True)
        return len(asked) >= 2

    with locks.run_lock(db, locks.RECONCILIATION_LOCK):
        report = import_inbox(db, inbox, LATER, should_stop=stop_on_second_ask)

    assert report.interrupted and report.processed == [] and report.failed == {}
    assert sorted(p.name for p in inbox.iterdir()) == before


def a_reject_that_locks_a_mandate_then_its_account(db: Database, settings: Settings, folder: Path) -> Path:
    """A file rejecting one debit (AM04: its payment reversed on the account, a retry
    enqueued), whose reconciliation locks the debit's mandate, then the account: it can be
    the writer of ``the_other_side_of_a_cycle``."""
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000)
    (written,) = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN")).files
    with db.reader() as s:
        end_to_end_id = s.scalar(select(DebitRequest.end_to_end_id))
    folder.mkdir(exist_ok=True)
    return _pain002_tx(folder / "reject.xml", written.message_id, end_to_end_id, 1_000, "AM04")


def test_a_file_the_database_undoes_to_break_a_deadlock_is_applied_whole_on_its_next_try(db, database_url, tmp_path: Path):
    # Before, the pass ended on PostgreSQL's "deadlock detected": the file waited in the inbox
    # for the next pass (a nightly job's: the next night), the step marked failed.
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    inbox = tmp_path / "inbox"
    a_reject_that_locks_a_mandate_then_its_account(db, settings, inbox)
    importing, outcome = in_thread(lambda: import_inbox(db, inbox, LATER), start=False)

    the_other_side_of_a_cycle(db, importing, go=importing.start)
    importing.join(timeout=60)

    (report,) = outcome
    assert isinstance(report, InboxReport), report
    assert [(r.path.name, r.applied, r.retries) for r in report.processed] == [("reject.xml", 1, 1)]
    assert report.failed == {}
    assert [p.name for p in (inbox / "processed").iterdir()] == ["reject.xml"]
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(AppliedReturn)) == 1
        assert s.scalar(select(func.count()).where(DebitRequest.retry_of_id.is_not(None))) == 1
        assert s.scalar(select(func.count()).select_from(ReturnFile)) == 1
