from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch, DebitRequest, Mandate
from sepa_engine.ids import SequentialIds
from sepa_engine.iso20022.versions import PAIN_008_001_08, load_schema
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)  # Monday 09:00 in Paris
NS = {"p": PAIN_008_001_08.namespace}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", chunk_size=7)


def collect(db, settings, **kwargs):
    return run_collection(db, settings, FixedClock(NOW), SequentialIds(kwargs.pop("prefix", "RUN")), **kwargs)


def statuses(db) -> dict[str, int]:
    with db.reader() as s:
        found: dict[str, int] = {}
        for status in s.scalars(select(DebitRequest.status)):
            found[status] = found.get(status, 0) + 1
        return found


def test_due_requests_end_up_in_a_published_valid_file(db, settings):
    creditor = ledger.creditor(db)
    m = ledger.mandate(db, creditor)
    ledger.request(db, creditor, m, 12_345)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 10)

    report = collect(db, settings)

    assert report.assigned == 2 and report.refused == 0
    (outcome,) = report.files
    assert outcome.path.exists()
    assert stat.S_IMODE(outcome.path.stat().st_mode) == 0o600
    doc = etree.parse(str(outcome.path))
    assert load_schema(PAIN_008_001_08.xsd_name).validate(doc)
    assert doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "123.55"
    assert doc.findtext(".//p:PmtInf/p:ReqdColltnDt", namespaces=NS) == "2026-11-24"
    assert doc.findtext(".//p:PmtInf/p:PmtTpInf/p:SeqTp", namespaces=NS) == "FRST"
    assert statuses(db) == {"submitted": 2}
    summary = outcome.path.with_name(outcome.path.stem + ".summary.txt")
    assert "control sum        123.55 EUR" in summary.read_text()


def test_second_run_collects_nothing_twice(db, settings):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor))
    first = collect(db, settings)
    second = collect(db, settings, prefix="SECOND")
    assert len(first.files) == 1
    assert second.nothing_to_do and second.files == []
    assert len(list(settings.outbox_dir.rglob("*.xml"))) == 1


def test_refused_requests_never_enter_a_file_and_keep_their_reason(db, settings):
    creditor = ledger.creditor(db)
    good = ledger.request(db, creditor, ledger.mandate(db, creditor), 5_000)
    bad_iban = ledger.request(db, creditor, ledger.mandate(db, creditor, iban="DE89370400440532013001"), 5_000)
    revoked = ledger.request(db, creditor, ledger.mandate(db, creditor, status="revoked"), 5_000)
    zero = ledger.request(db, creditor, ledger.mandate(db, creditor), 0)

    report = collect(db, settings)

    assert (report.assigned, report.refused) == (1, 3)
    with db.reader() as s:
        rows = {r.id: r for r in s.scalars(select(DebitRequest))}
    assert rows[good].status == "submitted"
    assert (rows[bad_iban].status, rows[bad_iban].reason_code) == ("refused", "AC01")
    assert (rows[revoked].status, rows[revoked].reason_code) == ("refused", "MD01")
    assert (rows[zero].status, rows[zero].reason_code) == ("refused", "AM01")
    assert "DE89370400440532013001" not in rows[bad_iban].reason  # masked
    text = report.files[0].path.read_bytes()
    for refused in (bad_iban, revoked, zero):
        assert rows[refused].end_to_end_id.encode() not in text


def test_a_refused_request_names_its_run_and_a_collected_one_its_batch_whose_run_it_is(db, settings):
    # The assignment does not set run_id: on PostgreSQL that cost a foreign-key check per
    # collected request, for a value its batch already holds.
    creditor = ledger.creditor(db)
    good = ledger.request(db, creditor, ledger.mandate(db, creditor), 5_000)
    zero = ledger.request(db, creditor, ledger.mandate(db, creditor), 0)

    report = collect(db, settings)

    with db.reader() as s:
        rows = {r.id: r for r in s.scalars(select(DebitRequest))}
        batch_run = s.scalar(select(Batch.run_id).where(Batch.id == rows[good].batch_id))
    assert (rows[zero].status, rows[zero].run_id) == ("refused", report.run_id)
    assert (rows[good].status, rows[good].run_id, batch_run) == ("submitted", None, report.run_id)


def test_second_request_on_a_new_mandate_in_the_same_run_is_recurrent(db, settings):
    creditor = ledger.creditor(db)
    m = ledger.mandate(db, creditor)
    ledger.request(db, creditor, m, 100)
    ledger.request(db, creditor, m, 200)
    report = collect(db, settings)
    blocks = sorted((b[1], b[2]) for b in report.files[0].blocks)
    assert blocks == [("FRST", 1), ("RCUR", 1)]
    with db.reader() as s:
        mandate = s.get(Mandate, m)
    assert mandate.first_collected_on == dt.date(2026, 11, 24)


