from __future__ import annotations

from pathlib import Path

from sepa_engine.banksim import simulate
from sepa_engine.config import Settings
from sepa_engine.jobs.returns_inbox import import_inbox
from tests.services.test_reconciliation import LATER, collect


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
