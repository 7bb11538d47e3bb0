"""The run stages the next file while it records and publishes the previous one, and what it
staged ahead is never left behind: called off when the run stops or fails, written again by
the next run. On PostgreSQL a file's hand-over runs, uncommitted, while that file is staged."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch, DebitRequest, LedgerEntry, Mandate
from sepa_engine.ids import SequentialIds
from sepa_engine.services import collection
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.services.test_exactly_once import assert_exactly_once

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", chunk_size=3)


def test_the_next_file_is_staged_while_the_previous_one_is_published(db, settings):
    creditor = ledger.creditor(db, max_per_file=4)
    ledger.many_requests(db, creditor, 10)
    staged = {"count": 0}
    second_staged = threading.Event()
    waited: list[bool] = []

    def checkpoint(name: str) -> None:
        if name == "after_stage":
            staged["count"] += 1
            if staged["count"] == 2:
                second_staged.set()
        elif name == "before_publish" and not waited:
            # Run one file at a time, this would wait for a staging that comes after it.
            waited.append(second_staged.wait(timeout=30))

    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"), checkpoint=checkpoint)

    assert waited == [True]
    assert not report.failures and sorted(f.count for f in report.files) == [2, 4, 4]
    assert_exactly_once(db, settings.outbox_dir, 10)


def test_the_next_file_is_planned_and_committed_before_the_one_before_it_is_published(db, settings):
    # Planning (the server's block updates) overlaps the writing of the file before, instead
    # of every file being planned before the first is written. The first publication waits
    # for the second file's commit: run one step after the other, it would wait in vain.
    creditor = ledger.creditor(db, max_per_file=4)
    ledger.many_requests(db, creditor, 10)
    steps: list[str] = []
    second_planned = threading.Event()
    at_first_publish: list[tuple[bool, int]] = []

    def checkpoint(name: str) -> None:
        steps.append(name)
        if name == "after_plan":
            second_planned.set()
        elif name == "before_publish" and not at_first_publish:
            waited = second_planned.wait(timeout=30)
            with db.reader() as s:
                at_first_publish.append((waited, s.scalar(select(func.count()).select_from(Batch))))

    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"), checkpoint=checkpoint)

    assert at_first_publish == [(True, 2)]
    assert [step for step in steps if step.endswith(("assign", "plan"))] == [
        "during_assign", "after_assign", "during_plan", "after_plan", "during_plan", "after_plan",
    ]
    assert sorted(f.count for f in report.files) == [2, 4, 4] and report.assigned == 10
    assert_exactly_once(db, settings.outbox_dir, 10)


def test_a_run_failing_while_it_publishes_leaves_no_file_it_staged_ahead(db, settings):
    creditor = ledger.creditor(db, max_per_file=4)
    ledger.many_requests(db, creditor, 10)
    staged_ahead = threading.Event()

    def checkpoint(name: str) -> None:
        if name == "after_stage" and not staged_ahead.is_set():
            staged_ahead.set()
        elif name == "before_publish":
            raise ConnectionError("the database went away")

    with pytest.raises(ConnectionError):
        run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"), checkpoint=checkpoint)

    with db.reader() as s:
        statuses = [b.status for b in s.scalars(select(Batch).order_by(Batch.id))]
        first = s.scalars(select(Batch).order_by(Batch.id)).first()
    # Files are planned one ahead of the one written: the second was planned while the first
    # was staged; the third never was, its requests still pending.
    assert statuses == ["written", "planned"]
    with db.reader() as s:
        assert sorted(s.scalars(select(DebitRequest.status))) == ["assigned"] * 8 + ["pending"] * 2
    # Only the recorded file's temporary copy is left, for the next run to publish.
    assert [p.name for p in settings.outbox_dir.rglob("*.part")] == [f".{first.file_name}.part"]

    again = run_collection(db, settings, FixedClock(NOW), SequentialIds("NEXT"))
    assert not again.failures
    assert_exactly_once(db, settings.outbox_dir, 10)


def _watch_hand_over(monkeypatch) -> threading.Event:
    started = threading.Event()
    real = collection.hand_over

    def hand_over(*args, **kwargs):
        started.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(collection, "hand_over", hand_over)
    return started


def test_a_files_hand_over_runs_while_it_is_staged_on_postgresql_and_after_it_on_sqlite(db, settings, monkeypatch):
    creditor = ledger.creditor(db)
    ledger.many_requests(db, creditor, 5)
    handing = _watch_hand_over(monkeypatch)
    seen: list[tuple[str, bool]] = []

    def checkpoint(name: str) -> None:
        if name == "after_stage" and not db.is_sqlite:
            # Run one step after the other, the hand-over would wait for this staging.
            handing.wait(timeout=30)
        seen.append((name, handing.is_set()))

    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"), checkpoint=checkpoint)

    assert not report.failures and [f.count for f in report.files] == [5]
    # SQLite has one writer: the hand-over starts once the file is recorded and published.
    assert seen[2:] == [
        ("after_stage", not db.is_sqlite), ("after_written_commit", not db.is_sqlite),
        ("before_publish", not db.is_sqlite), ("after_publish", not db.is_sqlite),
    ]
    assert_exactly_once(db, settings.outbox_dir, 5)


def test_a_file_failing_after_its_hand_over_began_hands_nothing_over(db, settings, monkeypatch):
    creditor = ledger.creditor(db)
    ledger.many_requests(db, creditor, 5)
    handing = _watch_hand_over(monkeypatch)

    def write_pain008(*_args, **_kwargs):
        handing.wait(timeout=0 if db.is_sqlite else 30)
        raise errors.ControlSumMismatch("batch", "RUN000001", "file totals differ from the ledger's")

    monkeypatch.setattr(collection, "write_pain008", write_pain008)
    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"))

    assert report.files == [] and len(report.failures) == 1
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).all() == ["failed"]
        assert set(s.scalars(select(DebitRequest.status))) == {"pending"}
        assert s.scalars(select(LedgerEntry)).all() == []
        assert set(s.scalars(select(Mandate.first_collected_on))) == {None}
    monkeypatch.undo()
    again = run_collection(db, settings, FixedClock(NOW), SequentialIds("NEXT"))
    assert not again.failures and [f.count for f in again.files] == [5]
    with db.reader() as s:
        assert set(s.scalars(select(DebitRequest.status))) == {"submitted"}
        assert len(s.scalars(select(LedgerEntry)).all()) == 5


def test_a_file_staged_to_wait_for_approval_after_its_hand_over_began_is_held_with_nothing_handed_over(
    db, settings, monkeypatch,
):
    # The creditor started requiring approval between the hand-over's read of it and the
    # stager's: the folder the file was staged for decides, on both backends.
    creditor = ledger.creditor(db)
    ledger.many_requests(db, creditor, 5)
    monkeypatch.setattr(collection, "_final_path", lambda s, c, b: collection.pending_path(s, c.code, b.file_name))

    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"))

    assert not report.failures and [(f.count, f.awaiting_approval) for f in report.files] == [(5, True)]
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).all() == ["awaiting_approval"]
        assert set(s.scalars(select(DebitRequest.status))) == {"assigned"}
        assert s.scalars(select(LedgerEntry)).all() == []
        assert set(s.scalars(select(Mandate.first_collected_on))) == {None}


def test_a_file_given_up_half_written_closes_its_read_before_the_connection_goes_back(db, settings, monkeypatch):
    # Regression: the file's entries are read through an open cursor, a chunk at a time. A
    # file that failed halfway left that read open until the generator was collected, after
    # its connection had gone back to the pool: SQLite then failed the next writer ("database
    # is locked") and the late close logged "Cannot operate on a closed database".
    creditor = ledger.creditor(db, max_per_file=10)
    ledger.many_requests(db, creditor, 20)
    real = collection._direct_debit
    written: list[object] = []

    def direct_debit(row, *args):  # type: ignore[no-untyped-def]
        if row.block_id == first_block[0] and len(written) == 4:  # halfway through the first file
            raise errors.CollectionError("debit", row.end_to_end_id, "broken on purpose")
        written.append(row)
        return real(row, *args)

    first_block: list[int] = []
    real_entries = collection.repo.batch_entries

    def batch_entries(session, batch_id, chunk_size):  # type: ignore[no-untyped-def]
        for row in real_entries(session, batch_id, chunk_size):
            first_block[:] = first_block or [row.block_id]
            yield row

    monkeypatch.setattr(collection, "_direct_debit", direct_debit)
    monkeypatch.setattr(collection.repo, "batch_entries", batch_entries)
    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"))

    assert len(report.failures) == 1 and "broken on purpose" in report.failures[0]
    assert [f.count for f in report.files] == [10]
    with db.transaction() as s:  # a writer gets the database at once
        statuses = sorted(b.status for b in s.scalars(select(Batch)))
    assert statuses == ["failed", "published"]