class Crash(Exception):
    pass


def _crash_after_assign(name: str) -> None:
    if name == "after_assign":
        raise Crash(name)


def _sequence_types(path: Path) -> list[str]:
    return etree.parse(str(path)).xpath("//p:PmtTpInf/p:SeqTp/text()", namespaces=NS)


def _amended_mandate(db, creditor: int) -> int:
    """A mandate collected before, replaced by one with an IBAN at another bank: its next debit
    carries the amendment."""
    old = ledger.mandate(db, creditor, reference="RUM-AMEND", first_collected_on=dt.date(2026, 10, 5),
                         last_collected_on=dt.date(2026, 10, 5), status="superseded",
                         presented_creditor_identifier="FR72ZZZ123456")
    with db.reader() as s:
        account_id = s.get(Mandate, old).debtor_account_id
    return ledger.mandate(db, creditor, reference="RUM-AMEND", iban="DE02120300000000202051", supersedes_id=old,
                          amendment_pending=True, first_collected_on=dt.date(2026, 10, 5),
                          last_collected_on=dt.date(2026, 10, 5), presented_creditor_identifier="FR72ZZZ123456",
                          debtor_account_id=account_id)


def _a_file_left_planned_then_a_new_request(db, settings, creditor: int) -> int:
    """A run crashed after planning a mandate's first debit (100); a second one (200) was
    enqueued since. Returns the mandate."""
    m = ledger.mandate(db, creditor)
    ledger.request(db, creditor, m, 100)
    with pytest.raises(Crash):
        collect(db, settings, prefix="CRASH", checkpoint=_crash_after_assign)
    ledger.request(db, creditor, m, 200)
    return m


def test_a_new_request_on_a_mandate_whose_first_debit_a_crashed_run_left_planned_is_recurrent(db, settings):
    # Regression: the next run assigned the new request before writing the planned file, when
    # the mandate's history had not moved yet, and sent the bank two FRST debits of one mandate.
    _a_file_left_planned_then_a_new_request(db, settings, ledger.creditor(db))

    report = collect(db, settings)

    assert [_sequence_types(f.path) for f in report.files] == [["FRST"], ["RCUR"]]
    assert [f.message_id for f in report.files] == ["CRASH000001", "RUN000001"]


def test_a_run_stopped_before_writing_a_planned_file_amends_the_mandate_once(db, settings):
    # The first run plans a debit carrying the mandate's amendment, then stops between files;
    # a request enqueued meanwhile goes after that file, without the amendment again.
    creditor = ledger.creditor(db)
    new = _amended_mandate(db, creditor)
    ledger.request(db, creditor, new, 100)
    assigned: list[str] = []
    stopped = collect(db, settings, prefix="STOP", checkpoint=assigned.append, should_stop=lambda: "after_assign" in assigned)
    assert stopped.interrupted and stopped.files == []
    ledger.request(db, creditor, new, 200)

    report = collect(db, settings)

    amended = [b"<AmdmntInd>true</AmdmntInd>" in f.path.read_bytes() for f in report.files]
    assert amended == [True, False]


def test_a_dry_run_after_a_crash_plans_the_left_file_first_and_the_new_request_as_recurrent(db, settings):
    # Regression: the dry run assessed the new request before the file an earlier run left
    # planned, as if that file would never reach the bank: it planned a second FRST (the
    # real run, which writes the left file first, sends RCUR) and did not show that file.
    m = _a_file_left_planned_then_a_new_request(db, settings, ledger.creditor(db))

    plan = collect(db, settings, dry_run=True)

    assert [(f.count, f.sum_cents, [b[1] for b in f.blocks], f.left_by_earlier_run) for f in plan.plan] == [
        (1, 100, ["FRST"], True), (1, 200, ["RCUR"], False),
    ]
    assert plan.assigned == 1
    assert statuses(db) == {"assigned": 1, "pending": 1}
    with db.reader() as s:
        assert [(b.status, b.published_at) for b in s.scalars(select(Batch))] == [("planned", None)]
        assert s.get(Mandate, m).first_collected_on is None
    real = collect(db, settings)
    assert [(f.count, _sequence_types(f.path)) for f in real.files] == [(1, ["FRST"]), (1, ["RCUR"])]


