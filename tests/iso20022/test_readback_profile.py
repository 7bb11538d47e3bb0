"""A bank profile's rules checked in the writer's one read-back of a file (issue 16).

The read-back takes the few fields the rules read from the elements it holds anyway; its
findings must be the ones ``verify --profile`` makes by reading the file with the reader.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import pytest

from sepa_engine import errors
from sepa_engine.domain.bank_profiles import BankProfile, profile
from sepa_engine.domain.directdebit import FileHeader, PaymentBlock, PostalAddress
from sepa_engine.iso20022 import readback
from sepa_engine.iso20022.pain008 import CHILD_VALIDATION_FROM, BlockPlan, write_pain008
from sepa_engine.iso20022.pain008_reader import detect_version
from sepa_engine.iso20022.profile_rules import check_profile
from tests.factories import CREDITOR, debit, key

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "pain.008"
GOLDEN_08 = TESTDATA / "pain.008.001.08-two-blocks-amendments.xml"
GOLDEN_02 = TESTDATA / "pain.008.001.02-two-blocks-amendments.xml"
SWISS_IBAN = "CH9300762011623852957"
CREATED = dt.datetime(2026, 11, 23, 10, 15, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def _edited(tmp_path: Path, source: Path, *replacements: tuple[str, str]) -> Path:
    text = source.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    target = tmp_path / source.name
    target.write_text(text, encoding="utf-8")
    return target


def _read_back(path: Path, bank: BankProfile) -> tuple[list[object], errors.SepaEngineError | None]:
    check = readback.InProcessReadBack(detect_version(path), bank)
    data = path.read_bytes()
    failure = None
    try:
        for start in range(0, len(data), 1000):  # in pieces, as the writer feeds it
            check.feed(data[start : start + 1000])
        check.close()
    except errors.SepaEngineError as exc:
        failure = exc
    return list(check.profile_findings), failure


_DBTR_1 = "<Dbtr><Nm>Debiteur 1</Nm>"
_FR_ADDRESS = "<PstlAdr><PstCd>69001</PstCd><TwnNm>Lyon</TwnNm><Ctry>FR</Ctry></PstlAdr>"
CASES = {
    "001.02 after the German end date": (GOLDEN_02, "de", (), {"version_no_longer_accepted"}),
    "structured address in a 001.02 file": (
        GOLDEN_02, "epc", ((f"{_DBTR_1}</Dbtr>", f"{_DBTR_1}{_FR_ADDRESS}</Dbtr>"),), {"address_not_epc_subset"},
    ),
    "Swiss debtor without BIC": (GOLDEN_08, "epc", (("NL91ABNA0417164300", SWISS_IBAN),), {"non_eea_debtor_bic_missing"}),
    "Swiss debtor without address": (
        GOLDEN_08, "epc", (("ES9121000418450200051332", SWISS_IBAN),),
        {"non_eea_debtor_bic_missing", "non_eea_debtor_address_missing"},
    ),
    "Monegasque address of lines only": (
        GOLDEN_08, "epc", ((f"{_DBTR_1}{_FR_ADDRESS}", f"{_DBTR_1}<PstlAdr><Ctry>MC</Ctry><AdrLine>1 Rue Grimaldi</AdrLine></PstlAdr>"),),
        {"non_eea_debtor_bic_missing", "non_eea_debtor_address_missing", "address_lines_forbidden"},
    ),
    "address lines only": (
        GOLDEN_08, "epc", ((f"{_DBTR_1}{_FR_ADDRESS}", f"{_DBTR_1}<PstlAdr><AdrLine>5 Rue X</AdrLine><AdrLine>Lyon</AdrLine></PstlAdr>"),),
        {"address_lines_forbidden"},
    ),
    "collection on 24 December in Germany": (
        GOLDEN_08, "de", (("<ReqdColltnDt>2026-11-26</ReqdColltnDt>", "<ReqdColltnDt>2026-12-24</ReqdColltnDt>"),),
        {"bank_closing_day"},
    ),
    "a file the profiles take": (GOLDEN_08, "de", (), set()),
    "a 001.02 file the Dutch banks take": (GOLDEN_02, "nl", (), set()),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_read_back_finds_what_verify_profile_finds(tmp_path, case):
    source, code, replacements, expected = CASES[case]
    path = _edited(tmp_path, source, *replacements)
    bank = profile(code)

    findings, failure = _read_back(path, bank)

    assert findings == check_profile(path, bank)
    assert {f.code for f in findings} == expected  # type: ignore[attr-defined]
    if expected:
        assert isinstance(failure, errors.CollectionError)
        assert "breaks a rule of its bank" in str(failure) and findings[0].message in str(failure)  # type: ignore[attr-defined]
    else:
        assert failure is None


def test_file_limits_and_a_required_bic_are_found_by_the_read_back_as_by_verify(tmp_path):
    bank = dataclasses.replace(profile("de"), max_transactions=3, max_file_bytes=1000, bic_required=True)
    findings, failure = _read_back(GOLDEN_08, bank)

    assert findings == check_profile(GOLDEN_08, bank)
    codes = [f.code for f in findings]  # type: ignore[attr-defined]
    assert codes.count("bic_required") == 3  # transactions 1, 3 and 4 say NOTPROVIDED
    assert codes[-2:] == ["file_too_large", "too_many_transactions"]
    assert isinstance(failure, errors.CollectionError)


# --- through the writer ------------------------------------------------------------------


def _block(collection_date: dt.date = dt.date(2026, 11, 26)) -> PaymentBlock:
    return PaymentBlock("MSG000001-0001", key(collection_date=collection_date), CREDITOR)


def _header() -> FileHeader:
    return FileHeader("MSG000001", CREATED, CREDITOR.name, CREDITOR.creditor_id)


def _plan(entries) -> list[BlockPlan]:
    return [BlockPlan(entries[0][0], len(entries), sum(tx.amount_cents for _b, tx in entries))]


def test_a_spooled_file_on_a_german_closing_day_fails_naming_the_rule_and_its_source():
    from sepa_engine.iso20022.versions import PAIN_008_001_08

    entries = [(_block(dt.date(2026, 12, 24)), debit(1))]
    assert write_pain008(io.BytesIO(), PAIN_008_001_08, _header(), entries, profile=profile("epc")).count == 1

    with pytest.raises(errors.CollectionError) as caught:
        write_pain008(io.BytesIO(), PAIN_008_001_08, _header(), entries, profile=profile("de"))

    message = str(caught.value)
    assert "'MSG000001' breaks a rule of its bank" in message
    assert "2026-12-24 is a day the bank does not process" in message and "bank profile de, rule closing_days" in message


def test_a_large_planned_file_checked_in_the_child_fails_on_a_swiss_debtor_without_bic_with_its_iso_code():
    from sepa_engine.iso20022.versions import PAIN_008_001_08

    n = CHILD_VALIDATION_FROM + 10
    entries = [(_block(), debit(i, 100 + i)) for i in range(n)]
    swiss = PostalAddress(country="CH", town="Zurich")
    entries[4321] = (_block(), debit(4321, 100 + 4321, debtor_iban=SWISS_IBAN, debtor_address=swiss))

    with pytest.raises(errors.CollectionError) as caught:
        write_pain008(io.BytesIO(), PAIN_008_001_08, _header(), entries, plan=_plan(entries), profile=profile("epc"))

    message = str(caught.value)
    assert "debtor in CH, outside the EEA [RC01]" in message and "EPC409-09" in message
    # Without a profile the same file is XSD-valid and adds up: only the profile refuses it.
    written = write_pain008(io.BytesIO(), PAIN_008_001_08, _header(), entries, plan=_plan(entries))
    assert written.count == n
