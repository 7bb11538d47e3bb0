"""A long run eases the cyclic collector (sepa_engine/gc_tuning.py) and gives the process its
own settings back afterwards, however the run ends and whichever thread ends last."""

from __future__ import annotations

import datetime as dt
import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sepa_engine import gc_tuning
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
OWN = (321, 7, 9)


@pytest.fixture
def own_settings() -> Iterator[None]:
    """Each test starts with the process's own thresholds set to OWN and nothing frozen
    (another test of this worker may have frozen the heap, as the API server does); the
    worker's settings come back afterwards."""
    thresholds, was_frozen = gc.get_threshold(), gc.get_freeze_count() > 0
    gc.set_threshold(*OWN)
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    if was_frozen:
        gc.freeze()


def test_objects_alive_before_the_block_are_frozen_in_it_and_released_after(own_settings):
    alive = [{"kept": i} for i in range(100)]
    with gc_tuning.long_run():
        assert gc.get_freeze_count() >= len(alive)
        assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD, 7, 9)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == OWN


def test_a_block_that_raises_still_gives_back_the_process_settings(own_settings):
    with pytest.raises(RuntimeError), gc_tuning.long_run():
        raise RuntimeError("the run failed")
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == OWN


def test_a_process_that_froze_its_heap_itself_is_not_frozen_again_nor_thawed(own_settings):
    gc.freeze()
    frozen_by_the_process = gc.get_freeze_count()
    garbage = 10_000
    garbage_to_be = [[] for _ in range(garbage)]

    def frozen_again_or_thawed() -> str | None:
        # Bounds, not equality: a frozen object that dies (a temporary another thread of the
        # worker held at the freeze) leaves the permanent generation, so its count may drop by
        # a few (917,882 -> 917,879 in a bare clone's `make test`). Freezing again would add
        # the 10,000 lists; thawing would empty it.
        count = gc.get_freeze_count()
        if count >= frozen_by_the_process + garbage // 2:
            return f"frozen again: {count} frozen, {frozen_by_the_process} before"
        if count <= frozen_by_the_process // 2:
            return f"thawed: {count} frozen, {frozen_by_the_process} before"
        return None

    with gc_tuning.long_run():
        # What the process allocated since its own freeze stays collectable.
        assert frozen_again_or_thawed() is None
    del garbage_to_be
    assert frozen_again_or_thawed() is None


def test_a_higher_threshold_of_the_process_is_kept(own_settings):
    gc.set_threshold(gc_tuning.YOUNG_THRESHOLD * 2, 7, 9)
    with gc_tuning.long_run():
        assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD * 2, 7, 9)
    assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD * 2, 7, 9)


def test_overlapping_runs_in_two_threads_give_the_settings_back_when_the_last_ends(own_settings):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    during: list[tuple[tuple[int, int, int], bool]] = []

    def first() -> None:
        with gc_tuning.long_run():
            first_in.set()
            assert second_in.wait(60)
        first_out.set()

    def second() -> None:
        assert first_in.wait(60)
        with gc_tuning.long_run():
            second_in.set()
            assert first_out.wait(60)
            during.append((gc.get_threshold(), gc.get_freeze_count() > 0))  # the first run has ended

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert during == [((gc_tuning.YOUNG_THRESHOLD, 7, 9), True)]
    assert gc.get_threshold() == OWN
    assert gc.get_freeze_count() == 0


def test_a_collection_run_eases_the_collector_while_it_runs_and_not_after(own_settings, db, tmp_path: Path, database_url: str):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor))
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    seen: dict[str, tuple[int, tuple[int, int, int]]] = {}

    def look(name: str) -> None:
        seen[name] = (gc.get_freeze_count(), gc.get_threshold())

    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("GC"), checkpoint=look)

    assert len(report.files) == 1
    for step in ("after_assign", "after_publish"):
        frozen, thresholds = seen[step]
        assert frozen > 0 and thresholds == (gc_tuning.YOUNG_THRESHOLD, 7, 9)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == OWN
