"""The collection run under the creditor's bank profile and the non-EEA rules (issue 14)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Creditor, DebitRequest
from sepa_engine.ids import SequentialIds
from sepa_engine.iso20022.versions import PAIN_008_001_08
from sepa_engine.services import registry
from sepa_engine.services.collection import run_collection
from sepa_engine.services.inputs import AddressInput, CreditorInput
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)  # Monday 09:00 in Paris
NS = {"p": PAIN_008_001_08.namespace}
SWISS_IBAN, SWISS_BIC = "CH9300762011623852957", "UBSWCHZHXXX"
MONACO_IBAN = "MC5811222000010123456789030"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")


def collect(db, settings, now=NOW, prefix="BANK", **kwargs):
    return run_collection(db, settings, FixedClock(now), SequentialIds(prefix), **kwargs)


def request_row(db, request_id: int) -> DebitRequest:
    with db.reader() as s:
        return s.get_one(DebitRequest, request_id)


# --- registration ------------------------------------------------------------------------

CREDITOR = CreditorInput(
    code="pressimmo", name="Pressimmo", creditor_identifier="DE98ZZZ09999999999",
    iban="DE89370400440532013000", address=AddressInput(country="DE", town="Berlin"),
)


def test_a_profile_that_no_longer_takes_001_02_refuses_it_at_registration(db):
    clock = FixedClock(NOW)
    with pytest.raises(errors.ConfigurationError) as caught, db.transaction() as s:
        registry.register_creditor(
            s, CREDITOR.replace(bank_profile="de", pain008_version="pain.008.001.02"),
            idempotency_key="c", clock=clock,
        )
    assert caught.value.field == "pain008_version"
    assert "no longer accepted by bank profile de since 2026-11-15" in str(caught.value)
    with db.reader() as s:
        assert s.scalar(select(Creditor.id)) is None


def test_a_creditor_takes_its_profiles_version_cutoff_and_lead_time_unless_told(db):
    clock = FixedClock(NOW)
    with db.transaction() as s:
        registry.register_creditor(s, CREDITOR.replace(bank_profile="nl"), idempotency_key="a", clock=clock)
        registry.register_creditor(
            s, CREDITOR.replace(code="other", creditor_identifier="NL64ZZZ321096320000", cutoff="11:00", lead_days=2),
            idempotency_key="b", clock=clock,
        )
    with db.reader() as s:
        nl, other = s.scalars(select(Creditor).order_by(Creditor.id)).all()
        assert (nl.bank_profile, nl.pain008_version, nl.cutoff, nl.lead_days) == ("nl", "pain.008.001.08", "12:30", 1)
        assert (other.bank_profile, other.cutoff, other.lead_days) == ("epc", "11:00", 2)


def test_an_unknown_bank_profile_is_refused_at_registration(db):
    # The input model knows the profiles (schemas/creditor.schema.json lists them as an enum).
    with pytest.raises(errors.InvalidFormat) as caught, db.transaction() as s:
        registry.register_creditor(s, CREDITOR.replace(bank_profile="zz"), idempotency_key="c", clock=FixedClock(NOW))
    assert caught.value.field == "bank_profile" and "must be one of de, epc, fr, ie, nl" in caught.value.rule


# --- the run -------------------------------------------------------------------------------

def test_a_german_creditor_never_collects_on_24_december(db, settings):
    creditor = ledger.creditor(db, bank_profile="de")
    epc = ledger.creditor(db, code="epc", creditor_identifier="NL64ZZZ321096320000")
    wanted = dt.date(2026, 12, 24)
    de_request = ledger.request(db, creditor, ledger.mandate(db, creditor), requested_date=wanted)
    epc_request = ledger.request(db, epc, ledger.mandate(db, epc), requested_date=wanted)

    collect(db, settings, now=dt.datetime(2026, 12, 23, 8, 0, tzinfo=dt.timezone.utc))

    assert request_row(db, de_request).collection_date == dt.date(2026, 12, 28)
    assert request_row(db, epc_request).collection_date == wanted


def test_a_creditor_left_on_a_version_its_bank_dropped_gets_no_file_and_a_reason(db, settings):
    creditor = ledger.creditor(db, bank_profile="de", pain008_version="pain.008.001.02")
    request = ledger.request(db, creditor, ledger.mandate(db, creditor))

    report = collect(db, settings)

    assert report.files == [] and len(report.failures) == 1
    assert "creditor martin" in report.failures[0] and "no longer accepted by bank profile de" in report.failures[0]
    assert request_row(db, request).status == "pending"


@pytest.mark.parametrize(
    ("mandate", "code", "words"),
    [
        # CH and MC debtors without BIC were collected (issue 14, finding 2).
        ({"iban": SWISS_IBAN, "debtor_country": "CH", "debtor_town": "Geneve"}, "RC01", "mandate.bic is required for a debtor in CH"),
        ({"iban": MONACO_IBAN, "debtor_country": "MC", "debtor_town": "Monaco"}, "RC01", "mandate.bic is required for a debtor in MC"),
        # PM accounts carry French IBANs: the address tells where the debtor is.
        ({"iban": "FR7630006000011234567890189", "debtor_country": "PM", "debtor_town": "Saint-Pierre"}, "RC01", "debtor in PM"),
        ({"iban": SWISS_IBAN, "bic": SWISS_BIC, "debtor_country": "CH", "debtor_town": ""}, "RR02", "debtor.address is required"),
    ],
)
def test_a_debtor_outside_the_eea_without_bic_or_address_is_refused_with_its_iso_code(db, settings, mandate, code, words):
    creditor = ledger.creditor(db)
    request = ledger.request(db, creditor, ledger.mandate(db, creditor, **mandate))

    report = collect(db, settings)

    row = request_row(db, request)
    assert (row.status, row.reason_code) == ("refused", code)
    assert words in row.reason and "outside the EEA" in row.reason
    assert report.refused == 1 and report.files == []


def test_a_debtor_outside_the_eea_needs_the_creditors_address_too(db, settings):
    creditor = ledger.creditor(db, address_country=None, address_town=None)
    request = ledger.request(db, creditor, ledger.mandate(
        db, creditor, iban=SWISS_IBAN, bic=SWISS_BIC, debtor_country="CH", debtor_town="Geneve",
    ))

    collect(db, settings)

    row = request_row(db, request)
    assert (row.status, row.reason_code) == ("refused", "RR03")
    assert "creditor.address is required" in row.reason


def test_a_swiss_debtor_with_bic_and_address_is_collected_with_a_structured_address(db, settings):
    creditor = ledger.creditor(db)
    request = ledger.request(db, creditor, ledger.mandate(
        db, creditor, iban=SWISS_IBAN, bic=SWISS_BIC, debtor_country="CH", debtor_town="Geneve",
    ))

    report = collect(db, settings)

    assert request_row(db, request).status == "submitted"
    doc = etree.parse(str(report.files[0].path))
    assert doc.findtext(".//p:DbtrAgt/p:FinInstnId/p:BICFI", namespaces=NS) == SWISS_BIC
    assert doc.findtext(".//p:Dbtr/p:PstlAdr/p:TwnNm", namespaces=NS) == "Geneve"
    assert doc.findtext(".//p:Dbtr/p:PstlAdr/p:Ctry", namespaces=NS) == "CH"


def test_a_debtor_outside_the_eea_in_a_001_02_file_after_november_2026_is_refused_with_its_reason(db, settings):
    creditor = ledger.creditor(db, bank_profile="nl", pain008_version="pain.008.001.02")
    swiss = ledger.request(db, creditor, ledger.mandate(
        db, creditor, iban=SWISS_IBAN, bic=SWISS_BIC, debtor_country="CH", debtor_town="Geneve",
    ))
    dutch = ledger.request(db, creditor, ledger.mandate(db, creditor))

    report = collect(db, settings)

    row = request_row(db, swiss)
    assert (row.status, row.reason_code) == ("refused", "RR02")
    assert "pain.008.001.02 file cannot carry it since 2026-11-14" in row.reason
    assert request_row(db, dutch).status == "submitted"
    assert b"<PstlAdr>" not in report.files[0].path.read_bytes()


class Crash(Exception):
    pass


def _crash_after_assign(name: str) -> None:
    if name == "after_assign":
        raise Crash(name)


def test_a_planned_file_that_breaks_its_banks_rules_is_never_published(db, settings):
    # Planned under epc for 24 December, then the creditor is moved to a German bank before
    # the file is written: the written file is checked against the new profile and dropped.
    # Its request goes back to the queue and, as the next run writes what an earlier run
    # planned before it assigns, is collected by that same run on a day the bank processes.
    creditor = ledger.creditor(db)
    request = ledger.request(db, creditor, ledger.mandate(db, creditor), requested_date=dt.date(2026, 12, 24))
    now = dt.datetime(2026, 12, 23, 8, 0, tzinfo=dt.timezone.utc)
    with pytest.raises(Crash):
        collect(db, settings, now=now, checkpoint=_crash_after_assign)
    with db.transaction() as s:
        s.get_one(Creditor, creditor).bank_profile = "de"

    report = collect(db, settings, now=now, prefix="NEXT")

    assert len(report.failures) == 1
    assert "bank_profile" not in report.failures[0] and "2026-12-24 is a day the bank does not process" in report.failures[0]
    assert [p.name for p in settings.outbox_dir.rglob("*.xml")] == ["NEXT000001.xml"]
    assert not list(settings.outbox_dir.rglob("*.tmp"))
    [again] = report.files
    assert again.message_id == "NEXT000001" and again.blocks[0][0] > dt.date(2026, 12, 24)
    assert request_row(db, request).status == "submitted"


def test_the_run_reads_each_written_file_once_checking_its_banks_rules_in_the_writers_read_back(db, settings, monkeypatch):
    # Issue 16: the profile check used to read every written file a second time.
    from sepa_engine.iso20022 import pain008_reader, profile_rules

    def second_read(*_args, **_kwargs):
        raise AssertionError("the written file was read a second time")

    monkeypatch.setattr(pain008_reader, "read_records", second_read)
    monkeypatch.setattr(profile_rules, "check_profile", second_read)
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), requested_date=dt.date(2026, 12, 24))
    now = dt.datetime(2026, 12, 23, 8, 0, tzinfo=dt.timezone.utc)

    report = collect(db, settings, now=now)

    assert report.failures == [] and len(report.files) == 1


# --- ultimate parties ------------------------------------------------------------------------

def test_ultimate_creditor_per_creditor_or_request_and_ultimate_debtor_from_the_mandate_reach_the_file(db, settings):
    from sepa_engine.services.inputs import DebitRequestInput, DebtorAccountInput, MandateInput

    clock = FixedClock(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc))
    with db.transaction() as s:
        registry.register_creditor(s, CREDITOR.replace(
            code="gim", creditor_identifier="FR72ZZZ123456", iban="FR7630006000011234567890189",
            ultimate_creditor_name="SCI Les Tilleuls", ultimate_creditor_id="SIREN552100554",
        ), idempotency_key="c", clock=clock)
        registry.register_debtor_account(s, "gim", DebtorAccountInput(reference="T1", name="Jean Dupont"), idempotency_key="a", clock=clock)
        registry.register_mandate(s, "gim", MandateInput(
            reference="RUM-T1", debtor_account="T1", signed_on=dt.date(2025, 1, 15), iban="DE89370400440532013000",
            ultimate_debtor_name="Jeanne Dupont", ultimate_debtor_id="LOC-0042",
        ), idempotency_key="m", clock=clock)
        own = registry.enqueue_request(s, "gim", DebitRequestInput(
            mandate="RUM-T1", amount="10.00", requested_date=dt.date(2026, 11, 24),
            ultimate_creditor_name="SCI Les Platanes", ultimate_creditor_id="SIREN732829320", on_account=True,
        ), idempotency_key="r1", clock=clock)
        default = registry.enqueue_request(s, "gim", DebitRequestInput(
            mandate="RUM-T1", amount="20.00", requested_date=dt.date(2026, 11, 24), on_account=True,
        ), idempotency_key="r2", clock=clock)
    with pytest.raises(errors.InvalidFormat) as caught, db.transaction() as s:
        registry.enqueue_request(s, "gim", DebitRequestInput(mandate="RUM-T1", amount="1.00", ultimate_creditor_id="X1"),
                                 idempotency_key="r3", clock=clock)
    assert caught.value.field == "ultimate_creditor_id"

    report = collect(db, settings)

    doc = etree.parse(str(report.files[0].path))
    by_e2e = {
        tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS): tx
        for tx in doc.iterfind(".//p:DrctDbtTxInf", namespaces=NS)
    }
    mine, theirs = by_e2e[own.end_to_end_id], by_e2e[default.end_to_end_id]
    assert mine.findtext("p:UltmtCdtr/p:Nm", namespaces=NS) == "SCI Les Platanes"
    assert mine.findtext("p:UltmtCdtr/p:Id/p:OrgId/p:Othr/p:Id", namespaces=NS) == "SIREN732829320"
    assert theirs.findtext("p:UltmtCdtr/p:Nm", namespaces=NS) == "SCI Les Tilleuls"
    for tx in (mine, theirs):
        assert tx.findtext("p:UltmtDbtr/p:Nm", namespaces=NS) == "Jeanne Dupont"
        assert tx.findtext("p:UltmtDbtr/p:Id/p:OrgId/p:Othr/p:Id", namespaces=NS) == "LOC-0042"
    summary = report.files[0].path.with_name(report.files[0].path.stem + ".summary.txt").read_text()
    assert "bank profile       epc" in summary
    assert "ultimate creditor  SCI Les Tilleuls, identifier SIREN552100554 (unless a debit names its own)" in summary
    assert "SCI Les Platanes, identifier SIREN732829320: 1 debit(s)" in summary


def test_a_swiss_mandate_without_bic_is_stored_with_the_problem_the_run_refuses_it_for(db):
    from sepa_engine.services.inputs import DebtorAccountInput, MandateInput

    clock = FixedClock(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc))
    with db.transaction() as s:
        registry.register_creditor(s, CREDITOR, idempotency_key="c", clock=clock)
        registry.register_debtor_account(s, "pressimmo", DebtorAccountInput(
            reference="CH-1", name="Anna Keller", address=AddressInput(country="CH", town="Zurich"),
        ), idempotency_key="a", clock=clock)
        result = registry.register_mandate(s, "pressimmo", MandateInput(
            reference="RUM-CH-1", debtor_account="CH-1", signed_on=dt.date(2025, 1, 15), iban=SWISS_IBAN,
        ), idempotency_key="m", clock=clock)
    assert [(p["field"], p["reason_code"]) for p in result.problems] == [("bic", "RC01")]
    assert "required for a debtor in CH, outside the EEA" in result.problems[0]["message"]
