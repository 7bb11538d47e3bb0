"""requires_approval in creditors.json: the setting behind outbox/pending and batch approve."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from sepa_engine.clock import FixedClock
from sepa_engine.db.models import Creditor
from sepa_engine.services import loading
from tests import records

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc)


def _load(db, tmp_path, creditor: dict) -> None:
    directory = records.write_directory(tmp_path / "in", {"creditors": [creditor]})
    with db.transaction() as s:
        loading.load_directory(s, directory, clock=FixedClock(NOW))


def _flag(db) -> bool:
    with db.reader() as s:
        return s.scalars(select(Creditor.requires_approval)).one()


def test_creditors_do_not_require_approval_unless_configured(db, tmp_path):
    _load(db, tmp_path, records.creditor())
    assert _flag(db) is False


def test_creditor_loaded_with_requires_approval_keeps_it(db, tmp_path):
    _load(db, tmp_path, records.creditor() | {"requires_approval": True})
    assert _flag(db) is True


def test_requires_approval_must_be_a_boolean(db, tmp_path):
    with pytest.raises(loading.LoadFailed) as caught:
        _load(db, tmp_path, records.creditor() | {"requires_approval": "yes"})
    (error,) = [str(e) for e in caught.value.load_errors]
    assert error.startswith("creditors.json[0].requires_approval")


def test_pending_is_not_a_creditor_code(db, tmp_path):
    with pytest.raises(loading.LoadFailed) as caught:
        _load(db, tmp_path, records.creditor() | {"code": "pending"})
    (error,) = [str(e) for e in caught.value.load_errors]
    assert "creditors.json[0].code: 'pending' is reserved" in error
