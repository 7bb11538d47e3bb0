"""MsgId and CreDtTm come from one clock: the file's creation time (issue 14, item 10)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.ids import TimestampIds
from sepa_engine.iso20022.versions import PAIN_008_001_08
from sepa_engine.services.collection import run_collection
from tests import ledger

NS = {"p": PAIN_008_001_08.namespace}
WALL_CLOCK = dt.datetime(2026, 11, 23, 8, 0, 7, tzinfo=dt.timezone.utc)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")


def _header(path: Path) -> tuple[str, str]:
    doc = etree.parse(str(path))
    return doc.findtext(".//p:GrpHdr/p:MsgId", namespaces=NS), doc.findtext(".//p:GrpHdr/p:CreDtTm", namespaces=NS)


def test_msgid_of_a_run_as_of_another_date_carries_the_date_of_its_credttm(db, settings):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), requested_date=dt.date(2026, 11, 26))
    clock = FixedClock(WALL_CLOCK)

    report = run_collection(db, settings, clock, TimestampIds(clock), business_date=dt.date(2026, 11, 25))

    msg_id, created = _header(report.files[0].path)
    assert created == "2026-11-25T00:00:00+01:00"
    # Before the fix the MsgId said 20261123080007: the wall clock, two days before CreDtTm.
    assert msg_id.startswith("SE20261125000000"), msg_id


def test_msgid_of_a_run_now_carries_the_local_creation_time(db, settings):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor))
    clock = FixedClock(WALL_CLOCK)

    report = run_collection(db, settings, clock, TimestampIds(clock))

    msg_id, created = _header(report.files[0].path)
    assert created == "2026-11-23T09:00:07+01:00"
    assert msg_id.startswith("SE20261123090007"), msg_id
