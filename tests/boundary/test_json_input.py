from __future__ import annotations

import pytest

from sepa_engine import errors, json_input


def test_json_nested_100000_deep_is_refused_before_parsing_instead_of_a_recursion_error() -> None:
    raw = "[" * 100_000 + "]" * 100_000
    with pytest.raises(errors.InvalidFormat, match="nests arrays and objects 100000 deep, more than the 64 allowed"):
        json_input.loads(raw, "line")


def test_nesting_up_to_the_limit_is_read_and_brackets_inside_strings_do_not_count() -> None:
    assert json_input.loads("[" * 64 + "]" * 64) is not None
    assert json_input.loads('{"a": "' + "[" * 1000 + '\\" {"}') == {"a": "[" * 1000 + '" {'}
    with pytest.raises(errors.InvalidFormat):
        json_input.loads("[" * 65 + "]" * 65)


def test_a_key_given_twice_in_one_object_is_refused_naming_the_key() -> None:
    with pytest.raises(errors.InvalidFormat, match="the key 'amount' appears twice in one object") as caught:
        json_input.loads('{"amount": "1.00", "mandate": "M", "amount": "900.00"}', "line")
    assert caught.value.field == "line"
    assert json_input.loads('{"a": {"x": 1}, "b": {"x": 2}}') == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize("raw", ["NaN", '{"amount": Infinity}', "[-Infinity]"])
def test_nan_and_infinity_are_not_json(raw: str) -> None:
    with pytest.raises(errors.InvalidFormat, match="is not allowed in JSON"):
        json_input.loads(raw)


def test_bytes_that_are_not_utf8_are_refused_with_the_byte_position() -> None:
    with pytest.raises(errors.InvalidFormat, match=r"is not UTF-8 text \(byte 3\)"):
        json_input.loads(b'"a\xff"', "body")


def test_check_text_names_the_path_of_the_first_bad_string() -> None:
    with pytest.raises(errors.InvalidCharacters) as caught:
        json_input.check_text(json_input.loads('{"invoices": [{"label": "x\\u0000"}]}'))
    assert caught.value.field == "invoices[0].label"
