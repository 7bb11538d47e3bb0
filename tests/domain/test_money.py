from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sepa_engine import errors
from sepa_engine.domain.money import (
    MAX_CENTS,
    MIN_CENTS,
    cents_to_decimal,
    check_cents,
    format_cents,
    parse_amount,
    read_cents,
)


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        ("12", 1200),
        ("12.3", 1230),
        ("12.34", 1234),
        ("0.01", 1),
        ("0.5", 50),
        ("007.50", 750),
        ("  12.34\n", 1234),
        ("999999999.99", MAX_CENTS),
        (Decimal("12.34"), 1234),
        (Decimal("12.340"), 1234),
        (Decimal("1E+2"), 10000),
        (Decimal("0.01"), 1),
        (Decimal("999999999.99"), MAX_CENTS),
    ],
)
def test_valid_amounts_parse_to_exact_cents(value: str | Decimal, cents: int) -> None:
    assert parse_amount(value) == cents


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("12.345", "has more than two decimals"),
        ("12.340", "has more than two decimals"),
        ("0.001", "has more than two decimals"),
        ("-12.34", "is negative"),
        ("-0", "is negative"),
        ("0", "must be at least 0.01"),
        ("0.00", "must be at least 0.01"),
        ("1000000000", "must be at most 999999999.99"),
        ("999999999.991", "has more than two decimals"),
        ("1" + "0" * 10_000, "must be at most 999999999.99"),
        ("NaN", "is not a finite number"),
        ("-Infinity", "is not a finite number"),
        ("inf", "is not a finite number"),
        ("1e3", "uses exponent notation"),
        ("1.5E-2", "uses exponent notation"),
        ("1,000.00", "contains a thousands separator"),
        ("1 000", "contains a thousands separator"),
        ("1_000", "contains a thousands separator"),
        ("12,34", "uses a comma: write euros and cents with a dot, e.g. 12.34"),
        ("1.000.000", "has more than one decimal point"),
        ("+12", "must not carry a sign"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("twelve", "is not a number: write euros and cents with a dot, e.g. 12.34"),
        (".5", "is not a number: write euros and cents with a dot, e.g. 12.34"),
        ("12.", "is not a number: write euros and cents with a dot, e.g. 12.34"),
        ("١٢", "is not a number: write euros and cents with a dot, e.g. 12.34"),
        ("12 EUR", "is not a number: write euros and cents with a dot, e.g. 12.34"),
    ],
)
def test_malformed_amount_text_is_refused_with_its_rule(value: str, rule: str) -> None:
    with pytest.raises(errors.InvalidAmount) as caught:
        parse_amount(value, field="instructed_amount")
    assert caught.value.rule == rule
    assert caught.value.field == "instructed_amount"
    assert caught.value.code == "invalid_amount"
    assert caught.value.reason_code is None


def test_amount_with_three_decimals_is_refused() -> None:
    with pytest.raises(errors.InvalidAmount, match="has more than two decimals"):
        parse_amount("12.345")


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (Decimal("12.345"), "has more than two decimals"),
        # value * 100 would round this to a whole cent at 28 digits of precision
        (Decimal("1.00000000000000000000000000001"), "has more than two decimals"),
        (Decimal("-1"), "is negative"),
        (Decimal("0"), "must be at least 0.01"),
        (Decimal("-0"), "must be at least 0.01"),
        (Decimal("0E+999999999"), "must be at least 0.01"),
        (Decimal("1E-999999"), "has more than two decimals"),
        (Decimal("1000000000"), "must be at most 999999999.99"),
        (Decimal("NaN"), "is not a finite number"),
        (Decimal("sNaN"), "is not a finite number"),
        (Decimal("Infinity"), "is not a finite number"),
    ],
)
def test_decimal_amounts_outside_the_rules_are_refused(value: Decimal, rule: str) -> None:
    with pytest.raises(errors.InvalidAmount) as caught:
        parse_amount(value)
    assert caught.value.rule == rule
    assert caught.value.field == "amount"


def test_float_amount_is_refused_with_a_message_about_floats() -> None:
    with pytest.raises(errors.InvalidAmount) as caught:
        parse_amount(12.34)  # type: ignore[arg-type]
    assert "floats are not accepted for money" in caught.value.rule


def test_int_amount_is_refused_because_the_unit_would_be_a_guess() -> None:
    with pytest.raises(errors.InvalidAmount) as caught:
        parse_amount(1234)  # type: ignore[arg-type]
    assert "check_cents" in caught.value.rule


