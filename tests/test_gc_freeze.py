"""The collector is kept off long-lived objects for a run, and given them back after it."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.gc_freeze import long_lived_frozen
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def thawed() -> Iterator[None]:
    """Each test starts with nothing frozen (another test of this worker may have frozen the
    heap, as the API server does); whatever it was is restored afterwards."""
    was_frozen = gc.get_freeze_count() > 0
    gc.unfreeze()
    yield
    gc.unfreeze()
    if was_frozen:
        gc.freeze()


def test_objects_alive_before_the_block_are_frozen_in_it_and_released_after(thawed):
    alive = [{"kept": i} for i in range(100)]
    with long_lived_frozen():
        assert gc.get_freeze_count() >= len(alive)
    assert gc.get_freeze_count() == 0


def test_a_block_that_raises_still_releases_what_it_froze(thawed):
    with pytest.raises(RuntimeError), long_lived_frozen():
        raise RuntimeError("the run failed")
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_its_heap_itself_keeps_it_frozen(thawed):
    gc.freeze()
    frozen_by_the_process = gc.get_freeze_count()
    with long_lived_frozen():
        pass
    assert gc.get_freeze_count() >= frozen_by_the_process > 0


def test_a_collection_run_freezes_the_heap_while_it_runs_and_not_after(thawed, db, tmp_path: Path, database_url: str):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor))
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    seen: dict[str, int] = {}

    def look(name: str) -> None:
        seen[name] = gc.get_freeze_count()

    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("GC"), checkpoint=look)

    assert len(report.files) == 1
    assert seen["after_assign"] > 0 and seen["after_publish"] > 0
    assert gc.get_freeze_count() == 0
