"""camt.052/053/054 booking reports: every sample in ../shared is read as a person reads
it; amounts without decimals, lump sums, unbooked entries, the R-type decision table,
hostile files, and large files read with flat memory."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from pathlib import Path

import pytest

from sepa_engine import errors
from sepa_engine.domain.money import read_cents as parse_cents
from sepa_engine.iso20022 import camt, return_support, returns
from sepa_engine.iso20022.camt import BankCode, classify
from sepa_engine.iso20022.returns import (
    FindingCode,
    Kind,
    ReturnRecord,
    Scope,
    SkipReason,
)
from tests.iso20022 import hostile as attacks
from tests.shared_files import samples_dir

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
RETURN_LUMP_SUM = TESTDATA / "camt.054" / "camt.054.001.08-return-lump-sum-and-transfer.xml"

CAMT052_HBCI = "hbci4java__ruecklastschrift-MS03-with-charges__test-camt-ruecklastschrift.xml"
CAMT053_NL = "oca-bankstatementimport__nl-testbank-sdd-batch-return-AC06__test-camt053.xml"
CAMT053_CHF = "camtparser__swiss-chf-statement-dd-reversal-PRDD-MD06-camt.053.001.04__valid_example_v4.xml"
CAMT053_DK = "libeufin-history__de-dk-style-statement-ct-return-AC01__de.camt.053.001.02.xml"
CAMT053_GLS = "libeufin__gls-bank-ct-return-RRTN-AC01-trimmed-excerpt__gls_camt053.xml"
CAMT053_POSTFINANCE = "libeufin__postfinance-camt.053.001.08-returns-BE01-RR03-trimmed-excerpt__postfinance_camt053.xml"
CAMT054_OCA = "oca-accountpayment__sdd-unpaid-IDDT-UPDD-AC06__test-sepa-camt-unpaid.xml"
CAMT054_SIX = "libeufin__six-sps2019-return-single-booking-RRTN-AC01__10_camt054_Return_Detailavisierung_mit_Einzelbuchung_ISO2019_v2019.xml"
CAMT054_POSTFINANCE_RETURN = (
    "moov__postfinance-return-RRTN-AC01-camt.054.001.04__camt054-returns_p_ch5109000000250092291_1110097606_0_2020112500512470.xml"
)
CAMT054_FINNISH = "moov__finnish-sample-camt.054.001.02-return-AC01__FI_camt_054_sample.xml.xml"
CAMT054_CHDD = (
    "libeufin__postfinance-chdd-collection-credit-IDDT-PMDD-no-returns__"
    "camt054-CHDD_P_CH2909000000250094239_1110097484_0_20220615375204228751067.xml"
)




def sample(message: str, name: str) -> Path:
    return samples_dir(message) / name


def read_all(path: Path, **options: object) -> tuple[returns.ReadResult, list[ReturnRecord]]:
    result = returns.read(path, **options)  # type: ignore[arg-type]
    records = list(result)
    assert result.done
    return result, records


def codes(result: returns.ReadResult) -> list[str]:
    return [str(finding.code) for finding in result.warnings]


# --- the samples ----------------------------------------------------------------------------


@pytest.mark.parametrize("message", ["camt.052", "camt.053", "camt.054"])
def test_every_camt_sample_is_read_to_the_end(message):
    paths = sorted(samples_dir(message).glob("*.xml"))
    assert paths
    for path in paths:
        result, records = read_all(path)
        assert result.message.startswith(message + ".001.")
        # Every booking reported is either a record or counted as skipped.
        assert records or result.skipped


def test_german_ruecklastschrift_without_bank_code_is_a_return_with_its_fee_apart():
    result, records = read_all(sample("camt.052", CAMT052_HBCI))
    assert result.message == "camt.052.001.02"
    assert result.skipped == 0
    assert len(records) == 1
    record = records[0]
    # Empty BkTxCd and no RvslInd: the mandate reference and RtrInf say what it is.
    assert (record.scope, record.kind, record.reason_code) == (Scope.TRANSACTION, Kind.RETURNED, "MS03")
    assert record.mandate_reference == "TEST1234"
    assert record.end_to_end_id is None
    # 53.00 booked = 50.00 instructed + 3.00 and 0.00 of charges.
    assert (record.amount_cents, record.currency) == (5000, "EUR")
    assert record.fees_cents == 300
    assert record.entry_amount_cents == 5300
    assert record.credit_debit == "DBIT"
    assert record.reversal_indicator is None
    assert record.booking_date == dt.date(2021, 3, 26)
    assert record.booked is True
    assert record.bank_transaction_code is None
    assert record.additional_info == "RUECKLASTSCHRIFT Sonstige Gruende"


def test_german_ruecklastschrift_breaks_its_xsd_in_ways_that_leave_the_meaning_clear():
    result, records = read_all(sample("camt.052", CAMT052_HBCI))
    assert len(records) == 1
    deviations = [f for f in result.warnings if f.code is FindingCode.SCHEMA_VIOLATION]
    messages = " ".join(f.message for f in deviations)
    assert "TEST12345" in messages  # a BIC that fails the pattern
    assert "minimum length" in messages  # the empty Prtry/Cd
    assert all(f.location and f.location.startswith("line ") for f in deviations)
    with pytest.raises(errors.SchemaViolation):
        list(returns.read(sample("camt.052", CAMT052_HBCI), strict=True))


def test_dutch_statement_batch_return_gives_two_returned_collections():
    result, records = read_all(sample("camt.053", CAMT053_NL))
    assert result.message == "camt.053.001.02"
    assert result.message_id == "TESTBANK/NL/1420561226673"
    # The insurance debit taken from this account (RDDT/ESDD) and the incoming SCT are not ours.
    assert result.skipped_by_reason == {SkipReason.DIRECT_DEBIT_PAID: 1, SkipReason.CREDIT_TRANSFER: 1}
    assert [(r.end_to_end_id, r.mandate_reference, r.amount_cents, r.reason_code) for r in records] == [
        ("TESTBANK/NL/20141229/01206408", "NL22ZZZ524885430000-C0125.1", 56405, "AC06"),
        ("TESTBANK/NL/20141229/01206407", "NL22ZZZ524885430000-C0125.2", 10000, "AC06"),
    ]
    for record in records:
        assert (record.scope, record.kind) == (Scope.TRANSACTION, Kind.RETURNED)
        assert record.original_message_id == "2014/125"
        assert record.payment_info_id == "2018/125-20141229-NORM"
        assert record.bank_transaction_code == "PMNT/IDDT/UPDD"
        assert record.reversal_indicator is True
        assert record.entry_amount_cents == 66405
        assert record.booking_date == dt.date(2014, 1, 5)
        assert record.account_iban == "NL77ABNA0574908765"
        assert "Rek.nummer blokkade" in (record.additional_info or "")
    assert records[0].location == "/Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/NtryDtls[1]/TxDtls[1]"
    assert not [f for f in result.warnings if f.code is FindingCode.SCHEMA_VIOLATION]


def test_swiss_chf_statement_gives_three_settled_collections_and_two_md06_refunds():
    result, records = read_all(sample("camt.053", CAMT053_CHF))
    assert result.message == "camt.053.001.04"
    # 32 transactions: charges, cash and card credits, credit transfers and their returns
    # are skipped, the five direct debits are read.
    assert result.skipped == 27
    assert result.skipped_by_reason == {SkipReason.CREDIT_TRANSFER: 18, SkipReason.NOT_DIRECT_DEBIT: 9}
    assert [(r.kind, r.end_to_end_id, r.payment_info_id, r.amount_cents, r.currency) for r in records] == [
        (Kind.SETTLED, "EndToEnd-CRDBRActSame-1B9C-CHDDBB2", "PMTINF-1CHDDBB3", 1500, "CHF"),
        (Kind.SETTLED, "EndToEnd-CRDBRActSame-1B9C-CHDDBB3", "PMTINF-1CHDDBB3", 900, "CHF"),
        (Kind.SETTLED, "PMT-651727380907030005", "PMT-ID-1268016165-01", 5656, "CHF"),
        (Kind.REFUNDED, "EndToEnd-2B6C-CHDDBB5", "PMTINF-2CHDDBB5", 600, "CHF"),
        (Kind.REFUNDED, "E2E-1-1-16030913", "SID-1-160309134053s4C", 1553, "CHF"),
    ]
    refunds = records[3:]
    assert [(r.reason_code, r.fees_cents, r.entry_fees_cents) for r in refunds] == [("MD06", 70, 70), ("MD06", 70, 70)]
    assert all(r.credit_debit == "DBIT" and r.booking_date == dt.date(2016, 4, 10) for r in refunds)
    assert all(r.fees_cents is None for r in records[:3])


@pytest.mark.parametrize(
    ("name", "skipped"),
    [(CAMT053_DK, 6), (CAMT053_GLS, 4), (CAMT053_POSTFINANCE, 2)],
)
def test_statements_holding_only_credit_transfers_and_their_returns_yield_no_record(name, skipped):
    result, records = read_all(sample("camt.053", name))
    assert records == []
    assert result.skipped_by_reason == {SkipReason.CREDIT_TRANSFER: skipped}


@pytest.mark.parametrize("name", [CAMT053_GLS, CAMT053_POSTFINANCE])
def test_trimmed_statements_without_group_header_are_read_with_a_warning(name):
    result, _records = read_all(sample("camt.053", name))
    assert result.message_id is None
    deviations = [f for f in result.warnings if f.code is FindingCode.SCHEMA_VIOLATION]
    assert len(deviations) == 1 and "GrpHdr" in deviations[0].message


def test_irish_unpaid_notification_is_the_return_of_e2eid1():
    result, records = read_all(sample("camt.054", CAMT054_OCA))
    assert result.message == "camt.054.001.02"
    assert len(records) == 1
    record = records[0]
    assert (record.kind, record.end_to_end_id, record.mandate_reference, record.reason_code) == (
        Kind.RETURNED,
        "E2EID1",
        "MANDATEID2",
        "AC06",
    )
    assert (record.amount_cents, record.currency) == (10000, "EUR")
    assert record.instruction_id == "FA031615104"
    assert record.settlement_date == dt.date(2016, 10, 9)
    assert record.booking_date == dt.date(2016, 10, 8)
    assert record.creditor_id == "IE03ZZZ123456"
    assert record.proprietary_bank_code == "B3/0811"
    assert record.additional_info == "/RTYP/RTRN"
    assert codes(result) == []


@pytest.mark.parametrize("name", [CAMT054_SIX, CAMT054_POSTFINANCE_RETURN])
def test_credit_transfer_returns_are_skipped_and_counted(name):
    result, records = read_all(sample("camt.054", name))
    assert records == []
    assert result.skipped_by_reason == {SkipReason.CREDIT_TRANSFER: 1}


def test_swiss_direct_debit_credit_gives_two_settled_collections():
    result, records = read_all(sample("camt.054", CAMT054_CHDD))
    assert result.message == "camt.054.001.04"
    assert [(r.kind, r.end_to_end_id, r.amount_cents) for r in records] == [
        (Kind.SETTLED, "E2EId-CHDD-1", 150),
        (Kind.SETTLED, "E2EId-CHDD-2", 300),
    ]
    for record in records:
        assert record.original_message_id == "MsgId-CHDD-Musterfile"
        assert record.payment_info_id == "PmtInfId-CHDD-1"
        assert record.instruction_id in ("InstrId-CHDD-1", "InstrId-CHDD-2")
        assert record.currency == "CHF"
        assert record.entry_amount_cents == 450
        assert record.reversal_indicator is False


def test_finnish_notification_reads_settled_collections_and_unbooked_failures():
    result, records = read_all(sample("camt.054", CAMT054_FINNISH))
    assert result.message_id == "BANKFILEID219073"
    # Four credit-transfer entries (9 transactions) are skipped.
    assert result.skipped_by_reason == {SkipReason.CREDIT_TRANSFER: 9}
    assert [(r.kind, r.amount_cents, r.reason_code, r.status, r.booked) for r in records] == [
        (Kind.SETTLED, 40000, None, "BOOK", True),
        (Kind.SETTLED, 10000, None, "BOOK", True),
        (Kind.RETURNED, 4000, "AC01", "INFO", False),
        (Kind.RETURNED, 6000, "CUST", "INFO", False),
    ]
    assert all(r.original_message_id == "BANKFILEID998799" for r in records)
    assert [r.bank_reference for r in records] == [
        "D091029N987654321S211",
        "D091029N987654321S212",
        "D091029N987654321S288",
        "D091029N987654321S289",
    ]
    # The INFO entry is said once, where it stands.
    not_booked = [f for f in result.warnings if f.code is FindingCode.NOT_BOOKED]
    assert [f.location for f in not_booked] == ["/Document/BkToCstmrDbtCdtNtfctn/Ntfctn[1]/Ntry[6]"]
    assert "INFO" in not_booked[0].message


# --- scenarios made for the tests -----------------------------------------------------------


def test_return_without_decimals_charges_apart_and_lump_sum_entry():
    result, records = read_all(RETURN_LUMP_SUM)
    assert result.message == "camt.054.001.08"
    assert [f for f in result.warnings if f.code is FindingCode.SCHEMA_VIOLATION] == []
    assert result.skipped_by_reason == {SkipReason.CREDIT_TRANSFER: 1}
    returned, lump_sum = records
    # "276" is 276.00 and the 3.00 fee ("3") is not netted into it.
    assert (returned.kind, returned.amount_cents, returned.fees_cents, returned.entry_amount_cents) == (
        Kind.RETURNED,
        27600,
        300,
        27900,
    )
    assert (returned.end_to_end_id, returned.mandate_reference, returned.reason_code) == ("E2E-70", "MANDATE-70", "AM04")
    assert returned.original_message_id == "SEPA-20261120-0003"
    assert returned.debtor_name == "Jeanne Martin"
    assert returned.status == "BOOK"  # Sts/Cd since .001.06
    assert returned.settlement_date == dt.date(2026, 11, 24)
    # No details: one entry record, never split into guessed transactions.
    assert (lump_sum.scope, lump_sum.kind, lump_sum.amount_cents) == (Scope.ENTRY, Kind.SETTLED, 123450)
    assert lump_sum.scope.covers_many()
    assert (lump_sum.original_message_id, lump_sum.payment_info_id, lump_sum.number_of_transactions) == (
        "SEPA-20261120-0004",
        "BLOCK-8",
        3,
    )
    assert lump_sum.end_to_end_id is None
    assert lump_sum.entry_reference == "ENTRY-COLL-1"
    assert lump_sum.additional_info == "SEPA CORE COLLECTION BATCH"
    assert lump_sum.location == "/Document/BkToCstmrDbtCdtNtfctn/Ntfctn[1]/Ntry[2]"


CAMT053_02 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


def _statement(entries: str, namespace: str = CAMT053_02) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{namespace}"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2026-11-27T18:00:00</CreDtTm></GrpHdr>"
        "<Stmt><Id>S1</Id><CreDtTm>2026-11-27T18:00:00</CreDtTm>"
        "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>"
        f"{entries}</Stmt></BkToCstmrStmt></Document>"
    )


def _entry(amount: str, direction: str, family: str, sub: str, details: str, status: str = "BOOK") -> str:
    return (
        f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{direction}</CdtDbtInd><Sts>{status}</Sts>'
        "<BookgDt><Dt>2026-11-27</Dt></BookgDt><AcctSvcrRef>REF</AcctSvcrRef>"
        f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>{sub}</SubFmlyCd></Fmly></Domn></BkTxCd>"
        f"<NtryDtls>{details}</NtryDtls></Ntry>"
    )


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_lone_transaction_without_amount_takes_its_entrys_amount_with_a_warning(tmp_path):
    details = "<TxDtls><Refs><EndToEndId>E1</EndToEndId></Refs><RtrInf><Rsn><Cd>AC04</Cd></Rsn></RtrInf></TxDtls>"
    path = _write(tmp_path, "lone.xml", _statement(_entry("76", "DBIT", "IDDT", "UPDD", details)))
    result, records = read_all(path, xsd_dir=tmp_path)
    assert [(r.end_to_end_id, r.amount_cents, r.currency) for r in records] == [("E1", 7600, "EUR")]
    assert "amount_from_entry" in codes(result)


def test_transactions_without_amount_in_a_batch_are_not_split_by_guessing(tmp_path):
    details = "".join(
        f"<TxDtls><Refs><EndToEndId>E{i}</EndToEndId></Refs><RtrInf><Rsn><Cd>AC04</Cd></Rsn></RtrInf></TxDtls>"
        for i in (1, 2)
    )
    path = _write(tmp_path, "batch.xml", _statement(_entry("152", "DBIT", "IDDT", "UPDD", details)))
    result, records = read_all(path, xsd_dir=tmp_path)
    assert [(r.end_to_end_id, r.amount_cents) for r in records] == [("E1", None), ("E2", None)]
    assert [f.code for f in result.warnings if f.code is FindingCode.MISSING_FIELD] == [FindingCode.MISSING_FIELD] * 2


def test_pending_entry_is_yielded_not_booked(tmp_path):
    details = '<TxDtls><Refs><EndToEndId>E1</EndToEndId></Refs><AmtDtls><TxAmt><Amt Ccy="EUR">5</Amt></TxAmt></AmtDtls></TxDtls>'
    path = _write(tmp_path, "pdng.xml", _statement(_entry("5", "CRDT", "IDDT", "ESDD", details, status="PDNG")))
    result, records = read_all(path, xsd_dir=tmp_path)
    assert [(r.kind, r.status, r.booked, r.amount_cents) for r in records] == [(Kind.SETTLED, "PDNG", False, 500)]
    assert "not_booked" in codes(result)


def test_debit_of_an_issued_direct_debit_without_return_information_is_kept_for_a_person(tmp_path):
    details = '<TxDtls><Refs><EndToEndId>E1</EndToEndId></Refs><AmtDtls><TxAmt><Amt Ccy="EUR">5</Amt></TxAmt></AmtDtls></TxDtls>'
    path = _write(tmp_path, "odd.xml", _statement(_entry("5", "DBIT", "IDDT", "ESDD", details)))
    result, records = read_all(path, xsd_dir=tmp_path)
    assert [(r.kind, r.end_to_end_id) for r in records] == [(Kind.UNKNOWN, "E1")]
    assert "unclassified" in codes(result)


def test_unknown_camt_version_is_refused_naming_it(tmp_path):
    path = _write(tmp_path, "v9.xml", _statement("", namespace="urn:iso:std:iso:20022:tech:xsd:camt.053.001.09"))
    with pytest.raises(errors.UnknownMessage) as caught:
        returns.read(path)
    assert "camt.053.001.09" in str(caught.value)


def test_camt_reader_refuses_a_pain008_file(tmp_path):
    path = _write(
        tmp_path, "pain.xml", '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"><CstmrDrctDbtInitn/></Document>'
    )
    with pytest.raises(errors.UnknownMessage) as caught:
        camt.read(path)
    assert "pain.008.001.02" in str(caught.value)


# --- the R-type decision ------------------------------------------------------------------


def _code(family: str | None, sub: str | None = None) -> BankCode:
    return BankCode("PMNT" if family else None, family, sub)


@pytest.mark.parametrize(
    ("code", "direction", "reversal", "has_return", "mandate", "reason", "kind", "skip"),
    [
        # Returned, whatever RvslInd says (NL sets it, the German camt.052 has none).
        (_code("IDDT", "UPDD"), "DBIT", True, True, True, "AC06", Kind.RETURNED, None),
        (_code("IDDT", "UPDD"), "DBIT", None, False, True, None, Kind.RETURNED, None),
        (_code(None), "DBIT", None, True, True, "MS03", Kind.RETURNED, None),
        # Refunds: PRDD, or MD06 under any sub-family (the Swiss statement books one as PMDD).
        (_code("RDDT", "PRDD"), "DBIT", True, True, False, "MD06", Kind.REFUNDED, None),
        (_code("RDDT", "PMDD"), "DBIT", True, True, False, "MD06", Kind.REFUNDED, None),
        (_code("IDDT", "PRDD"), "DBIT", None, True, True, "MD01", Kind.REFUNDED, None),
        (_code("IDDT", "RCDD"), "DBIT", None, False, True, None, Kind.REVERSED, None),
        # The Finnish INFO entry: a reversed credit with RtrInf.
        (_code("RDDT", "PMDD"), "CRDT", True, True, False, "AC01", Kind.RETURNED, None),
        # Settled collections, credited.
        (_code("IDDT", "ESDD"), "CRDT", False, False, True, None, Kind.SETTLED, None),
        (_code("RDDT", "PMDD"), "CRDT", None, False, False, None, Kind.SETTLED, None),
        (_code("iddt", "bbdd"), "CRDT", None, False, False, None, Kind.SETTLED, None),
        # Unknown sub-families are tolerated.
        (_code("IDDT", "ZZZZ"), "CRDT", None, False, False, None, Kind.SETTLED, None),
        (_code("IDDT", None), "DBIT", None, True, False, "AM04", Kind.RETURNED, None),
        # Not ours to read.
        (_code("RDDT", "ESDD"), "DBIT", None, False, True, None, None, SkipReason.DIRECT_DEBIT_PAID),
        (_code("ICDT", "RRTN"), "CRDT", True, True, False, "AC01", None, SkipReason.CREDIT_TRANSFER),
        (_code("RCDT", "ESCT"), "CRDT", None, False, False, None, None, SkipReason.CREDIT_TRANSFER),
        (_code("CNTR", "CDPT"), "CRDT", None, False, False, None, None, SkipReason.NOT_DIRECT_DEBIT),
        (BankCode("ACMT", "ADOP", "CHRG"), "DBIT", None, False, False, None, None, SkipReason.NOT_DIRECT_DEBIT),
        (_code("IDDT", "CHRG"), "DBIT", None, False, False, None, None, SkipReason.NOT_DIRECT_DEBIT),
        (_code(None), "DBIT", None, True, False, "AC01", None, SkipReason.NOT_DIRECT_DEBIT),
        # Cannot be told: a person decides.
        (_code("IDDT", "ESDD"), "DBIT", None, False, True, None, Kind.UNKNOWN, None),
        (_code("RDDT", "ESDD"), "DBIT", True, False, True, None, Kind.UNKNOWN, None),
        (_code("IDDT", "ESDD"), None, None, False, True, None, Kind.UNKNOWN, None),
    ],
)
def test_r_type_comes_from_code_return_information_and_direction(code, direction, reversal, has_return, mandate, reason, kind, skip):
    decision = classify(
        code, credit_debit=direction, reversal=reversal, has_return_info=has_return, has_mandate=mandate, reason_code=reason
    )
    assert (decision.kind, decision.skip) == (kind, skip)
    if kind is Kind.UNKNOWN:
        assert decision.note


@pytest.mark.parametrize(
    ("text", "cents"),
    [("276", 27600), ("46.3", 4630), ("1250.0", 125000), ("0.00", 0), ("100.", 10000), ("12.340", 1234), (" 7.5 ", 750), (".5", 50)],
)
def test_amounts_are_read_as_meant_without_implied_decimals(text, cents):
    assert parse_cents(text) == cents


@pytest.mark.parametrize("text", ["12,50", "1.005", "-5", "1e3", "", "abc", "1.2.3", "NaN", "9" * 30])
def test_amounts_that_cannot_be_cents_are_refused(text):
    with pytest.raises(ValueError):
        parse_cents(text)


# --- hostile files ------------------------------------------------------------------------

CAMT054_02 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"
BILLION_LAUGHS = attacks.billion_laughs(
    f'<Document xmlns="{CAMT054_02}"><BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>&lol9;</MsgId></GrpHdr></BkToCstmrDbtCdtNtfctn></Document>'
)
XXE = attacks.xxe(
    f'<Document xmlns="{CAMT054_02}"><BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>&xxe;</MsgId></GrpHdr></BkToCstmrDbtCdtNtfctn></Document>'
)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(attacks.after_prolog(BILLION_LAUGHS, attacks.LONG_COMMENT), id="billion-laughs-after-70k-of-comment"),
        pytest.param(XXE, id="xxe"),
        pytest.param(attacks.after_prolog(XXE, attacks.LONG_COMMENT), id="xxe-after-70k-of-comment"),
        pytest.param(XXE.replace(CAMT054_02, "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"), id="xxe-in-a-pain002"),
    ],
)
def test_files_declaring_a_doctype_or_entities_are_refused_without_expanding_them(tmp_path, content):
    path = _write(tmp_path, "hostile.xml", content)
    with pytest.raises(errors.UnreadableFile) as caught:
        list(returns.read(path))
    message = str(caught.value)
    assert "root:" not in message  # nothing of /etc/passwd
    assert "lollol" not in message


def test_truncated_file_is_unreadable_even_after_some_records(tmp_path):
    text = RETURN_LUMP_SUM.read_text(encoding="utf-8")
    cut = text.index("<Ntry>", text.index("</Ntry>"))  # after the first, complete entry
    path = _write(tmp_path, "truncated.xml", text[:cut])
    for xsd_dir in (None, tmp_path):  # validated as a tree first, or only streamed
        result = returns.read(path, xsd_dir=xsd_dir)
        with pytest.raises(errors.UnreadableFile) as caught:
            list(result)
        assert "not well-formed" in str(caught.value)


def test_file_larger_than_the_limit_is_refused_before_parsing():
    with pytest.raises(errors.UnreadableFile) as caught:
        returns.read(RETURN_LUMP_SUM, max_bytes=1024)
    assert "larger than the 1024 bytes allowed" in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"not xml at all", bytes(range(256)) * 4, b"<Document><BkToCstmrStmt/></Document>"],
    ids=["empty", "text", "binary", "no-namespace"],
)
def test_junk_is_refused_with_a_message_error(tmp_path, content):
    path = tmp_path / "junk.xml"
    path.write_bytes(content)
    with pytest.raises(errors.MessageError):
        list(returns.read(path))


# --- a large file ---------------------------------------------------------------------------

# Two sizes twenty times apart: what a streaming reader holds does not grow between them.
# The 100,000-return files are read by the reconcile workloads of bench/ (BENCHMARKS.md).
SMALL_COUNT, LARGE_COUNT = 250, 5_000


def _write_large_notification(path: Path, count: int) -> None:
    """One returned batch of ``count`` transactions in one entry, written in chunks."""
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{CAMT054_02}"><BkToCstmrDbtCdtNtfctn>'
        "<GrpHdr><MsgId>LARGE-1</MsgId><CreDtTm>2026-11-27T18:00:00</CreDtTm></GrpHdr>"
        "<Ntfctn><Id>N1</Id><CreDtTm>2026-11-27T18:00:00</CreDtTm>"
        "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>"
        f'<Ntry><Amt Ccy="EUR">{count}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>'
        "<BookgDt><Dt>2026-11-27</Dt></BookgDt>"
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>IDDT</Cd><SubFmlyCd>UPDD</SubFmlyCd></Fmly></Domn></BkTxCd>"
        f"<NtryDtls><Btch><MsgId>SEPA-1</MsgId><PmtInfId>BLOCK-1</PmtInfId><NbOfTxs>{count}</NbOfTxs></Btch>"
    )
    with path.open("w", encoding="utf-8") as fh:
        fh.write(head)
        for start in range(0, count, 1000):
            fh.write(
                "".join(
                    f"<TxDtls><Refs><EndToEndId>E2E-{i}</EndToEndId></Refs>"
                    '<AmtDtls><InstdAmt><Amt Ccy="EUR">1</Amt></InstdAmt></AmtDtls>'
                    "<RtrInf><Rsn><Cd>AM04</Cd></Rsn></RtrInf></TxDtls>"
                    for i in range(start, min(start + 1000, count))
                )
            )
        fh.write("</NtryDtls></Ntry></Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n")


def _read_measuring(path: Path, count: int, tmp_path: Path, tree_sizes: list[int]) -> int:
    """Reads ``path`` whole; returns the Python memory peak while iterating."""
    tree_sizes.clear()
    # No XSD: this measures the reader, not libxml2's validator.
    result = returns.read(path, xsd_dir=tmp_path / "no-xsd")
    records = total = 0
    tracemalloc.start()
    try:
        for record in result:
            records += 1
            total += record.amount_cents or 0
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert records == count
    assert total == count * 100
    assert result.records_read == count
    return peak


def test_transactions_stream_with_flat_memory_whatever_their_number(tmp_path, monkeypatch):
    # The parsed tree lives in libxml2, which tracemalloc does not see: count what is left of
    # it after each release, as the pain.008 reader's test does. Without releasing each
    # transaction it grows with the file (a 100,000-transaction file grew the process by
    # some 150 MB).
    release = return_support.release
    tree_sizes: list[int] = []

    def measuring_release(element):
        release(element)
        tree_sizes.append(sum(1 for _ in element.getroottree().getroot().iter()))

    monkeypatch.setattr(return_support, "release", measuring_release)
    largest_tree, peaks = {}, {}
    for count in (SMALL_COUNT, LARGE_COUNT):
        path = tmp_path / f"camt.054.001.02-{count}-returns.xml"
        _write_large_notification(path, count)
        peaks[count] = _read_measuring(path, count, tmp_path, tree_sizes)
        largest_tree[count] = max(tree_sizes)
    # What is left is what the parser read ahead of us (one input buffer), never what was read.
    assert largest_tree[LARGE_COUNT] <= largest_tree[SMALL_COUNT] * 1.5, largest_tree
    # Records kept by the reader would take some 5 MB here (1 KB each); what does grow is the set of
    # end-to-end ids it checks duplicates against (about 30 bytes each).
    assert peaks[LARGE_COUNT] < 1.5 * 1024 * 1024, f"Python memory peaked at {peaks[LARGE_COUNT]} bytes while iterating"
