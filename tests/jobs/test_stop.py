"""should_stop in the schedule and inbox jobs: the unit in progress finishes, the rest waits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from sepa_engine.banksim import simulate
from sepa_engine.config import Settings
from sepa_engine.db.models import ScheduleSlot
from sepa_engine.jobs.accounts import run_schedule
from sepa_engine.jobs.returns_inbox import import_inbox
from tests import accounts_world as world
from tests.services.test_reconciliation import LATER, collect

WINDOW = dt.date(2026, 11, 23)  # December's pre-notification window of a debit on the 7th opens


def _slots(db) -> int:
    with db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(ScheduleSlot)))


def test_a_stop_between_creditors_leaves_the_next_creditor_to_the_next_schedule_run(db):
    for n, code in enumerate(("pressimmo", "belles-demeures"), start=1):
        world.creditor(db, code)
        world.account(db, code, f"AG-{n}")
        world.entry(db, f"F{n}", "100.00", creditor_code=code, reference=f"AG-{n}")
        world.go_automatic(db, code, f"AG-{n}", day=7, key=f"mode-{n}", evidence=f"ev-{n}")

    first = run_schedule(db, world.clock(), WINDOW, should_stop=lambda: _slots(db) >= 1)

    assert [(i.creditor_code, i.outcome) for i in first.items] == [("pressimmo", "requested")]
    assert _slots(db) == 1
    rest = run_schedule(db, world.clock(), WINDOW)
    assert [(i.creditor_code, i.outcome) for i in rest.items] == [("belles-demeures", "requested")]


def test_a_stop_between_inbox_files_leaves_the_unread_ones_in_the_inbox(db, database_url, tmp_path: Path):
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    inbox = tmp_path / "inbox"
    simulate(collect(db, settings), inbox, 0.3, 0.3, seed=1)

    report = import_inbox(db, inbox, LATER, should_stop=lambda: (inbox / "processed").is_dir())

    assert report.interrupted and len(report.processed) == 1
    assert [p.name for p in (inbox / "processed").iterdir()] == ["RUN000001-camt054.xml"]
    assert [p.name for p in inbox.iterdir() if p.is_file()] == ["RUN000001-pain002.xml"]
    rest = import_inbox(db, inbox, LATER)
    assert not rest.interrupted and [r.path.name for r in rest.processed] == ["RUN000001-pain002.xml"]
