"""verify() and describe() on the real pain.008 samples, on our own golden files, and on
files edited in the test to carry one known defect each."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sepa_engine import errors
from sepa_engine.domain import identifiers, money
from sepa_engine.iso20022 import pain008_reader, pain008_rules, pain008_verify, pain008_xsd, safe_xml
from sepa_engine.iso20022.pain008_reader import Transaction, read_records
from sepa_engine.iso20022.pain008_verify import Finding, Severity, VerifyReport, describe, verify
from tests.shared_files import ABSENT, all_samples, samples_dir

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "pain.008"
GOLDEN_08 = TESTDATA / "pain.008.001.08-two-blocks-amendments.xml"
GOLDEN_02 = TESTDATA / "pain.008.001.02-two-blocks-amendments.xml"
DOC = "/Document/CstmrDrctDbtInitn"

ABN_AMRO = "dutchsepa__abn-amro-bank-sample-pain.008.001.02__pain.008.001.02_voorbeeldbestand.xml"
EBICS = "ebicsclientphp__dk-style-2tx-amendment-AmdmntInd__pain.008.001.02.xml"
PHP_001_08 = "phpsepaxml__fixture-1tx-pain.008.001.08__pain.008.001.08.xml"
SEPA_KING_001_02 = "sepaking__example-2tx-pain.008.001.02__pain.008.001.02.xml"
SEPA_KING_003_02 = "sepaking__example-german-pain.008.003.02__pain.008.003.02.xml"


def pain008_samples_dir() -> Path:
    return samples_dir("pain.008")


def sample(name: str) -> Path:
    return pain008_samples_dir() / name


# One None stands for "no samples here", so that the test skips with the reason rather than
# pytest's "empty parameter set".
SAMPLES: list[Path | None] = [*all_samples("pain.008")] or [None]


def _sample_id(path: Path | None) -> str:
    return "no-shared" if path is None else path.name.split("__")[0] + "/" + path.name.split("__")[1]


def edited(tmp_path: Path, source: Path, *replacements: tuple[str, str], name: str = "edited.xml") -> Path:
    """A copy of ``source`` with each (old, new) replaced once; fails if ``old`` is absent."""
    text = source.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, f"{old!r} not in {source.name}"
        text = text.replace(old, new, 1)
    target = tmp_path / name
    target.write_text(text, encoding="utf-8")
    return target


def codes_at(report: VerifyReport) -> set[tuple[str, str]]:
    return {(f.code, f.location) for f in report.findings}


def only(report: VerifyReport, code: str) -> Finding:
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report.findings
    return found[0]


# --- every sample ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLES, ids=_sample_id)
def test_every_pain008_sample_is_verified_and_described_with_the_same_totals(path):
    if path is None:
        pytest.skip(ABSENT)
    report = verify(path)
    description = describe(path)
    assert report.transactions == description.transactions > 0
    assert report.control_sum_cents == description.sum_cents
    # Every sample's name carries its version (SOURCES.md naming).
    assert report.message == description.message == re.search(r"pain\.008\.\d{3}\.\d{2}", path.name).group(0)
    # Each sample passes its XSD (SOURCES.md); what we report is SEPA content, not syntax.
    assert not [f for f in report.findings if f.code == "schema_violation"]
    for finding in report.findings:
        assert finding.location.startswith(DOC)
        assert finding.severity in (Severity.ERROR, Severity.WARNING)


def test_samples_folder_holds_the_five_files_these_tests_describe():
    names = {p.name for p in pain008_samples_dir().glob("*.xml")}
    assert names >= {ABN_AMRO, EBICS, PHP_001_08, SEPA_KING_001_02, SEPA_KING_003_02}


def test_abn_amro_sample_is_one_recurring_debit_of_1600_with_a_failing_creditor_identifier():
    path = sample(ABN_AMRO)
    description = describe(path)
    (block,) = description.blocks
    assert (block.sequence_type, block.local_instrument, block.collection_date) == ("RCUR", "CORE", "2012-02-21")
    assert (block.count, block.sum_cents) == (1, 160_000)
    (tx,) = block.transactions
    assert (tx.end_to_end_id, tx.amount, tx.mandate_id, tx.signature_date, tx.amended) == (
        "2000000038", "1600.00", "MANDAAT123456", "2010-09-05", False,
    )  # fmt: skip
    # The identifier is on the transaction, not on the block: describe still shows it.
    assert block.creditor.creditor_id == "NL89ZZZ011234567890"

    report = verify(path)
    tx_path = f"{DOC}/PmtInf[1]/DrctDbtTxInf[1]"
    assert codes_at(report) == {
        ("invalid_checksum", f"{tx_path}/DrctDbtTx/CdtrSchmeId/Id/PrvtId/Othr/Id"),
        ("invalid_checksum", f"{DOC}/PmtInf[1]/CdtrAcct/Id/IBAN"),
        ("invalid_checksum", f"{tx_path}/DbtrAcct/Id/IBAN"),
        # ReqdColltnDt 2012-02-21 is the day BEFORE CreDtTm 2012-02-22.
        ("collection_date_before_creation", f"{DOC}/PmtInf[1]/ReqdColltnDt"),
        # Ctry + two AdrLine, no TwnNm: a warning in 001.02, which has no structured form.
        ("unstructured_address", f"{DOC}/PmtInf[1]/Cdtr/PstlAdr"),
    }
    assert only(report, "unstructured_address").severity is Severity.WARNING
    assert not report.valid


def test_abn_amro_sample_messages_mask_the_ibans():
    report = verify(sample(ABN_AMRO))
    messages = " ".join(f.message for f in report.findings)
    assert "DE12345678901234567890" not in messages
    assert "'DE12**************7890' fails its ISO 7064 MOD 97-10 check digits" in messages
    assert "'NL89ZZZ011234567890' fails its ISO 7064 MOD 97-10 check digits" in messages


def test_sepa_king_001_02_sample_is_two_first_debits_whose_placeholder_identifier_fails():
    path = sample(SEPA_KING_001_02)
    description = describe(path)
    (block,) = description.blocks
    assert (block.sequence_type, block.count, block.sum_cents) == ("FRST", 2, 665_586)
    assert [t.amount for t in block.transactions] == ["6543.14", "112.72"]
    assert [t.amended for t in block.transactions] == [True, False]

    report = verify(path)
    assert ("invalid_checksum", f"{DOC}/PmtInf[1]/CdtrSchmeId/Id/PrvtId/Othr/Id") in codes_at(report)
    assert "'DE00ZZZ00099999999' fails" in " ".join(f.message for f in report.findings)
    # No GrpHdr/CtrlSum: a warning, the block's CtrlSum (6655.86) matches.
    missing = only(report, "control_sum_missing")
    assert (missing.severity, missing.location) == (Severity.WARNING, f"{DOC}/GrpHdr/CtrlSum")
    assert "control_sum_mismatch" not in {f.code for f in report.findings}


def test_sepa_king_amendment_original_creditor_id_is_a_placeholder_outside_sepa():
    report = verify(sample(SEPA_KING_001_02))
    finding = only(report, "unsupported_country")
    assert finding.location == (
        f"{DOC}/PmtInf[1]/DrctDbtTxInf[1]/DrctDbtTx/MndtRltdInf/AmdmntInfDtls/OrgnlCdtrSchmeId/Id/PrvtId/Othr/Id"
    )
    assert "'AA00ZZZOriginalCreditorID'" in finding.message


def test_sepa_king_debtor_iban_fails_its_german_national_check_digits():
    # DE21 5005 0000 9876 5432 10 passes MOD 97 but not the bank's own check digits.
    report = verify(sample(SEPA_KING_001_02))
    ibans = [f for f in report.findings if f.field == "DbtrAcct/Id/IBAN"]
    assert [(f.location, f.code) for f in ibans] == [(f"{DOC}/PmtInf[1]/DrctDbtTxInf[1]/DbtrAcct/Id/IBAN", "invalid_checksum")]
    assert "national check digits" in ibans[0].message


def test_ebics_sample_without_group_control_sum_gets_a_warning_and_its_amendment_is_read():
    path = sample(EBICS)
    report = verify(path)
    assert only(report, "control_sum_missing").severity is Severity.WARNING
    (block,) = describe(path).blocks
    assert (block.sequence_type, block.sum_cents) == ("RCUR", 30)
    assert [t.amended for t in block.transactions] == [True, False]
    (first, _) = [r for r in read_records(path) if isinstance(r, Transaction)]
    assert first.amendment_indicator == "true"
    assert first.amendment is not None
    assert first.amendment.original_creditor_name == "Original Creditor Name"
    assert first.ultimate_debtor_name == "Ultimate Debtor Name"


def test_german_003_02_sample_warns_that_no_xsd_is_shipped():
    report = verify(sample(SEPA_KING_003_02))
    assert report.message == "pain.008.003.02"
    warning = only(report, "schema_not_checked")
    assert warning.severity is Severity.WARNING
    assert warning.message == "no XSD shipped for pain.008.003.02; schema not checked"
    assert report.transactions == 2 and report.control_sum_cents == 665_586


def test_php_001_08_fixture_reads_bicfi_and_its_bulgarian_identifiers_fail():
    path = sample(PHP_001_08)
    description = describe(path)
    (block,) = description.blocks
    assert (block.sequence_type, block.count, block.sum_cents) == ("OOFF", 1, 1234)
    assert block.creditor.bic == "BANKBGFFXXX"
    report = verify(path)
    assert codes_at(report) == {
        ("invalid_checksum", f"{DOC}/PmtInf[1]/CdtrSchmeId/Id/PrvtId/Othr/Id"),
        # BG87 2005 0000 1234 5678 90: the Bulgarian bank code must be four letters.
        ("invalid_format", f"{DOC}/PmtInf[1]/CdtrAcct/Id/IBAN"),
    }
    assert "'BG40ZZZ507778' fails" in only(report, "invalid_checksum").message


def test_no_sample_collects_on_a_target_closing_day():
    for path in sorted(pain008_samples_dir().glob("*.xml")):
        assert "not_target_day" not in {f.code for f in verify(path).findings}, path.name


# --- our own files -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [GOLDEN_08, GOLDEN_02], ids=lambda p: p.name)
def test_files_our_writer_makes_have_no_finding_at_all(path):
    report = verify(path)
    assert report.findings == ()
    assert report.valid
    assert (report.transactions, report.control_sum_cents) == (4, 100_000_000_030)


def test_describe_masks_debtor_names_ibans_and_mandate_references():
    plain, masked = describe(GOLDEN_08), describe(GOLDEN_08, mask=True)
    tx, masked_tx = plain.blocks[0].transactions[0], masked.blocks[0].transactions[0]
    assert (tx.debtor_name, tx.debtor_iban, tx.mandate_id) == ("Debiteur 1", "NL91ABNA0417164300", "RUM-000001")
    assert (masked_tx.debtor_name, masked_tx.debtor_iban, masked_tx.mandate_id) == ("D******* 1", "NL91**********4300", "******0001")
    assert masked_tx.end_to_end_id == tx.end_to_end_id and masked_tx.amount == "0.10"
    assert masked.to_dict()["masked"] is True


def test_describe_lists_blocks_with_dates_types_counts_and_sums():
    description = describe(GOLDEN_08)
    assert description.message_id == "MSG000001"
    assert [(b.payment_info_id, b.sequence_type, b.collection_date, b.count, b.sum_cents) for b in description.blocks] == [
        ("MSG000001-0001", "FRST", "2026-11-26", 2, 30),
        ("MSG000001-0002", "RCUR", "2026-11-26", 2, 100_000_000_000),
    ]
    assert [c.creditor_id for c in description.creditors] == ["FR72ZZZ123456"]


# --- one defect at a time --------------------------------------------------------------------


def test_block_control_sum_one_cent_off_is_an_error_at_its_xpath(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<CtrlSum>0.30</CtrlSum>", "<CtrlSum>0.31</CtrlSum>"))
    report = verify(path)
    finding = only(report, "control_sum_mismatch")
    assert finding.location == f"{DOC}/PmtInf[1]/CtrlSum"
    assert finding.severity is Severity.ERROR
    assert finding.message == "CtrlSum '0.31' does not match the sum of the payment block's transactions (0.30)"


def test_group_control_sum_one_cent_off_is_an_error_at_the_group_header(tmp_path):
    path = edited(tmp_path, GOLDEN_02, ("<CtrlSum>1000000000.30</CtrlSum>", "<CtrlSum>1000000000.29</CtrlSum>"))
    assert codes_at(verify(path)) == {("control_sum_mismatch", f"{DOC}/GrpHdr/CtrlSum")}


def test_sample_control_sum_one_cent_off_is_reported_beside_its_known_defects(tmp_path):
    path = edited(tmp_path, sample(SEPA_KING_001_02), ("<CtrlSum>6655.86</CtrlSum>", "<CtrlSum>6655.85</CtrlSum>"))
    assert only(verify(path), "control_sum_mismatch").location == f"{DOC}/PmtInf[1]/CtrlSum"


def test_wrong_number_of_transactions_is_an_error(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<NbOfTxs>4</NbOfTxs>", "<NbOfTxs>5</NbOfTxs>"))
    finding = only(verify(path), "transaction_count_mismatch")
    assert finding.location == f"{DOC}/GrpHdr/NbOfTxs"
    assert "4 transactions of the file" in finding.message


def test_missing_group_control_sum_is_only_a_warning(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<CtrlSum>1000000000.30</CtrlSum>\n", ""))
    report = verify(path)
    assert report.valid
    assert [(f.severity, f.code) for f in report.findings] == [(Severity.WARNING, "control_sum_missing")]


def test_duplicate_end_to_end_id_is_reported_at_its_second_use(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<EndToEndId>E2E-00000003</EndToEndId>", "<EndToEndId>E2E-00000001</EndToEndId>"))
    finding = only(verify(path), "duplicate_end_to_end_id")
    assert finding.location == f"{DOC}/PmtInf[2]/DrctDbtTxInf[1]/PmtId/EndToEndId"
    assert "'E2E-00000001'" in finding.message


def test_duplicate_payment_info_id_is_an_error(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<PmtInfId>MSG000001-0002</PmtInfId>", "<PmtInfId>MSG000001-0001</PmtInfId>"))
    assert only(verify(path), "duplicate_payment_info_id").location == f"{DOC}/PmtInf[2]/PmtInfId"


def test_name_with_an_accent_is_outside_the_sepa_character_set(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<Nm>Debiteur 1</Nm>", "<Nm>Débiteur 1</Nm>"))
    finding = only(verify(path), "invalid_characters")
    assert finding.location == f"{DOC}/PmtInf[1]/DrctDbtTxInf[1]/Dbtr/Nm"
    assert finding.message == "Dbtr/Nm 'Débiteur 1' has characters outside the SEPA character set: 'é' at position 2"


def test_name_of_71_characters_is_too_long_for_sepa_though_the_iso_xsd_allows_140(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<Nm>Debiteur 2</Nm>", f"<Nm>{'N' * 71}</Nm>"))
    report = verify(path)
    assert codes_at(report) == {("invalid_length", f"{DOC}/PmtInf[1]/DrctDbtTxInf[2]/Dbtr/Nm")}


def test_collection_date_on_a_saturday_is_an_error_in_a_file_we_send(tmp_path):
    # 2026-11-28 is a Saturday; RULES.md: our engine must never emit a closing day.
    path = edited(tmp_path, GOLDEN_08, ("<ReqdColltnDt>2026-11-26</ReqdColltnDt>", "<ReqdColltnDt>2026-11-28</ReqdColltnDt>"))
    finding = only(verify(path), "not_target_day")
    assert (finding.severity, finding.location) == (Severity.ERROR, f"{DOC}/PmtInf[1]/ReqdColltnDt")
    assert "Saturday" in finding.message


def test_collection_date_on_christmas_is_not_a_target_day(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<ReqdColltnDt>2026-11-26</ReqdColltnDt>", "<ReqdColltnDt>2026-12-25</ReqdColltnDt>"))
    assert only(verify(path), "not_target_day").location == f"{DOC}/PmtInf[1]/ReqdColltnDt"


def test_mandate_signed_after_the_collection_date_is_an_error(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<DtOfSgntr>2025-01-15</DtOfSgntr>", "<DtOfSgntr>2026-11-27</DtOfSgntr>"))
    finding = only(verify(path), "mandate_signed_after_collection")
    assert finding.location == f"{DOC}/PmtInf[1]/DrctDbtTxInf[1]/DrctDbtTx/MndtRltdInf/DtOfSgntr"


def test_amendment_indicator_without_details_is_an_error(tmp_path):
    path = edited(
        tmp_path,
        GOLDEN_08,
        ("<DtOfSgntr>2025-01-15</DtOfSgntr></MndtRltdInf>", "<DtOfSgntr>2025-01-15</DtOfSgntr><AmdmntInd>true</AmdmntInd></MndtRltdInf>"),
    )
    finding = only(verify(path), "amendment_details_missing")
    assert finding.location == f"{DOC}/PmtInf[1]/DrctDbtTxInf[1]/DrctDbtTx/MndtRltdInf/AmdmntInd"


def test_unstructured_debtor_address_is_an_error_from_001_08_on(tmp_path):
    path = edited(
        tmp_path,
        GOLDEN_08,
        (
            "<PstlAdr><PstCd>69001</PstCd><TwnNm>Lyon</TwnNm><Ctry>FR</Ctry></PstlAdr>",
            "<PstlAdr><AdrLine>1 rue de la Paix</AdrLine><AdrLine>69001 Lyon</AdrLine></PstlAdr>",
        ),
    )
    finding = only(verify(path), "unstructured_address")
    assert (finding.severity, finding.location) == (Severity.ERROR, f"{DOC}/PmtInf[1]/DrctDbtTxInf[1]/Dbtr/PstlAdr")


def test_unstructured_debtor_address_is_a_warning_in_001_02(tmp_path):
    path = edited(
        tmp_path,
        GOLDEN_02,
        (
            # The golden .001.02 file dates from after address lines were forbidden: it has no
            # address, so one is put in.
            "<Dbtr><Nm>Debiteur 1</Nm></Dbtr>",
            "<Dbtr><Nm>Debiteur 1</Nm><PstlAdr><Ctry>FR</Ctry><AdrLine>1 rue de la Paix</AdrLine>"
            "<AdrLine>69001 Lyon</AdrLine></PstlAdr></Dbtr>",
        ),
    )
    report = verify(path)
    assert report.valid
    assert only(report, "unstructured_address").severity is Severity.WARNING


def test_amount_in_another_currency_is_an_error(tmp_path):
    path = edited(tmp_path, GOLDEN_02, ('<InstdAmt Ccy="EUR">0.20</InstdAmt>', '<InstdAmt Ccy="CHF">0.20</InstdAmt>'))
    assert codes_at(verify(path)) == {("currency_not_eur", f"{DOC}/PmtInf[1]/DrctDbtTxInf[2]/InstdAmt/@Ccy")}


def test_reference_with_a_double_slash_breaks_the_restricted_id_rules(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<EndToEndId>E2E-00000004</EndToEndId>", "<EndToEndId>E2E//4</EndToEndId>"))
    finding = only(verify(path), "invalid_format")
    assert finding.location == f"{DOC}/PmtInf[2]/DrctDbtTxInf[2]/PmtId/EndToEndId"
    assert "'//'" in finding.message


def test_schema_violations_are_all_listed_with_a_readable_path_and_line(tmp_path):
    path = edited(
        tmp_path,
        GOLDEN_02,
        ("<BIC>COBADEFFXXX</BIC>", "<BIC>cobadeffxxx</BIC>"),
        ("<PmtMtd>DD</PmtMtd>", "<PmtMtd>TRF</PmtMtd>"),
    )
    violations = [f for f in verify(path).findings if f.code == "schema_violation"]
    assert [f.location for f in violations] == [
        f"{DOC}/PmtInf[1]/PmtMtd",
        f"{DOC}/PmtInf[1]/DrctDbtTxInf[2]/DbtrAgt/FinInstnId/BIC",
    ]
    assert all("breaks the XSD" in f.message and "(line " in f.message for f in violations)
    assert "{urn:" not in violations[1].message


def test_several_problems_in_one_file_are_all_reported(tmp_path):
    path = edited(
        tmp_path,
        GOLDEN_08,
        ("<CtrlSum>0.30</CtrlSum>", "<CtrlSum>0.31</CtrlSum>"),
        ("<ReqdColltnDt>2026-11-26</ReqdColltnDt>", "<ReqdColltnDt>2026-11-29</ReqdColltnDt>"),
        ("<Nm>Debiteur 1</Nm>", "<Nm>Débiteur 1</Nm>"),
        ("<EndToEndId>E2E-00000002</EndToEndId>", "<EndToEndId>E2E-00000001</EndToEndId>"),
        ("<IBAN>BE68539007547034</IBAN>", "<IBAN>BE68539007547035</IBAN>"),
        ('<InstdAmt Ccy="EUR">0.01</InstdAmt>', '<InstdAmt Ccy="USD">0.01</InstdAmt>'),
    )
    report = verify(path)
    tx = f"{DOC}/PmtInf[1]/DrctDbtTxInf"
    assert codes_at(report) >= {
        ("control_sum_mismatch", f"{DOC}/PmtInf[1]/CtrlSum"),
        ("not_target_day", f"{DOC}/PmtInf[1]/ReqdColltnDt"),
        ("invalid_characters", f"{tx}[1]/Dbtr/Nm"),
        ("duplicate_end_to_end_id", f"{tx}[2]/PmtId/EndToEndId"),
        ("invalid_checksum", f"{tx}[2]/DbtrAcct/Id/IBAN"),
        ("currency_not_eur", f"{DOC}/PmtInf[2]/DrctDbtTxInf[2]/InstdAmt/@Ccy"),
    }
    # ISO allows any ISO 4217 code: only the SEPA check catches USD.
    assert "schema_violation" not in {f.code for f in report.findings}
    assert "BE68539007547035" not in " ".join(f.message for f in report.findings)


# --- streaming (large files) -----------------------------------------------------------------


def test_large_file_path_reports_schema_violations_and_still_checks_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(safe_xml, "TREE_VALIDATION_MAX_BYTES", 0)
    path = edited(
        tmp_path,
        GOLDEN_08,
        ("<BICFI>COBADEFFXXX</BICFI>", "<BICFI>cobadeffxxx</BICFI>"),
        ("<PmtMtd>DD</PmtMtd>", "<PmtMtd>XX</PmtMtd>"),
        ("<CtrlSum>0.30</CtrlSum>", "<CtrlSum>0.31</CtrlSum>"),
    )
    report = verify(path)
    violations = [f for f in report.findings if f.code == "schema_violation"]
    # Streamed validation knows neither line nor path: the element is named in the message.
    assert [f.field for f in violations] == ["PmtMtd", "BICFI"]
    assert all(f.location == DOC for f in violations)
    assert only(report, "control_sum_mismatch").location == f"{DOC}/PmtInf[1]/CtrlSum"


def test_large_file_path_caps_the_number_of_streamed_violations(tmp_path, monkeypatch):
    monkeypatch.setattr(safe_xml, "TREE_VALIDATION_MAX_BYTES", 0)
    monkeypatch.setattr(safe_xml, "MAX_SCHEMA_FINDINGS", 1)
    monkeypatch.setattr(pain008_verify.os, "cpu_count", lambda: 1)  # the cap is patched here only
    path = edited(
        tmp_path,
        GOLDEN_08,
        ("<BICFI>COBADEFFXXX</BICFI>", "<BICFI>cobadeffxxx</BICFI>"),
        ("<PmtMtd>DD</PmtMtd>", "<PmtMtd>XX</PmtMtd>"),
    )
    messages = [f.message for f in verify(path).findings if f.code == "schema_violation"]
    assert len(messages) == 2
    assert messages[1] == "Document breaks the XSD: 1 more violations not listed"


def test_large_file_path_on_one_core_gives_the_same_findings(tmp_path, monkeypatch):
    monkeypatch.setattr(safe_xml, "TREE_VALIDATION_MAX_BYTES", 0)
    monkeypatch.setattr(pain008_verify.os, "cpu_count", lambda: 1)
    path = edited(tmp_path, GOLDEN_08, ("<BICFI>COBADEFFXXX</BICFI>", "<BICFI>cobadeffxxx</BICFI>"))
    assert [f.code for f in verify(path).findings] == ["schema_violation"]


def _without_schema(report: VerifyReport) -> list[tuple[str, str, str]]:
    return [(f.code, f.location, f.message) for f in report.findings if f.code != "schema_violation"]


def _bad_ibans(tmp_path: Path) -> Path:
    return edited(
        tmp_path,
        GOLDEN_08,
        ("<IBAN>FR7630006000011234567890189</IBAN>", "<IBAN>FR7630006000011234567890188</IBAN>"),
        ("<IBAN>BE68539007547034</IBAN>", "<IBAN>BE68539007547035</IBAN>"),
        ("<IBAN>NL91ABNA0417164300</IBAN>", "<IBAN>XX91ABNA0417164300</IBAN>"),
        ("<Nm>Debiteur 1</Nm>", "<Nm>Débiteur 1</Nm>"),
    )


def test_large_file_path_finds_what_the_small_file_path_finds(tmp_path, monkeypatch):
    path = _bad_ibans(tmp_path)
    small = verify(path)
    assert {f.field for f in small.findings if f.code in ("invalid_checksum", "unsupported_country")} == {
        "CdtrAcct/Id/IBAN", "DbtrAcct/Id/IBAN",
    }  # fmt: skip
    monkeypatch.setattr(safe_xml, "TREE_VALIDATION_MAX_BYTES", 0)
    # The IBANs are checked in the child process there, and merged in document order.
    assert _without_schema(verify(path)) == _without_schema(small)
    monkeypatch.setattr(pain008_verify.os, "cpu_count", lambda: 1)
    assert _without_schema(verify(path)) == _without_schema(small)


def test_large_file_path_does_the_child_work_itself_when_the_child_gives_no_answer(tmp_path, monkeypatch):
    path = _bad_ibans(tmp_path)
    small = verify(path)
    monkeypatch.setattr(safe_xml, "TREE_VALIDATION_MAX_BYTES", 0)
    monkeypatch.setattr(pain008_xsd.StreamingChecks, "result", lambda self: None)
    assert _without_schema(verify(path)) == _without_schema(small)


def test_stream_leaves_locates_ibans_in_headers_and_transactions():
    leaves = [
        (leaf.location, leaf.text)
        for leaf in pain008_reader.stream_leaves(GOLDEN_08, pain008_reader.detect_version(GOLDEN_08), frozenset({"IBAN"}))
    ]
    assert leaves[:3] == [
        (f"{DOC}/PmtInf[1]/CdtrAcct/Id/IBAN", "FR7630006000011234567890189"),
        (f"{DOC}/PmtInf[1]/DrctDbtTxInf[1]/DbtrAcct/Id/IBAN", "NL91ABNA0417164300"),
        (f"{DOC}/PmtInf[1]/DrctDbtTxInf[2]/DbtrAcct/Id/IBAN", "BE68539007547034"),
    ]
    assert leaves[-1][0] == f"{DOC}/PmtInf[2]/DrctDbtTxInf[2]/DbtrAcct/Id/IBAN"


def test_tree_validation_caps_the_number_of_schema_findings(tmp_path, monkeypatch):
    monkeypatch.setattr(safe_xml, "MAX_SCHEMA_FINDINGS", 1)
    path = edited(
        tmp_path,
        GOLDEN_08,
        ("<BICFI>COBADEFFXXX</BICFI>", "<BICFI>cobadeffxxx</BICFI>"),
        ("<PmtMtd>DD</PmtMtd>", "<PmtMtd>XX</PmtMtd>"),
    )
    violations = [f for f in verify(path).findings if f.code == "schema_violation"]
    assert [(f.location, f.field) for f in violations] == [(DOC, "Document"), (f"{DOC}/PmtInf[1]/PmtMtd", "PmtMtd")]
    assert violations[0].message == "Document breaks the XSD: 1 more violations not listed"


def test_large_valid_file_path_has_no_finding(monkeypatch):
    monkeypatch.setattr(safe_xml, "TREE_VALIDATION_MAX_BYTES", 0)
    assert verify(GOLDEN_08).findings == ()


def _many_transactions(tmp_path: Path, blocks: int, per_block: int) -> Path:
    """GOLDEN_08's first transaction repeated with distinct ids, in several blocks."""
    text = GOLDEN_08.read_text(encoding="utf-8")
    head, rest = text.split("<DrctDbtTxInf>", 1)
    tx_body, _ = rest.split("</DrctDbtTxInf>", 1)
    block_head = head[head.index("<PmtInf>") :]
    group_head = head[: head.index("<PmtInf>")]
    count, cents = blocks * per_block, blocks * per_block * 10
    group_head = group_head.replace("<NbOfTxs>4</NbOfTxs>", f"<NbOfTxs>{count}</NbOfTxs>").replace(
        "<CtrlSum>1000000000.30</CtrlSum>", f"<CtrlSum>{money.format_cents(cents)}</CtrlSum>"
    )
    parts = [group_head]
    n = 0
    for b in range(1, blocks + 1):
        parts.append(
            block_head.replace("MSG000001-0001", f"MSG000001-{b:04d}")
            .replace("<NbOfTxs>2</NbOfTxs>", f"<NbOfTxs>{per_block}</NbOfTxs>")
            .replace("<CtrlSum>0.30</CtrlSum>", f"<CtrlSum>{money.format_cents(per_block * 10)}</CtrlSum>")
        )
        for _ in range(per_block):
            n += 1
            parts.append("<DrctDbtTxInf>" + tx_body.replace("E2E-00000001", f"E2E-{n:08d}") + "</DrctDbtTxInf>\n")
        parts.append("</PmtInf>\n")
    parts.append("</CstmrDrctDbtInitn>\n</Document>\n")
    path = tmp_path / "many.xml"
    path.write_text("".join(parts), encoding="utf-8")
    return path


