from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import schwifty
from hypothesis import given
from hypothesis import strategies as st
from schwifty.exceptions import NationalChecksumNotVerified
from stdnum.eu import at_02

from sepa_engine import errors
from sepa_engine.domain.identifiers import (
    SEPA_COUNTRIES,
    compact_bic,
    compact_creditor_id,
    compact_iban,
    is_valid_bic,
    is_valid_creditor_id,
    is_valid_iban,
    is_valid_mandate_id,
    is_valid_reference,
    validate_bic,
    validate_creditor_id,
    validate_iban,
    validate_mandate_id,
    validate_reference,
)


def with_iso_check_digits(country: str, bban: str) -> str:
    """Build an IBAN whose ISO 7064 MOD 97-10 digits are right, whatever the BBAN holds."""
    number = int("".join(str(int(char, 36)) for char in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


# --- IBAN ----------------------------------------------------------------------------------
VALID_IBANS = [
    "FR7630006000011234567890189",
    "DE89370400440532013000",
    "NL91ABNA0417164300",
    "GB33BUKB20201555555555",
    "IT60X0542811101000000123456",
    "ES9121000418450200051332",
    "BE68539007547034",
    "CH9300762011623852957",
    "AT611904300234573201",
    "PT50000201231234567890154",
    "PL61109010140000071219812874",
    "NO9386011117947",
    "FI2112345600000785",
    "MC5811222000010123456789030",
    "SM86U0322509800000000270100",
    "AD1200012030200359100100",
    "VA59001123000012345678",
    "GI75NWBK000000007099453",
    "IE29AIBK93115212345678",
    "MT84MALT011000012345MTLCAST001S",
    "LI21088100002324013AA",
    # joined the SEPA scope in 2024-2025
    "ME25505000012345678951",
    "MK07250120000058984",
    "RS35260005601001611379",
    "MD24AG000225100013104168",
]

# Same accounts with a broken national check key and recomputed ISO check digits, so that
# the national key is the only fault.
BROKEN_NATIONAL_KEYS = [
    with_iso_check_digits("FR", "30006000011234567890188"),  # RIB key 89 -> 88
    with_iso_check_digits("IT", "Y0542811101000000123456"),  # CIN X -> Y
    with_iso_check_digits("ES", "21000418460200051332"),  # DC 45 -> 46
    with_iso_check_digits("BE", "539007547035"),  # mod 97 key 34 -> 35
]


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_valid_sepa_ibans_validate_to_their_compact_form(iban: str) -> None:
    assert validate_iban(iban) == iban
    assert is_valid_iban(iban)


def test_iban_is_compacted_and_upper_cased() -> None:
    assert compact_iban("fr76 3000 6000 0112 3456 7890 189") == "FR7630006000011234567890189"
    assert validate_iban("fr76 3000\u00a06000 0112 3456 7890 189") == "FR7630006000011234567890189"


@pytest.mark.parametrize("iban", BROKEN_NATIONAL_KEYS)
def test_iban_with_a_wrong_national_check_key_is_refused(iban: str) -> None:
    # The ISO check digits alone are fine: schwifty accepts it without validate_bban.
    assert schwifty.IBAN(iban).is_valid
    with pytest.raises(errors.InvalidChecksum) as caught:
        validate_iban(iban)
    assert caught.value.rule == "fails its national check digits"
    assert caught.value.reason_code == "AC01"


@pytest.mark.parametrize(
    ("iban", "error", "rule"),
    [
        ("DE88370400440532013000", errors.InvalidChecksum, "fails its ISO 7064 MOD 97-10 check digits"),
        ("FR7730006000011234567890189", errors.InvalidChecksum, "fails its ISO 7064 MOD 97-10 check digits"),
        ("DE8937040044053201300", errors.InvalidLength, "does not have the length of a DE IBAN"),
        ("NL91ABNA04171643001", errors.InvalidLength, "does not have the length of a NL IBAN"),
        ("", errors.InvalidLength, "is empty"),
        ("   ", errors.InvalidLength, "is empty"),
        ("DE89" + "0" * 40, errors.InvalidLength, "is longer than 34 characters"),
        ("DE89-3704-0044-0532-0130-00", errors.InvalidFormat, "may only contain letters A-Z and digits"),
        ("DE89370400440532013ÄÖ", errors.InvalidFormat, "may only contain letters A-Z and digits"),
        # "ﬁ".upper() == "FI": a ligature must not turn into a valid Finnish IBAN
        ("\ufb012112345600000785", errors.InvalidFormat, "may only contain letters A-Z and digits"),
        ("8937040044053201300DE", errors.InvalidFormat, "must start with a country code and two check digits"),
        (
            with_iso_check_digits("GB", "BUKB2020155555555X"),
            errors.InvalidFormat,
            "does not match the account format of its country",
        ),
        ("XX89370400440532013000", errors.UnsupportedCountry, "has an unknown country code"),
        ("BR1800360305000010009795493C1", errors.UnsupportedCountry, "is from BR, not a SEPA scheme country"),
        ("SA0380000000608010167519", errors.UnsupportedCountry, "is from SA, not a SEPA scheme country"),
        ("NC8420041010050500013M02606", errors.UnsupportedCountry, "is from NC, not a SEPA scheme country"),
        (*BROKEN_NATIONAL_KEYS[:1], errors.InvalidChecksum, "fails its national check digits"),
    ],
)
def test_wrong_ibans_are_refused_with_their_rule(
    iban: str, error: type[errors.SepaEngineError], rule: str
) -> None:
    with pytest.raises(error) as caught:
        validate_iban(iban, field="debtor_iban")
    assert type(caught.value) is error
    assert caught.value.rule == rule
    assert caught.value.field == "debtor_iban"
    assert caught.value.code == error.code
    assert caught.value.reason_code == "AC01"
    assert caught.value.value == iban  # the raw value stays available to the caller
    assert not is_valid_iban(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "DE88370400440532013000",
        "DE88 3704 0044 0532 0130 00",
        "BR1800360305000010009795493C1",
        "DE8937040044053201300",
        *BROKEN_NATIONAL_KEYS,
    ],
)
def test_iban_errors_never_show_the_clear_iban(iban: str) -> None:
    with pytest.raises(errors.SepaEngineError) as caught:
        validate_iban(iban)
    compact = "".join(iban.split())
    shown = str(caught.value) + repr(caught.value) + str(caught.value.to_dict()["value"])
    assert compact not in shown
    assert iban not in shown
    # ...but enough of it to recognise the account
    assert compact[:4] in str(caught.value) and compact[-4:] in str(caught.value)


def test_sepa_scope_differs_from_schwifty_where_documented() -> None:
    # If schwifty's data changes, revisit SEPA_COUNTRIES and its comment.
    assert not schwifty.IBAN("AL47212110090000000235698741").in_sepa_zone
    assert "AL" in SEPA_COUNTRIES
    assert schwifty.IBAN("NC8420041010050500013M02606").in_sepa_zone
    assert "NC" not in SEPA_COUNTRIES


def test_iban_of_a_country_without_national_algorithm_passes_with_a_warning() -> None:
    with pytest.warns(NationalChecksumNotVerified):
        assert validate_iban("SE4550000000058398257466") == "SE4550000000058398257466"


def test_iban_whose_national_digits_cannot_be_verified_is_refused_when_the_warning_is_an_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", NationalChecksumNotVerified)
        with pytest.raises(errors.InvalidChecksum, match="cannot be verified"):
            validate_iban("AL47212110090000000235698741")
        assert not is_valid_iban("HU42117730161111101800000000")


# --- BIC -----------------------------------------------------------------------------------
BIC_STRUCTURE = "must be 4 letters, 2 country letters, then 2 or 5 letters or digits"

@pytest.mark.parametrize(
    ("bic", "compact"),
    [
        ("DEUTDEFF", "DEUTDEFF"),
        ("DEUTDEFF500", "DEUTDEFF500"),
        ("deut de ff", "DEUTDEFF"),
        ("BNPAFRPPXXX", "BNPAFRPPXXX"),
        ("ABNANL2A", "ABNANL2A"),
        ("COBADEFFXXX", "COBADEFFXXX"),
        # not in schwifty's bank registry, structurally fine
        ("ZZZZDEFF", "ZZZZDEFF"),
    ],
)
def test_valid_bics_validate_to_upper_case_compact_form(bic: str, compact: str) -> None:
    assert compact_bic(bic) == compact
    assert validate_bic(bic) == compact
    assert is_valid_bic(bic)


@pytest.mark.parametrize(
    ("bic", "error", "rule"),
    [
        ("DEUTDEF", errors.InvalidLength, "must have 8 or 11 characters"),
        ("DEUTDEFF5", errors.InvalidLength, "must have 8 or 11 characters"),
        ("DEUTDEFF50012", errors.InvalidLength, "must have 8 or 11 characters"),
        ("", errors.InvalidLength, "must have 8 or 11 characters"),
        # a ligature is not up-cased into "FF"
        ("DEUTDE\ufb00", errors.InvalidFormat, BIC_STRUCTURE),
        ("DEUTDE\u017f\u017f", errors.InvalidFormat, BIC_STRUCTURE),  # long s: "ſ".upper() == "S"
        ("DEUTDEFF50!", errors.InvalidFormat, BIC_STRUCTURE),
        ("1234DEFF", errors.InvalidFormat, BIC_STRUCTURE),
        ("DEUT-DEFF", errors.InvalidLength, "must have 8 or 11 characters"),
        ("DEUTXXFF", errors.UnsupportedCountry, "has an unknown country code in positions 5-6"),
        ("DEUTDE01", errors.InvalidFormat, "has a location code (positions 7-8) that SEPA files refuse"),
        ("DEUTDEFO", errors.InvalidFormat, "has a location code (positions 7-8) that SEPA files refuse"),
    ],
)
def test_wrong_bics_are_refused_with_their_rule(
    bic: str, error: type[errors.SepaEngineError], rule: str
) -> None:
    with pytest.raises(error) as caught:
        validate_bic(bic, field="debtor_bic")
    assert type(caught.value) is error
    assert caught.value.rule == rule
    assert caught.value.field == "debtor_bic"
    assert caught.value.code == error.code
    assert caught.value.reason_code == "RC01"
    assert not is_valid_bic(bic)


# --- creditor identifier -------------------------------------------------------------------
RULES_WORKED_EXAMPLES = [
    "DE98ZZZ09999999999",
    "NL64ZZZ321096320000",
    "FR72ZZZ123456",
    "IT66ZZZA1B2C3D4E5F6G7H8",
    "ES59ZZZX1234567L",
    # the business code is outside the checksum
    "DE98ABC09999999999",
]
SAMPLE_FILE_CIS_THAT_FAIL = [
    "DE00ZZZ00099999999",
    "IE03ZZZ123456",
    "NL89ZZZ011234567890",
    "BG40ZZZ507778",
]


@pytest.mark.parametrize("ci", RULES_WORKED_EXAMPLES)
def test_rules_worked_example_creditor_ids_are_valid(ci: str) -> None:
    assert validate_creditor_id(ci) == ci
    assert is_valid_creditor_id(ci)


@pytest.mark.parametrize("ci", SAMPLE_FILE_CIS_THAT_FAIL)
def test_creditor_ids_from_the_sample_files_fail_the_checksum(ci: str) -> None:
    with pytest.raises(errors.InvalidChecksum) as caught:
        validate_creditor_id(ci, field="creditor_scheme_id")
    assert "ISO 7064 MOD 97-10" in caught.value.rule
    assert caught.value.field == "creditor_scheme_id"
    assert caught.value.code == "invalid_checksum"
    assert caught.value.reason_code is None
    assert not is_valid_creditor_id(ci)


@pytest.mark.parametrize(
    ("ci", "compact"),
    [
        ("de98 zzz 09999999999", "DE98ZZZ09999999999"),
        ("DE98-ZZZ-0999.9999/999", "DE98ZZZ09999999999"),
        # stdnum's compact() alone would drop this lower-case "m"
        ("de98zzzm09999999999", "DE98ZZZM09999999999"),
    ],
)
def test_creditor_id_is_compacted_like_python_stdnum_without_losing_letters(ci: str, compact: str) -> None:
    assert compact_creditor_id(ci) == compact


def test_creditor_id_with_a_lower_case_m_is_not_silently_repaired() -> None:
    assert at_02.is_valid("de98zzzm09999999999")  # stdnum's own verdict, after dropping the m
    assert not is_valid_creditor_id("de98zzzm09999999999")


def test_creditor_id_check_digits_outside_02_to_98_are_refused() -> None:
    # "n mod 97 == 1" also holds for 99 where 02 is due; MOD 97-10 never produces 99.
    body = "ZZZ00000000030"
    assert at_02.calc_check_digits("DE00" + body) == "02"
    assert validate_creditor_id("DE02" + body) == "DE02" + body
    assert at_02.is_valid("DE99" + body)
    with pytest.raises(errors.InvalidChecksum, match="outside 02-98"):
        validate_creditor_id("DE99" + body)


def _with_ci_check_digits(ci: str) -> str:
    return ci[:2] + at_02.calc_check_digits(ci) + ci[4:]


@pytest.mark.parametrize(
    ("ci", "error", "rule"),
    [
        ("", errors.InvalidLength, "is empty"),
        ("DE98ZZZ", errors.InvalidLength, "is shorter than 8 characters"),
        (_with_ci_check_digits("DE00ZZZ" + "9" * 29), errors.InvalidLength, "is longer than 35 characters"),
        (
            "9898ZZZ09999999999",
            errors.InvalidFormat,
            "must be a country code, two check digits, a 3-character business code "
            "and a national identifier of letters and digits",
        ),
        (
            "DE9XZZZ09999999999",
            errors.InvalidFormat,
            "must be a country code, two check digits, a 3-character business code "
            "and a national identifier of letters and digits",
        ),
        (
            "DE98ZZZ0999999999é",
            errors.InvalidFormat,
            "must be a country code, two check digits, a 3-character business code "
            "and a national identifier of letters and digits",
        ),
        (_with_ci_check_digits("US00ZZZ09999999999"), errors.UnsupportedCountry, "is from US, not a SEPA scheme country"),
        ("DE97ZZZ09999999999", errors.InvalidChecksum, "fails its ISO 7064 MOD 97-10 check digits"),
    ],
)
def test_wrong_creditor_ids_are_refused_with_their_rule(
    ci: str, error: type[errors.SepaEngineError], rule: str
) -> None:
    with pytest.raises(error) as caught:
        validate_creditor_id(ci)
    assert type(caught.value) is error
    assert caught.value.rule == rule
    assert caught.value.field == "creditor_id"
    assert caught.value.reason_code is None
    assert not is_valid_creditor_id(ci)


# --- references and mandate references -----------------------------------------------------
VALID_REFERENCES = [
    "A",
    "x" * 35,
    "INV-2026/11-0001",
    "E2E (1) ?:.,'+",
    "a b",
]


@pytest.mark.parametrize("reference", VALID_REFERENCES)
def test_valid_references_are_returned_unchanged(reference: str) -> None:
    assert validate_reference(reference, "end_to_end_id") == reference
    assert is_valid_reference(reference)


@pytest.mark.parametrize(
    ("reference", "error", "rule"),
    [
        ("", errors.InvalidLength, "is empty: 1 to 35 characters"),
        ("x" * 36, errors.InvalidLength, "is longer than 35 characters"),
        ("ab_c", errors.InvalidCharacters, "has characters outside the SEPA set: '_' at position 3"),
        (
            "Müller&Co",
            errors.InvalidCharacters,
            "has characters outside the SEPA set: 'ü' at position 2, '&' at position 7",
        ),
        ("tab\tref", errors.InvalidCharacters, "has characters outside the SEPA set: '\\t' at position 4"),
        (" ", errors.InvalidFormat, "must not start or end with a space"),
        (" padded", errors.InvalidFormat, "must not start or end with a space"),
        ("padded ", errors.InvalidFormat, "must not start or end with a space"),
        ("/abc", errors.InvalidFormat, "must not start with '/'"),
        ("/", errors.InvalidFormat, "must not start with '/'"),
        ("abc/", errors.InvalidFormat, "must not end with '/'"),
        ("a//b", errors.InvalidFormat, "must not contain '//'"),
    ],
)
def test_wrong_references_are_refused_with_their_rule(
    reference: str, error: type[errors.SepaEngineError], rule: str
) -> None:
    with pytest.raises(error) as caught:
        validate_reference(reference, "end_to_end_id")
    assert type(caught.value) is error
    assert caught.value.rule == rule
    assert caught.value.field == "end_to_end_id"
    assert caught.value.reason_code is None
    assert not is_valid_reference(reference)


def test_reference_with_many_bad_characters_lists_five_and_counts_the_rest() -> None:
    with pytest.raises(errors.InvalidCharacters, match="and 2 more"):
        validate_reference("a_b_c_d_e_f_g_", "message_id")


@pytest.mark.parametrize("mandate_id", ["MANDATE-2026-0001", "M/1", "m" * 35, "(A)?:.,'+"])
def test_valid_mandate_ids_are_returned_unchanged(mandate_id: str) -> None:
    assert validate_mandate_id(mandate_id) == mandate_id
    assert is_valid_mandate_id(mandate_id)


@pytest.mark.parametrize(
    ("mandate_id", "error", "rule"),
    [
        (
            "MANDATE 1",
            errors.InvalidCharacters,
            "has characters outside a mandate reference (SEPA set without space): ' ' at position 8",
        ),
        ("", errors.InvalidLength, "is empty: 1 to 35 characters"),
        ("M" * 36, errors.InvalidLength, "is longer than 35 characters"),
        ("/M1", errors.InvalidFormat, "must not start with '/'"),
        ("M1/", errors.InvalidFormat, "must not end with '/'"),
        ("M//1", errors.InvalidFormat, "must not contain '//'"),
    ],
)
def test_wrong_mandate_ids_are_refused_with_md02(
    mandate_id: str, error: type[errors.SepaEngineError], rule: str
) -> None:
    with pytest.raises(error) as caught:
        validate_mandate_id(mandate_id)
    assert type(caught.value) is error
    assert caught.value.rule == rule
    assert caught.value.field == "mandate_id"
    assert caught.value.reason_code == "MD02"
    assert not is_valid_mandate_id(mandate_id)


def test_mandate_id_errors_mask_the_reference() -> None:
    with pytest.raises(errors.InvalidCharacters) as caught:
        validate_mandate_id("DUPONT-JEANNE 2026")
    assert "DUPONT-JEANNE" not in str(caught.value)
    assert caught.value.value == "DUPONT-JEANNE 2026"


# --- robustness ----------------------------------------------------------------------------
IS_VALID = [is_valid_iban, is_valid_bic, is_valid_creditor_id, is_valid_reference, is_valid_mandate_id]
JUNK: list[object] = [
    None,
    0,
    1.5,
    b"x",
    b"DE89370400440532013000",
    "",
    " ",
    "\x00",
    "x" * 10_000,
    "9" * 10_000,
    "😀",
    "\ud800",
    ["DE89370400440532013000"],
    object(),
]


@pytest.mark.parametrize("is_valid", IS_VALID, ids=lambda f: f.__name__)
@pytest.mark.parametrize("junk", JUNK, ids=lambda v: type(v).__name__ + str(len(repr(v))))
def test_is_valid_returns_false_on_junk_without_raising(is_valid: Callable[[object], bool], junk: object) -> None:
    assert is_valid(junk) is False


VALIDATE = [validate_iban, validate_bic, validate_creditor_id, validate_reference, validate_mandate_id]
ANYTHING = st.one_of(st.text(), st.binary(), st.integers(), st.floats(), st.none())


@pytest.mark.parametrize("validate", VALIDATE, ids=lambda f: f.__name__)
@given(value=ANYTHING)
def test_validators_raise_only_engine_errors(validate: Callable[[object], str], value: object) -> None:
    try:
        validate(value)
    except errors.SepaEngineError as error:
        assert str(error)
