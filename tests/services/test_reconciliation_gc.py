"""While a file is applied the cyclic collector is eased (sepa_engine/gc_tuning.py, whose own
tests cover threads and a process's own settings); the process gets its thresholds back
however the file ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sepa_engine import errors, gc_tuning
from sepa_engine.services import reconciliation
from tests.services.test_reconciliation import LATER, collect, requests
from tests.services.test_reconciliation_chunks import _message_id, _rejects

OWN = (321, 7, 9)


@pytest.fixture
def own_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*OWN)
    yield
    gc.set_threshold(*before)


def test_thresholds_are_raised_while_a_file_is_applied_and_the_processs_own_afterwards(db, settings, tmp_path, own_thresholds, monkeypatch):
    collect(db, settings, requests=2)
    debits = sorted(requests(db).values(), key=lambda r: r.id)
    seen: list[tuple[int, int, int]] = []
    handle_chunk = reconciliation._Run.handle_chunk

    def watched(self, records):
        seen.append(gc.get_threshold())
        handle_chunk(self, records)

    monkeypatch.setattr(reconciliation._Run, "handle_chunk", watched)
    path = _rejects(tmp_path / "r.xml", _message_id(db), [(d, "AM04") for d in debits])
    with db.transaction() as s:
        report = reconciliation.reconcile_file(s, path, clock=LATER)

    assert report.applied == 2
    assert seen == [(gc_tuning.YOUNG_THRESHOLD, 7, 9)]
    assert gc.get_threshold() == OWN


def test_a_refused_file_leaves_the_processs_own_thresholds(db, tmp_path, own_thresholds):
    path = tmp_path / "not-a-bank-answer.xml"
    path.write_text('<?xml version="1.0"?><Document xmlns="urn:example:not-iso"><X/></Document>')
    with pytest.raises(errors.SepaEngineError):
        with db.transaction() as s:
            reconciliation.reconcile_file(s, path, clock=LATER)
    assert gc.get_threshold() == OWN
