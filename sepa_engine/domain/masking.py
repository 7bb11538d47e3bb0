"""Masking for logs and operator output: enough to recognise a record, not enough to reuse it."""

from __future__ import annotations


def mask_iban(iban: str | None) -> str:
    """Keep the country, the check digits and the last four characters: ``FR76…0189``."""
    if not iban:
        return ""
    compact = "".join(str(iban).split()).upper()
    if len(compact) <= 8:
        return compact[:2] + "*" * max(len(compact) - 2, 0)
    return f"{compact[:4]}{'*' * (len(compact) - 8)}{compact[-4:]}"


def mask_name(name: str | None) -> str:
    """First letter of each word: ``Jeanne Dupont`` -> ``J***** D*****``."""
    if not name:
        return ""
    return " ".join(word[:1] + "*" * (len(word) - 1) for word in str(name).split())


def mask_reference(reference: str | None) -> str:
    """Mandate references identify a person to anyone holding the creditor's files."""
    if not reference:
        return ""
    ref = str(reference)
    if len(ref) <= 4:
        return "*" * len(ref)
    return "*" * (len(ref) - 4) + ref[-4:]
