"""The stop hook (SIGTERM in ``serve``) and the progress a run reports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch, DebitRequest, Run
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", chunk_size=3)


def collect(db, settings, prefix="RUN", **kwargs):
    return run_collection(db, settings, FixedClock(NOW), SequentialIds(prefix), **kwargs)


def _published(settings: Settings) -> list[Path]:
    return sorted(settings.outbox_dir.rglob("*.xml"))


def _counts(db, column) -> dict[str, int]:
    found: dict[str, int] = {}
    with db.reader() as s:
        for value in s.scalars(select(column)):
            found[value] = found.get(value, 0) + 1
    return found


def test_stop_requested_after_the_first_file_ends_the_run_between_files(db, settings):
    creditor = ledger.creditor(db, max_per_file=4)
    ledger.many_requests(db, creditor, 10)

    report = collect(db, settings, should_stop=lambda: len(_published(settings)) >= 1)

    assert report.interrupted and not report.nothing_to_do
    assert len(report.files) == 1 and len(_published(settings)) == 1
    assert not list(settings.outbox_dir.rglob("*.part"))
    # Files are planned one ahead of the one written: the second was planned while the first
    # was written, the third never was. The report counts what its files hold.
    assert _counts(db, Batch.status) == {"published": 1, "planned": 1}
    assert _counts(db, DebitRequest.status) == {"submitted": 4, "assigned": 4, "pending": 2}
    assert report.assigned == 8
    with db.reader() as s:
        assert s.scalars(select(Run.outcome)).one() == "interrupted"

    rest = collect(db, settings, prefix="NEXT")

    assert not rest.interrupted
    assert sorted(f.count for f in rest.files) == [2, 4]
    assert _counts(db, DebitRequest.status) == {"submitted": 10}
    assert len(_published(settings)) == 3


def test_stop_requested_before_the_run_claims_nothing(db, settings):
    creditor = ledger.creditor(db)
    ledger.many_requests(db, creditor, 3)

    report = collect(db, settings, should_stop=lambda: True)

    assert report.interrupted and report.files == [] and report.assigned == 0
    assert _counts(db, DebitRequest.status) == {"pending": 3}
    assert not settings.outbox_dir.exists() or not any(settings.outbox_dir.rglob("*"))


def test_run_without_stop_request_is_not_interrupted(db, settings):
    creditor = ledger.creditor(db, max_per_file=2)
    ledger.many_requests(db, creditor, 5)
    report = collect(db, settings, should_stop=lambda: False)
    assert not report.interrupted and len(report.files) == 3


class Recorder:
    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.advances: list[int] = []

    def total(self, count: int | None) -> None:
        self.totals.append(count)

    def advance(self, count: int = 1) -> None:
        self.advances.append(count)


def test_progress_hears_the_total_then_each_chunk_written(db, settings):
    creditor = ledger.creditor(db, max_per_file=4)
    ledger.many_requests(db, creditor, 10)
    progress = Recorder()

    collect(db, settings, progress=progress)

    assert progress.totals == [10]
    assert sum(progress.advances) == 10
    # chunk_size 3, files of 4, 4 and 2: a chunk, then the file's rest.
    assert progress.advances == [3, 1, 3, 1, 2]
