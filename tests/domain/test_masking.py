"""The one masker: IBANs (two forms), IBANs inside free text, names and references."""

from __future__ import annotations

import pytest

from sepa_engine.domain.masking import mask_iban, mask_ibans_in_text, mask_name, mask_reference


@pytest.mark.parametrize(
    ("iban", "masked"),
    [
        ("FR7630006000011234567890189", "FR76*******************0189"),
        ("fr76 3000 6000 0112 3456 7890 189", "FR76*******************0189"),
        ("DE02120300000000202051", "DE02**************2051"),
        ("FR7612", "FR****"),
        ("", ""),
        (None, ""),
    ],
)
def test_iban_keeps_country_check_digits_and_last_four(iban, masked):
    assert mask_iban(iban) == masked


def test_fixed_width_iban_does_not_tell_the_length():
    assert mask_iban("FR7630006000011234567890189", fixed_width=True) == "FR76 **** **** 0189"
    assert mask_iban("DE02120300000000202051", fixed_width=True) == "DE02 **** **** 2051"


def test_ibans_inside_text_are_masked_only_when_their_checksum_holds():
    text = "debit to FR76 3000 6000 0112 3456 7890 189 refused; file SE20261204120000000001 kept"
    masked = mask_ibans_in_text(text)
    assert "3000 6000" not in masked and "FR76*******************0189" in masked
    # A message id shaped like an IBAN but failing MOD 97-10 stays readable.
    assert "SE20261204120000000001" in masked
    assert mask_ibans_in_text("BE68539007547035 (checksum off)") == "BE68539007547035 (checksum off)"


def test_names_and_references_keep_just_enough_to_recognise_them():
    assert mask_name("Jeanne  Dupont") == "J***** D*****"
    assert mask_reference("RUM-2026-0042") == "*********0042"
    assert mask_reference("ABC") == "***"
