"""Approval re-checks the collection date (issue 14, item 6): a file approved too late to
meet its date is never released; its debits go out in a new file with a new MsgId."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch, DebitRequest, Mandate
from sepa_engine.ids import SequentialIds
from sepa_engine.iso20022.versions import PAIN_008_001_08
from sepa_engine.services.approval import CollectionDateUnreachable, NotAwaitingApproval, approve_batch
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)  # Monday 09:00 Paris: D = Tuesday 24th
SAME_DAY = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)
# Tuesday 24th, 10:00 Paris: a file sent now counts for Wednesday 25th at the earliest.
DAY_LATE = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone.utc)
NS = {"p": PAIN_008_001_08.namespace}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")


@pytest.fixture
def held(db, settings):
    creditor = ledger.creditor(db, requires_approval=True)
    mandate = ledger.mandate(db, creditor)
    ledger.request(db, creditor, mandate, 12_000)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 3_000)
    (outcome,) = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN")).files
    return outcome, mandate


def approve(db, settings, batch_id, at, prefix="REDATE"):
    return approve_batch(db, settings, FixedClock(at), batch_id, actor="marie", ids=SequentialIds(prefix))


def _batches(db) -> list[tuple[int, str, str]]:
    with db.reader() as s:
        return [(b.id, b.message_id, b.status) for b in s.scalars(select(Batch).order_by(Batch.id))]


def _requests(db) -> list[tuple[str, int | None, dt.date | None]]:
    with db.reader() as s:
        return [(r.status, r.batch_id, r.collection_date) for r in s.scalars(select(DebitRequest).order_by(DebitRequest.id))]


def test_a_file_approved_a_day_late_is_redated_into_a_new_file_and_never_released(db, settings, held):
    outcome, mandate = held

    with pytest.raises(CollectionDateUnreachable) as caught:
        approve(db, settings, outcome.batch_id, DAY_LATE)

    message = str(caught.value)
    assert "2026-11-24" in message and "can no longer be met" in message and "2026-11-25" in message
    (old_id, old_msg, old_status), (new_id, new_msg, new_status) = _batches(db)
    assert (old_id, old_status) == (outcome.batch_id, "superseded")
    assert (new_status, new_msg) == ("awaiting_approval", "REDATE000001") and new_msg != old_msg
    assert f"batch {new_id} (REDATE000001), awaiting approval" in message
    assert _requests(db) == [("assigned", new_id, dt.date(2026, 11, 25))] * 2
    # The old file is kept for audit, outside any folder the bank reads; nothing was released.
    kept = settings.outbox_dir / "pending" / "martin" / "superseded" / outcome.path.name
    assert kept.is_file() and not outcome.path.exists()
    assert not (settings.outbox_dir / "martin").exists()
    with db.reader() as s:
        assert s.get(Mandate, mandate).first_collected_on is None

    # The superseded file can never be approved; the new one goes out with its new date.
    with pytest.raises(NotAwaitingApproval):
        approve(db, settings, old_id, DAY_LATE)
    approval = approve(db, settings, new_id, DAY_LATE)
    doc = etree.parse(str(approval.path))
    assert doc.findtext(".//p:GrpHdr/p:MsgId", namespaces=NS) == "REDATE000001"
    assert {d.text for d in doc.iterfind(".//p:ReqdColltnDt", namespaces=NS)} == {"2026-11-25"}
    assert _requests(db) == [("submitted", new_id, dt.date(2026, 11, 25))] * 2
    assert sorted(p.name for p in (settings.outbox_dir / "martin").glob("*.xml")) == [approval.path.name]


def test_a_file_approved_in_time_keeps_its_date_and_msgid(db, settings, held):
    outcome, _ = held
    approval = approve(db, settings, outcome.batch_id, SAME_DAY)
    assert approval.message_id == outcome.message_id
    assert [status for _id, _msg, status in _batches(db)] == ["published"]


def test_approval_after_the_cutoff_of_the_day_before_is_also_too_late(db, settings, held):
    # 16:30 Paris on Monday, after the 16:00 cut-off: the file counts as sent on Tuesday.
    outcome, _ = held
    with pytest.raises(CollectionDateUnreachable):
        approve(db, settings, outcome.batch_id, dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.timezone.utc))
    assert [status for _id, _msg, status in _batches(db)] == ["superseded", "awaiting_approval"]
