"""The run stages the next file while it records and publishes the previous one, and what it
staged ahead is never left behind: called off when the run stops or fails, written again by
the next run."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch
from sepa_engine.ids import SequentialIds
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
    assert statuses == ["written", "planned", "planned"]
    # Only the recorded file's temporary copy is left, for the next run to publish.
    assert [p.name for p in settings.outbox_dir.rglob("*.part")] == [f".{first.file_name}.part"]

    again = run_collection(db, settings, FixedClock(NOW), SequentialIds("NEXT"))
    assert not again.failures
    assert_exactly_once(db, settings.outbox_dir, 10)
