"""pain.002 status reports: every sample in ../shared is read as a person reads it, plus
the scenarios the samples lack (a whole file rejected, a block rejected, statuses outside
the ISO list, a report about a credit-transfer file)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sepa_engine import errors
from sepa_engine.iso20022 import pain002, returns
from sepa_engine.iso20022.returns import (
    FindingCode,
    Kind,
    ReturnRecord,
    Scope,
    SkipReason,
)
from tests.shared_files import samples_dir

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "pain.002"
GROUP_AM10 = TESTDATA / "pain.002.001.03-group-rjct-am10.xml"
BLOCK_AND_TX = TESTDATA / "pain.002.001.10-block-and-transaction-statuses.xml"
ANSWERS_PAIN001 = TESTDATA / "pain.002.001.10-answers-pain001.xml"

BOI = "oca-accountpayment__boi-sdd-reject-4tx-AC01-MS02-MD06-AM04__test-sepa-pain-unpaid.xml"
SIX_ACTC = "libeufin__six-sps2019-A-level-ACTC-accepted__5_pain002_A-Level_ACTC_Empfangsbestaetigung_FDS_v2019.xml"
SIX_B_LEVEL = "libeufin__six-sps2019-B-and-C-level-RJCT-AC01__3_pain002_B-Level_und_C-Level_RJCT_ISO2019_v2019.xml"
POSTFINANCE_PART = (
    "moov__postfinance-ch02-PART-tx-RJCT-AC01__pain002-epo_p_ch5109000000250092291_1110097605_0_2018031511252307.xml"
)
POSTFINANCE_CHDD = (
    "moov__postfinance-chdd-direct-debit-ACCP-ch02__pain002-chdd-cor1_p_ch2909000000250094239_1110097483_0_2018031317221082.xml"
)




def sample(name: str) -> Path:
    return samples_dir("pain.002") / name


def read_all(path: Path, **options: object) -> tuple[returns.ReadResult, list[ReturnRecord]]:
    result = returns.read(path, **options)  # type: ignore[arg-type]
    records = list(result)
    assert result.done
    return result, records


def codes(result: returns.ReadResult) -> list[str]:
    return [str(finding.code) for finding in result.warnings]


def content_codes(result: returns.ReadResult) -> list[str]:
    # Whether ../shared (and so the XSD) is present must not change what the content says.
    return [code for code in codes(result) if code != "schema_not_checked"]


# --- the samples ----------------------------------------------------------------------------


def test_every_pain002_sample_is_read_to_the_end():
    folder = samples_dir("pain.002")
    paths = sorted(folder.glob("*.xml"))
    assert len(paths) == 5
    for path in paths:
        result, _records = read_all(path)
        assert result.message.startswith("pain.002.")
        assert result.message_id


def test_bank_of_ireland_report_rejects_four_transactions_of_two_blocks():
    result, records = read_all(sample(BOI))
    assert result.message == "pain.002.001.03"
    assert result.message_id == "MSGID99345678912"
    assert result.not_ours is None
    assert result.skipped == 0
    assert [(r.end_to_end_id, r.reason_code, r.mandate_reference, r.payment_info_id) for r in records] == [
        ("E2EID1", "AC01", "MANDATEID1", "PMTINFID1"),
        ("E2EID2", "MS02", "MANDATEID2", "PMTINFID1"),
        ("E2EID3", "MD06", "MANDATEID3", "PMTINFID2"),
        ("E2EID4", "AM04", "MANDATEID4", "PMTINFID2"),
    ]
    for record in records:
        assert record.scope is Scope.TRANSACTION
        assert record.kind is Kind.REJECTED
        assert record.status == "RJCT"
        # "100" without decimals is one hundred euros.
        assert (record.amount_cents, record.currency) == (10000, "EUR")
        assert record.original_message_id == "MSGID12345678912"
        # BOI writes the name upper case; still recognised as a pain.008.
        assert record.original_message_name == "PAIN.008.001.02"
        assert record.creditor_id == "IE03ZZZ123456"
        # A Sunday: incoming files are read whatever the calendar says.
        assert record.requested_collection_date == dt.date(2016, 10, 9)
        assert record.booked is False
    assert records[0].additional_info == "ACC NUMBER INVALID"
    assert records[0].bank_reference == "IDREJ1"
    assert records[0].debtor_name == "DEBTOR1"
    assert [r.location for r in records] == [
        "/Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[1]/TxInfAndSts[1]",
        "/Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[1]/TxInfAndSts[2]",
        "/Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[2]/TxInfAndSts[1]",
        "/Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[2]/TxInfAndSts[2]",
    ]


def test_bank_of_ireland_additional_info_is_a_warning_against_the_german_xsd_not_a_refusal():
    # The pain.002.001.03 XSD in ../shared is the DK subset, which drops StsRsnInf/AddtlInf;
    # ISO allows it and its meaning is clear, so the file is read with one warning.
    result, records = read_all(sample(BOI))
    assert len(records) == 4
    deviations = [f for f in result.warnings if f.code is FindingCode.SCHEMA_VIOLATION]
    assert len(deviations) == 1
    assert "AddtlInf" in deviations[0].message
    assert deviations[0].location == "line 68"


def test_strict_refuses_the_bank_of_ireland_report_for_its_xsd_deviation():
    with pytest.raises(errors.SchemaViolation) as caught:
        list(returns.read(sample(BOI), strict=True))
    assert "AddtlInf" in str(caught.value)
    assert "strict" in str(caught.value)


def test_six_acceptance_of_a_credit_transfer_file_yields_nothing_and_says_why():
    result, records = read_all(sample(SIX_ACTC))
    assert result.message == "pain.002.001.10"
    assert records == []
    assert result.not_ours is not None
    assert "pain.001.001.09.ch.03" in result.not_ours
    assert "MsgId-001" in result.not_ours
    assert result.skipped_by_reason == {SkipReason.NOT_OURS: 1}
    assert content_codes(result) == ["not_ours"]


def test_six_block_reject_of_a_credit_transfer_file_yields_nothing():
    result, records = read_all(sample(SIX_B_LEVEL))
    assert records == []
    assert "pain.001.001.09.ch.03" in (result.not_ours or "")
    # The RJCT AC01 of block PMTINF-02 was seen and skipped, not lost.
    assert result.skipped_by_reason == {SkipReason.NOT_OURS: 1}


def test_postfinance_swiss_ch02_report_on_a_credit_transfer_skips_its_rejected_transaction():
    result, records = read_all(sample(POSTFINANCE_PART))
    assert result.message == "pain.002.001.03.ch.02"
    assert records == []
    assert "pain.001.001.03.ch.02" in (result.not_ours or "")
    # PART makes no record by itself; the one RJCT transaction is counted.
    assert result.skipped == 1
    # There is no XSD for SIX's namespace in ../shared: said, not hidden.
    assert "schema_not_checked" in codes(result)


def test_postfinance_swiss_direct_debit_block_accepted_is_an_acknowledgement_of_our_block():
    result, records = read_all(sample(POSTFINANCE_CHDD))
    assert result.not_ours is None
    assert len(records) == 1
    record = records[0]
    assert (record.scope, record.kind, record.status) == (Scope.PAYMENT_BLOCK, Kind.ACCEPTED, "ACCP")
    assert record.payment_info_id == "PmtInfId-CHDD-1"
    assert record.original_message_id == "MsgId-CHDD-Musterfile"
    assert record.original_message_name == "pain.008.001.02.ch.03"
    assert record.location == "/Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[1]"


# --- scenarios made for the tests -----------------------------------------------------------


def test_group_level_reject_am10_is_one_record_covering_the_whole_file():
    result, records = read_all(GROUP_AM10)
    assert result.warnings == [] or codes(result) == ["schema_not_checked"]
    assert len(records) == 1
    record = records[0]
    assert (record.scope, record.kind, record.reason_code) == (Scope.GROUP, Kind.REJECTED, "AM10")
    assert record.scope.covers_many()
    assert record.kind.is_failure()
    assert record.original_message_id == "SEPA-20261120-0001"
    # The control sum "276" is 276.00; the zero-padded count is 3.
    assert record.amount_cents == 27600
    assert record.currency is None
    assert record.number_of_transactions == 3
    assert record.location == "/Document/CstmrPmtStsRpt/OrgnlGrpInfAndSts"


def test_block_reject_and_each_transaction_status_become_records_of_their_scope():
    result, records = read_all(BLOCK_AND_TX)
    assert [(r.scope, r.kind, r.status) for r in records] == [
        (Scope.PAYMENT_BLOCK, Kind.REJECTED, "RJCT"),
        (Scope.TRANSACTION, Kind.REJECTED, "RJCT"),
        (Scope.TRANSACTION, Kind.ACCEPTED, "ACCP"),
        (Scope.TRANSACTION, Kind.UNKNOWN, "VOPX"),
    ]
    block, rejected, accepted, unknown = records
    assert block.payment_info_id == "BLOCK-1"
    assert block.amount_cents == 15050
    assert block.number_of_transactions == 2
    assert block.reason_code is None
    assert block.proprietary_reason == "B1-CDTR-BIC"
    assert block.additional_info == "creditor agent BIC unknown"
    assert rejected.end_to_end_id == "E2E-3"
    assert rejected.instruction_id == "INSTR-3"
    assert rejected.payment_info_id == "BLOCK-2"
    assert rejected.mandate_reference == "MANDATE-3"
    assert rejected.creditor_id == "DE98ZZZ09999999999"
    assert (rejected.amount_cents, rejected.currency) == (7600, "EUR")
    assert rejected.reason_code == "MD07"
    assert rejected.additional_info == "debtor deceased account frozen by the estate"
    # .001.10 wraps the debtor in Pty.
    assert rejected.debtor_name == "Jeanne Martin"
    assert rejected.bank_reference == "BANK-REJ-3"
    assert accepted.end_to_end_id == "E2E-4"
    assert unknown.end_to_end_id == "E2E-5"
    assert content_codes(result) == ["unknown_status"]
    (unknown_status,) = [w for w in result.warnings if str(w.code) == "unknown_status"]
    assert unknown_status.location.endswith("OrgnlPmtInfAndSts[2]/TxInfAndSts[3]/TxSts")


def test_report_about_a_pain001_yields_no_record_and_says_why():
    result, records = read_all(ANSWERS_PAIN001)
    assert records == []
    assert result.not_ours is not None
    assert "pain.001.001.03" in result.not_ours and "PAYROLL-2026-11" in result.not_ours
    # Two transaction statuses (RJCT and ACCP) were skipped; PART says nothing by itself.
    assert result.skipped_by_reason == {SkipReason.NOT_OURS: 2}
    assert content_codes(result) == ["not_ours"]


PAIN002_03 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"
PAIN002_DK = "urn:iso:std:iso:20022:tech:xsd:pain.002.002.03"


def _report(namespace: str, body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{namespace}"><CstmrPmtStsRpt>'
        "<GrpHdr><MsgId>STS-1</MsgId><CreDtTm>2026-11-23T09:30:00</CreDtTm></GrpHdr>"
        f"{body}</CstmrPmtStsRpt></Document>"
    )


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_german_pain002_002_03_is_read_like_001_03(tmp_path):
    body = (
        "<OrgnlGrpInfAndSts><OrgnlMsgId>SEPA-1</OrgnlMsgId><OrgnlMsgNmId>pain.008.003.02</OrgnlMsgNmId></OrgnlGrpInfAndSts>"
        "<OrgnlPmtInfAndSts><OrgnlPmtInfId>B1</OrgnlPmtInfId><TxInfAndSts><OrgnlEndToEndId>E1</OrgnlEndToEndId>"
        "<TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf>"
        '<OrgnlTxRef><Amt><InstdAmt Ccy="EUR">12.5</InstdAmt></Amt><MndtRltdInf><MndtId>M1</MndtId></MndtRltdInf></OrgnlTxRef>'
        "</TxInfAndSts></OrgnlPmtInfAndSts>"
    )
    result, records = read_all(_write(tmp_path, "dk.xml", _report(PAIN002_DK, body)), xsd_dir=tmp_path)
    assert result.message == "pain.002.002.03"
    assert [(r.end_to_end_id, r.kind, r.reason_code, r.amount_cents, r.mandate_reference) for r in records] == [
        ("E1", Kind.REJECTED, "AC04", 1250, "M1")
    ]


def test_transaction_without_status_takes_its_blocks_reject(tmp_path):
    body = (
        "<OrgnlGrpInfAndSts><OrgnlMsgId>SEPA-1</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.02</OrgnlMsgNmId></OrgnlGrpInfAndSts>"
        "<OrgnlPmtInfAndSts><OrgnlPmtInfId>B1</OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts>"
        "<TxInfAndSts><OrgnlEndToEndId>E1</OrgnlEndToEndId></TxInfAndSts></OrgnlPmtInfAndSts>"
    )
    _result, records = read_all(_write(tmp_path, "inherit.xml", _report(PAIN002_03, body)), xsd_dir=tmp_path)
    assert [(r.scope, r.kind, r.end_to_end_id) for r in records] == [
        (Scope.PAYMENT_BLOCK, Kind.REJECTED, None),
        (Scope.TRANSACTION, Kind.REJECTED, "E1"),
    ]


def test_group_acceptance_is_an_accepted_record_for_the_file_lifecycle(tmp_path):
    body = (
        "<OrgnlGrpInfAndSts><OrgnlMsgId>SEPA-9</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.08</OrgnlMsgNmId>"
        "<GrpSts>ACTC</GrpSts></OrgnlGrpInfAndSts>"
    )
    _result, records = read_all(_write(tmp_path, "actc.xml", _report(PAIN002_03, body)), xsd_dir=tmp_path)
    assert [(r.scope, r.kind, r.original_message_id) for r in records] == [(Scope.GROUP, Kind.ACCEPTED, "SEPA-9")]
    assert not records[0].kind.is_failure()


def test_unreadable_amount_is_reported_with_its_location_and_the_record_kept(tmp_path):
    body = (
        "<OrgnlGrpInfAndSts><OrgnlMsgId>SEPA-1</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.02</OrgnlMsgNmId></OrgnlGrpInfAndSts>"
        "<OrgnlPmtInfAndSts><OrgnlPmtInfId>B1</OrgnlPmtInfId><TxInfAndSts><OrgnlEndToEndId>E1</OrgnlEndToEndId>"
        '<TxSts>RJCT</TxSts><OrgnlTxRef><Amt><InstdAmt Ccy="EUR">12,50</InstdAmt></Amt></OrgnlTxRef></TxInfAndSts>'
        "<TxInfAndSts><OrgnlEndToEndId>E2</OrgnlEndToEndId>"
        '<TxSts>RJCT</TxSts><OrgnlTxRef><Amt><InstdAmt Ccy="EUR">1.005</InstdAmt></Amt></OrgnlTxRef></TxInfAndSts>'
        "</OrgnlPmtInfAndSts>"
    )
    path = _write(tmp_path, "bad-amount.xml", _report(PAIN002_03, body))
    result, records = read_all(path, xsd_dir=tmp_path)
    assert [(r.end_to_end_id, r.amount_cents) for r in records] == [("E1", None), ("E2", None)]
    found = [f for f in result.warnings if f.code is FindingCode.INVALID_AMOUNT]
    assert [f.location for f in found] == [
        "/Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[1]/TxInfAndSts[1]/OrgnlTxRef/Amt/InstdAmt",
        "/Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts[1]/TxInfAndSts[2]/OrgnlTxRef/Amt/InstdAmt",
    ]
    # Without an XSD, strict still refuses what the reader itself found wrong.
    with pytest.raises(errors.SchemaViolation):
        list(returns.read(path, strict=True, xsd_dir=tmp_path))


def test_without_the_xsd_folder_the_file_is_read_with_a_warning_and_strict_does_not_refuse(tmp_path):
    missing = tmp_path / "no-shared"
    result, records = read_all(GROUP_AM10, xsd_dir=missing, strict=True)
    assert len(records) == 1
    assert codes(result) == ["schema_not_checked"]
    assert str(missing) in result.warnings[0].message


def test_unknown_pain002_version_is_refused_naming_it(tmp_path):
    path = _write(tmp_path, "v5.xml", _report("urn:iso:std:iso:20022:tech:xsd:pain.002.001.05", ""))
    with pytest.raises(errors.UnknownMessage) as caught:
        returns.read(path)
    assert "pain.002.001.05" in str(caught.value)


def test_pain002_reader_refuses_a_camt_file(tmp_path):
    path = _write(
        tmp_path, "camt.xml", '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"><BkToCstmrDbtCdtNtfctn/></Document>'
    )
    with pytest.raises(errors.UnknownMessage) as caught:
        pain002.read(path)
    assert "camt.054.001.02" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("pain.008.001.02", True),
        ("PAIN.008.001.02", True),
        ("pain.008.001.02.ch.03", True),
        (" pain.008.003.02 ", True),
        ("pain.001.001.03", False),
        ("pain.001.001.09.ch.03", False),
        ("camt.055.001.05", False),
        (None, False),
    ],
)
def test_original_message_name_decides_whether_a_report_is_about_our_direct_debits(name, ours):
    assert pain002.is_direct_debit_message(name) is ours
