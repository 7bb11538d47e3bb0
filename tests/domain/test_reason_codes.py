from __future__ import annotations

import re

import pytest

from sepa_engine.domain import reason_codes
from sepa_engine.domain.reason_codes import (
    REASON_CODES,
    MandateEffect,
    RType,
    Severity,
    is_hard,
    lookup,
    max_retries,
    retry_allowed,
)

# Every code of RULES.md section 5.
RULES_CODES = (
    "AC01 AC04 AC06 AC13 AG01 AG02 AM04 AM05 BE05 CNOR DNOR FF01 MD01 MD02 MD06 MD07 "
    "MS02 MS03 RC01 RR01 RR02 RR03 RR04 SL01 CUST NARR AM10"
).split()


def test_table_holds_exactly_the_codes_of_the_rules_and_the_epc_codes_they_missed():
    # RULES.md section 5 predates ED05 and FF05 (issue 14 item 9), which the EPC list has.
    assert set(REASON_CODES) == set(RULES_CODES) | {"ED05", "FF05"}


@pytest.mark.parametrize("code", sorted(REASON_CODES))
def test_every_code_has_a_meaning_and_four_upper_case_characters(code):
    entry = REASON_CODES[code]
    assert entry.code == code
    assert re.fullmatch(r"[A-Z0-9]{4}", code) and code[:2].isalpha()
    assert entry.meaning.strip()
    assert entry.r_types and entry.r_types <= set(RType)
    assert entry.retry_allowed == (entry.max_retries > 0)


@pytest.mark.parametrize("code", ["MD01", "AC04", "AC06", "MD07", "SL01", "AG01"])
def test_hard_codes_named_in_the_rules_block_the_mandate(code):
    entry = lookup(code)
    assert entry.severity is Severity.HARD
    assert entry.mandate_effect is MandateEffect.BLOCK
    assert is_hard(code)
    assert not retry_allowed(code)


@pytest.mark.parametrize("code", ["AM04", "MS03"])
def test_insufficient_funds_and_bank_refusal_allow_exactly_one_retry(code):
    assert retry_allowed(code)
    assert max_retries(code) == 1
    assert lookup(code).severity is Severity.SOFT
    assert lookup(code).mandate_effect is MandateEffect.NONE


def test_only_am04_ms03_and_ed05_are_retried_automatically():
    assert {code for code in REASON_CODES if retry_allowed(code)} == {"AM04", "MS03", "ED05"}


def test_md06_refund_holds_the_mandate_and_opens_a_dispute():
    entry = lookup("MD06")
    assert entry.mandate_effect is MandateEffect.HOLD
    assert entry.opens_dispute
    assert not entry.retry_allowed
    assert not entry.is_hard()
    assert entry.r_types == {RType.REFUND}


def test_md01_blocks_the_mandate_and_opens_a_dispute():
    entry = lookup("MD01")
    assert entry.mandate_effect is MandateEffect.BLOCK
    assert entry.opens_dispute
    assert "refund" in entry.r_types


@pytest.mark.parametrize("code", ["FF01", "AM10", "BE05", "RC01", "AG02", "MD02", "RR02", "CNOR", "DNOR"])
def test_our_file_or_configuration_problems_are_technical_without_retry(code):
    assert lookup(code).severity is Severity.TECHNICAL
    assert not retry_allowed(code)
    assert lookup(code).mandate_effect is MandateEffect.NONE


def test_customer_refusals_go_to_a_person():
    for code in ("MS02", "CUST"):
        assert lookup(code).severity is Severity.REVIEW
        assert not retry_allowed(code)


def test_lower_case_and_padded_codes_are_found():
    assert lookup(" am04 ") is REASON_CODES["AM04"]
    assert lookup("md06\n") is REASON_CODES["MD06"]


@pytest.mark.parametrize("code", ["ZZ99", "", "   ", None, "X" * 500, "<script>"])
def test_unknown_or_missing_codes_go_to_manual_review_without_raising(code):
    entry = lookup(code)
    assert entry.severity is Severity.REVIEW
    assert entry.mandate_effect is MandateEffect.NONE
    assert not entry.retry_allowed
    assert entry.max_retries == 0
    assert not entry.opens_dispute
    assert entry.meaning.startswith("unknown reason code ")
    assert entry.meaning.endswith(": manual review")
    assert len(entry.meaning) < 80
    assert not is_hard(code)
    assert not retry_allowed(code)


def test_unknown_code_is_named_in_its_meaning():
    assert lookup("zz99").meaning == "unknown reason code ZZ99: manual review"
    assert lookup(None).meaning == "unknown reason code (missing): manual review"


# The reasons of attribute AT-R3 of the SDD Core rulebook (EPC016-06 2023 v1.1) as EPC173-14
# v8.0 codes them: the list a bank may send us, typed here from the documents.
EPC_SDD_CORE_R_TRANSACTION_CODES = frozenset({
    "AC01", "AC04", "AC06", "AC13", "AG01", "AG02", "AM04", "AM05", "BE05", "CNOR", "DNOR", "ED05",
    "FF01", "FF05", "MD01", "MD02", "MD06", "MD07", "MS02", "MS03", "RC01", "RR01", "RR02", "RR03",
    "RR04", "SL01",
})


def test_ed05_and_ff05_are_known_codes_not_sent_to_manual_review_as_unknown():
    # Issue 14 item 9: "Reason codes ED05 and FF05 are missing".
    for code in ("ED05", "FF05"):
        assert not reason_codes.lookup(code).meaning.startswith("unknown"), code


def test_every_epc_r_transaction_code_is_in_the_table_with_the_epc_as_its_source():
    missing = EPC_SDD_CORE_R_TRANSACTION_CODES - set(reason_codes.REASON_CODES)
    assert not missing
    for code in EPC_SDD_CORE_R_TRANSACTION_CODES:
        assert reason_codes.REASON_CODES[code].source.startswith("EPC016-06"), code
    others = set(reason_codes.REASON_CODES) - EPC_SDD_CORE_R_TRANSACTION_CODES
    assert all(reason_codes.REASON_CODES[c].source.startswith("ISO 20022") for c in others), others


def test_a_failed_settlement_is_presented_again_once_and_a_wrong_local_instrument_never():
    ed05, ff05 = reason_codes.lookup("ED05"), reason_codes.lookup("FF05")
    assert (ed05.max_retries, ed05.mandate_effect) == (1, reason_codes.MandateEffect.NONE)
    assert (ff05.max_retries, ff05.severity) == (0, reason_codes.Severity.TECHNICAL)