def test_a_dry_run_shows_a_left_file_of_an_approval_creditor_held_and_its_mandates_next_debit_waiting(db, settings):
    _a_file_left_planned_then_a_new_request(db, settings, ledger.creditor(db, requires_approval=True))

    plan = collect(db, settings, dry_run=True)

    assert [(f.count, f.awaiting_approval, f.left_by_earlier_run) for f in plan.plan] == [(1, True, True)]
    assert plan.assigned == 0
    real = collect(db, settings)
    assert [(f.count, f.awaiting_approval) for f in real.files] == [(1, True)] and real.assigned == 0


def test_request_not_yet_due_waits(db, settings):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), requested_date=dt.date(2026, 12, 10))
    report = collect(db, settings)
    assert report.nothing_to_do
    assert statuses(db) == {"pending": 1}


def test_files_split_at_the_creditors_maximum(db, settings):
    creditor = ledger.creditor(db, max_per_file=4)
    ledger.many_requests(db, creditor, 10)
    report = collect(db, settings)
    assert sorted(f.count for f in report.files) == [2, 4, 4]
    assert statuses(db) == {"submitted": 10}


def test_dry_run_changes_nothing_and_reports_what_would_happen(db, settings):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor))
    ledger.request(db, creditor, ledger.mandate(db, creditor), 0)
    report = collect(db, settings, dry_run=True)
    assert (report.assigned, report.refused) == (1, 1)
    assert report.refusals[0][2] == "AM01"
    assert statuses(db) == {"pending": 2}
    assert not settings.outbox_dir.exists() or not list(settings.outbox_dir.rglob("*.xml"))


def test_pain_008_001_02_creditor_gets_a_001_02_file(db, settings):
    creditor = ledger.creditor(db, pain008_version="pain.008.001.02")
    ledger.request(db, creditor, ledger.mandate(db, creditor, bic="COBADEFFXXX"))
    report = collect(db, settings)
    data = report.files[0].path.read_bytes()
    assert b"urn:iso:std:iso:20022:tech:xsd:pain.008.001.02" in data
    assert b"<BIC>COBADEFFXXX</BIC>" in data


def test_superseded_mandate_with_new_iban_carries_the_amendment(db, settings):
    creditor = ledger.creditor(db)
    new = _amended_mandate(db, creditor)
    ledger.request(db, creditor, new)
    report = collect(db, settings)
    data = report.files[0].path.read_bytes()
    assert b"<SeqTp>RCUR</SeqTp>" in data
    # Commerzbank 370400 44 -> DKB 120300 00: another bank, so SMNDA rather than the old IBAN.
    assert b"<AmdmntInd>true</AmdmntInd>" in data and b"SMNDA" in data
    with db.reader() as s:
        assert s.get(Mandate, new).amendment_pending is False


def test_mandate_replaced_before_its_first_collection_goes_as_a_plain_first(db, settings):
    creditor = ledger.creditor(db)
    old = ledger.mandate(db, creditor, reference="RUM-NEVER-USED", status="superseded")
    with db.reader() as s:
        account_id = s.get(Mandate, old).debtor_account_id
    new = ledger.mandate(db, creditor, reference="RUM-NEW", iban="DE02120300000000202051", supersedes_id=old,
                         amendment_pending=True, debtor_account_id=account_id)
    ledger.request(db, creditor, new)
    data = collect(db, settings).files[0].path.read_bytes()
    assert b"<SeqTp>FRST</SeqTp>" in data
    assert b"AmdmntInd" not in data


def test_a_request_changed_under_the_run_rolls_its_creditors_assignment_back(db, settings, monkeypatch):
    # Planning moves the decided requests block by block, only those still pending; one
    # cancelled between assignment and planning would leave a file whose recorded totals
    # count a debit it does not hold. The run must refuse the whole assignment instead.
    from sepa_engine import errors
    from sepa_engine.db.repositories import collection as repo

    creditor = ledger.creditor(db)
    requests = [ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000 + n) for n in range(3)]
    seal = repo.seal_decisions

    def cancel_one_then_seal(session):
        session.execute(
            DebitRequest.__table__.update().where(DebitRequest.id == requests[1]).values(status="cancelled")
        )
        seal(session)

    monkeypatch.setattr(repo, "seal_decisions", cancel_one_then_seal)
    with pytest.raises(errors.CollectionError, match="1 of 3 assigned requests changed during the run"):
        collect(db, settings)

    assert statuses(db) == {"pending": 3}
    assert not list(settings.outbox_dir.rglob("*.xml"))
    monkeypatch.undo()
    report = collect(db, settings, prefix="AGAIN")
    assert report.assigned == 3 and sum(f.count for f in report.files) == 3
