from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sepa_engine import errors
from sepa_engine.domain.charset import (
    SEPA_CHARACTERS,
    invalid_characters,
    is_sepa_text,
    to_sepa_text,
)


def test_the_sepa_set_is_exactly_basic_latin_letters_digits_and_nine_marks() -> None:
    assert len(SEPA_CHARACTERS) == 26 + 26 + 10 + len("/-?:().,'+ ")
    assert set("/-?:().,'+ ") <= SEPA_CHARACTERS
    assert not {"&", "_", '"', "@", "ä", "\t"} & SEPA_CHARACTERS


@pytest.mark.parametrize("value", ["", "Jeanne Dupont", "INV-2026/11 (c) 12.34, ok? +1:'x'"])
def test_text_of_sepa_characters_is_sepa_text(value: str) -> None:
    assert is_sepa_text(value)
    assert invalid_characters(value) == []


@pytest.mark.parametrize("value", ["Müller", "a_b", "a&b", "tab\there", "😀", None, 12, b"abc"])
def test_anything_else_is_not_sepa_text(value: object) -> None:
    assert not is_sepa_text(value)


def test_invalid_characters_are_reported_with_their_index() -> None:
    assert invalid_characters("Zoë & Co_") == [(2, "ë"), (4, "&"), (8, "_")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # accented Latin letters lose their accent
        ("Élodie Françoise", "Elodie Francoise"),
        ("Ça coûte", "Ca coute"),
        ("Peña Núñez", "Pena Nunez"),
        ("Åsa Ångström", "Asa Angstroem"),
        ("Dvořák Čapek", "Dvorak Capek"),
        # letters with a stroke have no Unicode decomposition: the table handles them
        ("Søren Ørsted", "Soren Orsted"),
        ("Łódź Wałęsa", "Lodz Walesa"),
        ("Đorđe", "Dorde"),
        ("Þór Guðmundsson", "THor Gudmundsson"),
        # German umlauts and sharp s follow the DK convention
        ("Müller Söhne Bär", "Mueller Soehne Baer"),
        ("ÄRGER ÖL ÜBER", "AeRGER OeL UeBER"),
        ("Straße", "Strasse"),
        # a decomposed umlaut (a + combining diaeresis) is still an umlaut
        ("Ba\u0308r", "Baer"),
        ("Æble Œuvre cœur", "AEble OEuvre coeur"),
        ("Müller & Söhne", "Mueller + Soehne"),
        # quotes, apostrophes and dashes
        ("l’été d‘un „Haus“ «chez» \"x\"", "l'ete d'un 'Haus' 'chez' 'x'"),
        ("2026–11 — end", "2026-11 - end"),
        ("order_id", "order-id"),
        ("10 €", "10 EUR"),
        ("½ price", "1/2 price"),
        ("ﬁnance ＡＢＣ", "finance ABC"),
        # whitespace is collapsed and stripped
        ("  line one\n\tline two \r\n", "line one line two"),
        ("a\u00a0\u2003b", "a b"),
        # no mapping: left out
        ("Hello 😀 world", "Hello world"),
        ("mail@example.com #1 *", "mailexample.com 1"),
        ("ctrl\x00\x07char", "ctrlchar"),
        ("", ""),
    ],
)
def test_free_text_is_transliterated_to_the_sepa_set(value: str, expected: str) -> None:
    assert to_sepa_text(value) == expected


def test_text_without_any_latin_letter_becomes_empty() -> None:
    # Documented gap: Greek and Cyrillic are not transliterated.
    assert to_sepa_text("Αθήνα Москва") == ""


@pytest.mark.parametrize(
    ("value", "max_length", "expected"),
    [
        ("Jeanne Dupont", 7, "Jeanne"),
        ("Jeanne Dupont", 6, "Jeanne"),
        ("Müller", 3, "Mue"),
        ("short", 70, "short"),
        ("anything", 0, ""),
    ],
)
def test_text_is_cut_to_its_maximum_without_a_trailing_space(
    value: str, max_length: int, expected: str
) -> None:
    assert to_sepa_text(value, max_length) == expected


def test_a_negative_maximum_length_is_refused() -> None:
    with pytest.raises(errors.InvalidLength) as caught:
        to_sepa_text("abc", -1)
    assert caught.value.field == "max_length"


@pytest.mark.parametrize("value", [None, 12, b"abc"])
def test_transliterating_something_other_than_text_is_refused(value: object) -> None:
    with pytest.raises(errors.InvalidFormat) as caught:
        to_sepa_text(value)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_format"


@given(st.text(), st.one_of(st.none(), st.integers(min_value=0, max_value=200)))
def test_transliterated_text_is_always_sepa_text_within_its_length(
    value: str, max_length: int | None
) -> None:
    result = to_sepa_text(value, max_length)
    assert is_sepa_text(result)
    if max_length is not None:
        assert len(result) <= max_length
    assert result == result.strip(" ")
    assert "  " not in result
    assert to_sepa_text(result, max_length) == result
