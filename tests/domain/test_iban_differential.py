"""validate_iban, computed step by step on the compact string (issue 16), against the way
it was computed before through schwifty's IBAN and BBAN objects: on valid and hostile
inputs, the same answer, the same error (class, rule, reason code, message) and the same
warnings."""

from __future__ import annotations

import random
import string
import warnings
from collections.abc import Callable, Iterator

import pytest
import schwifty
import schwifty.exceptions as schwifty_errors
from hypothesis import given, settings
from hypothesis import strategies as st
from schwifty import registry

from bench.ledger import debtor_iban
from sepa_engine import errors
from sepa_engine.domain.identifiers import (
    _IBAN_MAX,
    _LETTERS_AND_DIGITS,
    _NOT_A_STRING,
    IBAN_REASON,
    SEPA_COUNTRIES,
    _compact,
    _iban_format_rule,
    _masked,
    _outside_sepa,
    validate_iban,
)
from tests.domain.test_identifiers import BROKEN_NATIONAL_KEYS, VALID_IBANS, with_iso_check_digits


def reference_validate_iban(value: str, field: str = "iban") -> str:
    # sepa_engine.domain.identifiers.validate_iban before issue 16, verbatim.

    def fail(error: type[errors.SepaEngineError], rule: str) -> errors.SepaEngineError:
        return error(field, value, rule, reason_code=IBAN_REASON, shown_value=_masked(value))

    if not isinstance(value, str):
        raise fail(errors.InvalidFormat, _NOT_A_STRING)
    compact = _compact(value, field)
    if not compact:
        raise fail(errors.InvalidLength, "is empty")
    if len(compact) > _IBAN_MAX:
        raise fail(errors.InvalidLength, f"is longer than {_IBAN_MAX} characters")
    if not compact.isascii():
        # Before schwifty, which upper-cases with str.upper(): "ﬁ21..." would become "FI21...".
        raise fail(errors.InvalidFormat, _LETTERS_AND_DIGITS)
    iban = schwifty.IBAN(compact, allow_invalid=True)
    try:
        iban.validate(validate_bban=False)
    except schwifty_errors.InvalidCountryCode:
        raise fail(errors.UnsupportedCountry, "has an unknown country code") from None
    except schwifty_errors.InvalidLength:
        rule = f"does not have the length of a {iban.country_code} IBAN"
        raise fail(errors.InvalidLength, rule) from None
    except schwifty_errors.InvalidChecksumDigits:
        raise fail(errors.InvalidChecksum, "fails its ISO 7064 MOD 97-10 check digits") from None
    except schwifty_errors.SchwiftyException:
        # InvalidStructure, and anything a later schwifty adds.
        raise fail(errors.InvalidFormat, _iban_format_rule(compact)) from None
    if iban.country_code not in SEPA_COUNTRIES:
        raise fail(errors.UnsupportedCountry, _outside_sepa(iban.country_code))
    # After the scope check: schwifty warns (NationalChecksumNotVerified) for countries whose
    # national algorithm it lacks, and there is no point warning about a refused account.
    try:
        iban.bban.validate_national_checksum()
    except schwifty_errors.NationalChecksumNotVerified:
        # Only raised when the application turned that warning into an error: its choice
        # to refuse what cannot be verified, reported in our terms.
        rule = "has national check digits that cannot be verified"
        raise fail(errors.InvalidChecksum, rule) from None
    except schwifty_errors.SchwiftyException:
        raise fail(errors.InvalidChecksum, "fails its national check digits") from None
    return str(iban)


def outcome(validate: Callable[[object], str], value: object) -> tuple[object, ...]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[object, ...] = ("valid", validate(value))
        except errors.SepaEngineError as exc:
            result = ("refused", type(exc), exc.field, exc.rule, exc.reason_code, str(exc), exc.value)
    return result + tuple((w.category, str(w.message)) for w in caught)


def same(value: object) -> None:
    new = outcome(lambda v: validate_iban(v, "mandate.iban"), value)  # type: ignore[arg-type]
    old = outcome(lambda v: reference_validate_iban(v, "mandate.iban"), value)  # type: ignore[arg-type]
    assert new == old, value


def every_country_iban(rng: random.Random) -> Iterator[str]:
    """A generated IBAN of every country schwifty can generate, several German banks each
    with their own national algorithm."""
    for country in sorted(registry._default_registry._get("iban")):  # type: ignore[union-attr]
        for _ in range(12 if country == "DE" else 2):
            try:
                yield str(schwifty.IBAN.random(country, random=rng))
            except schwifty_errors.SchwiftyException:
                continue


