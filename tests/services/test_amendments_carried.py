"""Amendments carried until settled (issue 14 item 4): SMNDA, OrgnlMndtId and OrgnlCdtrSchmeId
go with every collection until one that carries them is settled."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from sepa_engine.clock import FixedClock
from sepa_engine.db.models import DebitRequest, Mandate
from sepa_engine.db.returns_models import AppliedReturn
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.services.test_reconciliation import NOW, reconcile
from tests.services.test_reconciliation_chunks import _rejects
from tests.services.test_retries import RETRY_RUN

CI = "FR72ZZZ123456"


def _amended_collection(db, settings, *, old_ci: str = CI) -> tuple[int, DebitRequest, bytes]:
    """A mandate moved to another bank (and, with ``old_ci``, from another creditor
    identifier), collected once: its mandate id, the debit and the file."""
    creditor = ledger.creditor(db)
    old = ledger.mandate(db, creditor, reference="RUM-AMEND", first_collected_on=dt.date(2026, 10, 5),
                         last_collected_on=dt.date(2026, 10, 5), status="superseded", presented_creditor_identifier=old_ci)
    with db.reader() as s:
        account_id = s.get(Mandate, old).debtor_account_id
    new = ledger.mandate(db, creditor, reference="RUM-AMEND", iban="DE02120300000000202051", supersedes_id=old,
                         amendment_pending=True, first_collected_on=dt.date(2026, 10, 5),
                         last_collected_on=dt.date(2026, 10, 5), presented_creditor_identifier=old_ci,
                         debtor_account_id=account_id)
    ledger.request(db, creditor, new, 5_000)
    (outcome,) = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN")).files
    with db.reader() as s:
        (debit,) = s.scalars(select(DebitRequest))
        assert s.get(Mandate, new).amendment_pending is False  # presented with the file
    return new, debit, outcome.path.read_bytes()


def _retry_file(db, settings) -> bytes:
    (outcome,) = run_collection(db, settings, RETRY_RUN, SequentialIds("RETRY")).files
    return outcome.path.read_bytes()


def test_the_retry_of_a_rejected_collection_carries_its_amendment_again(db, settings, tmp_path):
    # Issue 14 item 4: "if that collection is rejected, the retry goes without them".
    mandate_id, debit, first = _amended_collection(db, settings)
    assert b"SMNDA" in first

    reconcile(db, _rejects(tmp_path / "reject.xml", first.split(b"<MsgId>")[1].split(b"<")[0].decode(), [(debit, "AM04")]))

    with db.reader() as s:
        assert s.get(Mandate, mandate_id).amendment_pending is True
        effects = s.scalars(select(AppliedReturn.effects)).one()
    assert "amendment carried again" in effects
    retry = _retry_file(db, settings)
    assert b"<AmdmntInd>true</AmdmntInd>" in retry and b"SMNDA" in retry
    with db.reader() as s:
        assert s.get(Mandate, mandate_id).amendment_pending is False  # presented again


def test_a_changed_creditor_identifier_is_carried_again_after_a_reject(db, settings, tmp_path):
    mandate_id, debit, first = _amended_collection(db, settings, old_ci="DE98ZZZ09999999999")
    assert b"DE98ZZZ09999999999" in first

    reconcile(db, _rejects(tmp_path / "reject.xml", first.split(b"<MsgId>")[1].split(b"<")[0].decode(), [(debit, "AM04")]))

    with db.reader() as s:
        assert s.get(Mandate, mandate_id).presented_creditor_identifier == "DE98ZZZ09999999999"
    retry = _retry_file(db, settings)
    assert b"DE98ZZZ09999999999" in retry and b"SMNDA" in retry


def test_a_collection_rejected_without_amendment_adds_none(db, settings, tmp_path):
    creditor = ledger.creditor(db)
    mandate = ledger.mandate(db, creditor, first_collected_on=dt.date(2026, 10, 5), last_collected_on=dt.date(2026, 10, 5),
                             presented_creditor_identifier=CI)
    ledger.request(db, creditor, mandate, 5_000)
    (outcome,) = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN")).files
    first = outcome.path.read_bytes()
    with db.reader() as s:
        (debit,) = s.scalars(select(DebitRequest))

    reconcile(db, _rejects(tmp_path / "reject.xml", first.split(b"<MsgId>")[1].split(b"<")[0].decode(), [(debit, "AM04")]))

    with db.reader() as s:
        assert s.get(Mandate, mandate).amendment_pending is False
    assert b"AmdmntInd" not in _retry_file(db, settings)