def test_locations_count_blocks_and_transactions_from_one(tmp_path):
    path = _many_transactions(tmp_path, blocks=3, per_block=400)
    assert verify(path).findings == ()
    last = [r for r in read_records(path) if isinstance(r, Transaction)][-1]
    assert last.location == f"{DOC}/PmtInf[3]/DrctDbtTxInf[400]"
    assert last.end_to_end_id == "E2E-00001200"


def test_reader_tree_does_not_grow_with_the_number_of_transactions(tmp_path, monkeypatch):
    release = pain008_reader._release
    tree_sizes: list[int] = []

    def measuring_release(element):
        release(element)
        tree_sizes.append(sum(1 for _ in element.getroottree().getroot().iter()))

    monkeypatch.setattr(pain008_reader, "_release", measuring_release)
    largest = {}
    for per_block in (200, 4000):
        tree_sizes.clear()
        path = _many_transactions(tmp_path, blocks=2, per_block=per_block)
        assert sum(1 for r in read_records(path) if isinstance(r, Transaction)) == 2 * per_block
        # What is left is what the parser read ahead of us (one input buffer), never what
        # was already read.
        largest[per_block] = max(tree_sizes)
    assert largest[4000] <= largest[200] * 1.5


def test_transaction_records_have_every_field_set():
    (tx, *_) = [r for r in read_records(GOLDEN_08) if isinstance(r, Transaction)]
    assert {f.name for f in dataclasses.fields(Transaction)} == set(vars(tx))
    with pytest.raises(dataclasses.FrozenInstanceError):
        tx.amount = "1.00"  # type: ignore[misc]