def damaged(iban: str, rng: random.Random) -> Iterator[str]:
    alphabet = string.ascii_uppercase + string.digits
    for position in range(len(iban)):
        yield iban[:position] + rng.choice(alphabet) + iban[position + 1 :]
        yield iban[:position] + iban[position + 1 :]
        if position >= 4:
            # Right ISO digits around a changed BBAN: only the format or national check can tell.
            changed = iban[4:position] + rng.choice(alphabet) + iban[position + 1 :]
            yield with_iso_check_digits(iban[:2], changed)
    yield iban + rng.choice(alphabet)
    yield iban[:2] + iban[3] + iban[2] + iban[4:]
    yield iban.lower()
    yield " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    yield iban[:4] + iban[4:].replace("0", "O", 1)


# French and Monegasque accounts may hold letters, which the RIB key reads through its own table.
LETTERED_RIBS = [
    str(schwifty.IBAN.generate(country, bank_code="30006", branch_code="00001", account_code=account))
    for country in ("FR", "MC")
    for account in ("0000ABC1234", "ZYXWVUTSRQP", "JKLMNOPQRST", "A0B1C2D3E4F")
]
SAMPLES = (
    VALID_IBANS + BROKEN_NATIONAL_KEYS + LETTERED_RIBS + [debtor_iban(i) for i in (1, 2, 3, 10, 20, 30, 40, 99_991)]
)


def test_lettered_french_accounts_are_valid() -> None:
    for iban in LETTERED_RIBS:
        assert validate_iban(iban) == iban


def test_same_answer_for_every_valid_and_every_broken_sample() -> None:
    for value in SAMPLES:
        same(value)


def test_same_answer_for_generated_ibans_of_every_country() -> None:
    rng = random.Random(16)
    generated = list(every_country_iban(rng))
    assert len({iban[:2] for iban in generated}) > 60
    for value in generated:
        same(value)


def test_same_answer_for_damaged_ibans() -> None:
    rng = random.Random(1616)
    for iban in SAMPLES + list(every_country_iban(random.Random(7)))[::3]:
        for value in damaged(iban, rng):
            same(value)


@pytest.mark.parametrize(
    "value",
    [
        None, 12, b"FR7630006000011234567890189", ["FR76"], "", " ", "F", "FR", "FR7", "FR76", "FR76 ",
        "XX89370400440532013000", "US64SVBKUS6S3300958879", "BR1800360305000010009795493C1",
        "NC2020041010050500013M02606", "PF5720041010050500013M02606", "KZ86125KZT5004100100",
        "\ufb012112345600000785", "FR\uff17\uff16", "FR76\u0663000", "fr76 3000\u00a06000 0112 3456 7890 189",
        "DE89" + "0" * 40, "DE89-3704-0044-0532-0130-00", "FR0030006000011234567890189",
        "FR0130006000011234567890189", "FR9930006000011234567890189", "FR76\n30006000011234567890189",
        "SE4550000000058398257466", "HU42117730161111101800000000", "AL47212110090000000235698741",
    ],
)
def test_same_answer_for_hostile_values(value: object) -> None:
    same(value)


@pytest.mark.parametrize("iban", ["SE4550000000058398257466", "HU42117730161111101800000000", "AL47212110090000000235698741"])
def test_same_answer_when_unverifiable_national_digits_are_an_error(iban: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", schwifty_errors.NationalChecksumNotVerified)
        new = _refusal(lambda: validate_iban(iban))
        old = _refusal(lambda: reference_validate_iban(iban))
    assert new == old
    assert new[1] == "has national check digits that cannot be verified"


def _refusal(call: Callable[[], str]) -> tuple[object, ...]:
    try:
        return ("valid", call())
    except errors.SepaEngineError as exc:
        return (type(exc), exc.rule, exc.reason_code, str(exc))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(SEPA_COUNTRIES | {"BR", "XX", "DE", "FR"})),
    st.text(alphabet=string.ascii_uppercase + string.digits, min_size=0, max_size=32),
)
def test_same_answer_for_any_country_and_body(country: str, body: str) -> None:
    same(country + body)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_same_answer_for_any_text(value: str) -> None:
    same(value)