@pytest.mark.parametrize("value", [True, None, b"12.34", ["12"], object()])
def test_amount_of_another_type_is_refused(value: object) -> None:
    with pytest.raises(errors.InvalidAmount):
        parse_amount(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("cents", [MIN_CENTS, 1234, MAX_CENTS])
def test_cents_within_the_sepa_limits_are_returned_unchanged(cents: int) -> None:
    assert check_cents(cents) == cents


@pytest.mark.parametrize(
    ("cents", "rule"),
    [
        (0, "must be at least 0.01"),
        (-5, "is negative"),
        (MAX_CENTS + 1, "must be at most 999999999.99"),
    ],
)
def test_cents_outside_the_sepa_limits_are_refused(cents: int, rule: str) -> None:
    with pytest.raises(errors.InvalidAmount) as caught:
        check_cents(cents, field="amount_cents")
    assert caught.value.rule == rule
    assert caught.value.field == "amount_cents"


@pytest.mark.parametrize("cents", [12.0, True, "1234", Decimal("1234"), None])
def test_cents_must_be_a_plain_int(cents: object) -> None:
    with pytest.raises(errors.InvalidAmount):
        check_cents(cents)  # type: ignore[arg-type]


def test_float_cents_are_refused_with_a_message_about_floats() -> None:
    with pytest.raises(errors.InvalidAmount, match="floats are not accepted for money"):
        check_cents(1234.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (1234, "12.34"),
        (5, "0.05"),
        (100000, "1000.00"),
        (0, "0.00"),
        (MAX_CENTS, "999999999.99"),
        # control sums of a whole file may exceed one transaction's maximum
        (MAX_CENTS * 3, "2999999999.97"),
    ],
)
def test_cents_format_as_xml_amounts(cents: int, text: str) -> None:
    assert format_cents(cents) == text


def test_formatting_negative_cents_is_refused() -> None:
    with pytest.raises(errors.InvalidAmount, match="is negative"):
        format_cents(-1)


@pytest.mark.parametrize("cents", [1.5, True, "12"])
def test_formatting_something_other_than_int_cents_is_refused(cents: object) -> None:
    with pytest.raises(errors.InvalidAmount):
        format_cents(cents)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cents", "decimal"),
    [
        (1234, Decimal("12.34")),
        (5, Decimal("0.05")),
        (-250, Decimal("-2.50")),
        (10**40 + 1, Decimal("1" + "0" * 38 + ".01")),
    ],
)
def test_cents_convert_to_an_exact_two_place_decimal(cents: int, decimal: Decimal) -> None:
    converted = cents_to_decimal(cents)
    assert converted == decimal
    assert converted.as_tuple().exponent == -2


@given(st.integers(min_value=MIN_CENTS, max_value=MAX_CENTS))
def test_formatted_amounts_parse_back_to_the_same_cents(cents: int) -> None:
    assert parse_amount(format_cents(cents)) == cents
    assert format_cents(parse_amount(format_cents(cents))) == format_cents(cents)
    assert parse_amount(cents_to_decimal(cents)) == cents


# --- the same parser for stored inputs (sepa_range=False) and for others' files (read_cents)


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999.99"), places=2))
def test_the_fast_path_for_plain_text_gives_the_cents_the_decimal_path_gives(amount: Decimal) -> None:
    text = f"{amount:.2f}"
    assert parse_amount(text) == parse_amount(Decimal(text)) == parse_amount(f" {text}")


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        ("0", 0),
        ("0.00", 0),
        (Decimal("0"), 0),
        ("1000000000", 100_000_000_000),
        ("999999999999999.99", 99_999_999_999_999_999),
        (Decimal("1E+14"), 10**16),
        (Decimal("12.340"), 1234),
        ("12.34", 1234),
    ],
)
def test_outside_the_sepa_range_storable_amounts_are_returned(value: str | Decimal, cents: int) -> None:
    assert parse_amount(value, sepa_range=False) == cents


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("1" + "0" * 15, "has more than 15 digits before the decimal point"),
        (Decimal("1E+15"), "has more than 15 digits before the decimal point"),
        ("12.345", "has more than two decimals"),
        ("-1", "is negative"),
        (Decimal("-1"), "is negative"),
        ("1,5", "uses a comma: write euros and cents with a dot, e.g. 12.34"),
        (Decimal("NaN"), "is not a finite number"),
    ],
)
def test_outside_the_sepa_range_malformed_amounts_are_still_refused(value: str | Decimal, rule: str) -> None:
    with pytest.raises(errors.InvalidAmount) as caught:
        parse_amount(value, "InstdAmt", sepa_range=False)
    assert caught.value.rule == rule
    assert caught.value.field == "InstdAmt"


def test_outside_the_sepa_range_floats_are_still_refused() -> None:
    with pytest.raises(errors.InvalidAmount, match="float"):
        parse_amount(12.5, sepa_range=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("276", 27600),
        ("46.3", 4630),
        ("+5", 500),
        (".5", 50),
        ("100.", 10000),
        ("12.3400", 1234),
        ("0.00", 0),
        (" 7.5\n", 750),
        ("1000000000.30", 100_000_000_030),
        ("9" * 18, int("9" * 18) * 100),
    ],
)
def test_amounts_of_others_files_are_read_as_xs_decimal(text: str, cents: int) -> None:
    assert read_cents(text) == cents


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (None, "is missing"),
        ("", "is not a decimal amount"),
        (".", "is not a decimal amount"),
        ("-5", "is not a decimal amount"),
        ("1e3", "is not a decimal amount"),
        ("12,50", "is not a decimal amount"),
        ("NaN", "is not a decimal amount"),
        ("1.005", "has more than two decimals that are not zero"),
        ("9" * 19, "is too large"),
    ],
)
def test_unreadable_amounts_of_others_files_are_refused_with_the_field(text: str | None, rule: str) -> None:
    with pytest.raises(errors.InvalidAmount) as caught:
        read_cents(text, "CtrlSum")
    assert (caught.value.field, caught.value.rule) == ("CtrlSum", rule)
