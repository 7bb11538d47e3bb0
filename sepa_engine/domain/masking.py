"""Masking for logs and operator output: enough to recognise a record, not enough to reuse it.

The one place IBANs, names and references are masked: logs, error messages, the API, the
review summaries and ``describe --mask`` all call these functions.
"""

from __future__ import annotations

import re

from schwifty import IBAN

# Two letters, two digits, then 10-30 alphanumerics (optionally grouped by spaces).
_IBAN_IN_TEXT = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")


def mask_iban(iban: str | None, *, fixed_width: bool = False) -> str:
    """Keep the country, the check digits and the last four characters: ``FR76*******************0189``.

    ``fixed_width`` gives ``FR76 **** **** 0189`` whatever the length, so the mask does not
    even tell the country's IBAN length (the review summaries a person reads).
    """
    if not iban:
        return ""
    compact = "".join(str(iban).split()).upper()
    if len(compact) <= 8:
        return compact[:2] + "*" * max(len(compact) - 2, 0)
    if fixed_width:
        return f"{compact[:4]} **** **** {compact[-4:]}"
    return f"{compact[:4]}{'*' * (len(compact) - 8)}{compact[-4:]}"


def mask_ibans_in_text(text: str) -> str:
    """Every IBAN inside free text masked, other IBAN-shaped tokens left alone.

    Message ids (SE2026...) share an IBAN's shape, and about one in 97 passes the MOD 97-10
    check digits alone; a token is masked only when schwifty accepts it as an IBAN of its
    country (ISO 13616 registry: length and BBAN structure, then the check digits), so ids
    stay readable and real IBANs never show.
    """
    return _IBAN_IN_TEXT.sub(_mask_if_iban, text)


def _mask_if_iban(match: re.Match[str]) -> str:
    token = match.group(0)
    try:
        IBAN(token)
    except ValueError:  # schwifty's exceptions are ValueErrors
        return token
    return mask_iban(token)


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
