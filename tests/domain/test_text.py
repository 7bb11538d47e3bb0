from __future__ import annotations

import datetime as dt

import pytest

from sepa_engine import errors
from sepa_engine.domain import text


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("Dupont\x00", "a NUL character"),
        ("Du\x07pont", "a control character"),
        ("Du\x7fpont", "a control character"),
        ("Du\x85pont", "a control character"),
        ("Dupont\ud800", "an unpaired surrogate"),
        ("\udfffDupont", "an unpaired surrogate"),
        ("Dupont\u202e", "a bidirectional formatting character"),
        ("Du\u2066pont", "a bidirectional formatting character"),
        ("Du\u200bpont", "a zero-width character"),
        ("\ufeffDupont", "a zero-width character"),
    ],
)
def test_control_surrogate_bidi_and_zero_width_characters_are_refused_with_the_field_named(value: str, kind: str) -> None:
    with pytest.raises(errors.InvalidCharacters) as caught:
        text.check("name", value)
    assert caught.value.field == "name"
    assert kind in caught.value.rule
    # The message never echoes the value: it may not even be printable.
    str(caught.value).encode("utf-8")


@pytest.mark.parametrize("value", ["Dupont", "Müller & Söhne", "Line one\nline two\tend\r", "Ωμέγα", "–’€", "😀", ""])
def test_ordinary_text_accents_tabs_line_breaks_and_emoji_pass(value: str) -> None:
    assert text.check("name", value) == value
    assert text.problem(value) is None


def test_the_position_of_the_first_bad_character_is_given_counting_from_one() -> None:
    assert text.problem("ab\x00") == "contains a NUL character (U+0000) at position 3, which is not allowed in text"


def test_problems_in_names_the_json_path_of_every_bad_string_and_bad_keys_by_their_object() -> None:
    document = {"debtors": [{"name": "ok"}, {"name": "x\x00"}], "bad\ud800": 1, "note": "\u200d"}
    assert [path for path, _ in text.problems_in(document)] == ["debtors[1].name", "document", "note"]


def test_length_rule_says_how_long_and_the_maximum_in_words() -> None:
    with pytest.raises(errors.InvalidLength, match="is 36 characters long, more than the 35 allowed"):
        text.check_length("reference", "x" * 36, 35)
    assert text.check_length("reference", "x" * 35, 35) == "x" * 35


def test_a_date_recording_something_done_cannot_be_in_the_future() -> None:
    today = dt.date(2026, 12, 4)
    assert text.check_past_date("signed_on", today, today) == today
    with pytest.raises(errors.InvalidDate, match="is in the future"):
        text.check_past_date("signed_on", dt.date(2999, 1, 1), today)