# --- fast paths agree with the validators they shortcut ---------------------------------------

_ALPHABET = st.sampled_from(list("aZ09/-?:().,'+ é_&") + ["//"])


@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_reference_fast_path_accepts_exactly_what_the_validator_accepts(value):
    assert bool(pain008_rules._PLAIN_REFERENCE.fullmatch(value)) == identifiers.is_valid_reference(value)


@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_mandate_fast_path_accepts_exactly_what_the_validator_accepts(value):
    assert bool(pain008_rules._PLAIN_MANDATE_ID.fullmatch(value)) == identifiers.is_valid_mandate_id(value)


def test_zero_amount_is_refused_despite_the_fast_path(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ('<InstdAmt Ccy="EUR">0.01</InstdAmt>', '<InstdAmt Ccy="EUR">0.00</InstdAmt>'))
    report = verify(path)
    assert ("invalid_amount", f"{DOC}/PmtInf[2]/DrctDbtTxInf[2]/InstdAmt") in codes_at(report)


def test_collection_date_outside_the_known_calendar_is_a_warning_not_a_crash(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<ReqdColltnDt>2026-11-26</ReqdColltnDt>", "<ReqdColltnDt>2201-03-02</ReqdColltnDt>"))
    finding = only(verify(path), "outside_calendar")
    assert finding.severity is Severity.WARNING


def test_unknown_namespace_raises_unknown_message(tmp_path):
    path = tmp_path / "camt.xml"
    path.write_text('<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt/></Document>')
    with pytest.raises(errors.UnknownMessage) as caught:
        verify(path)
    assert "camt.053.001.02" in str(caught.value)
    with pytest.raises(errors.UnknownMessage):
        describe(path)


def test_reader_records_carry_block_and_group_headers_before_transactions():
    kinds = [type(r).__name__ for r in read_records(GOLDEN_08)]
    assert kinds == [
        "GroupHeader",
        "PaymentBlock", "Transaction", "Transaction", "BlockEnd",
        "PaymentBlock", "Transaction", "Transaction", "BlockEnd",
    ]  # fmt: skip
    assert pain008_reader.detect_version(GOLDEN_02).bic_tag == "BIC"
