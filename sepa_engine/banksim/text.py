"""XML text pieces shared by the two answers: escaping and fitting values into the XSDs.

Values are echoed from a pain.008 the simulator did not validate (only its well-formedness
is checked), and the answers' schemas are narrower than the pain.008 ones: the DK
pain.002.001.03 allows 70-character names, a restricted identifier alphabet and only EUR.
Each helper here says whether a value fits, so the renderers can leave an optional
element out (or shorten a name) instead of writing a file that breaks its XSD.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TypeGuard

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"})
_NEEDS_ESCAPE = re.compile(r"[&<>\"']")

# The XSD patterns, anchored by fullmatch as XSD patterns are.
# RestrictedIdentificationSEPA1 (MsgId, PmtInfId, StsId of the DK pain.002).
_RESTRICTED_ID = re.compile(r"[A-Za-z0-9+|?/\-:().,' ]{1,35}")
# RestrictedPersonIdentifierSEPA: the creditor identifier.
_CREDITOR_ID = re.compile(r"[a-zA-Z]{2}[0-9]{2}[A-Za-z0-9+|?/\-:().,']{3}[A-Za-z0-9+|?/\-:().,']{1,28}")
_BIC = re.compile(r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9](?:[A-Z0-9]{3})?")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
SEQUENCE_TYPES = frozenset({"FRST", "RCUR", "FNAL", "OOFF"})


def x(text: str) -> str:
    # All five XML specials as entities, as our pain.008 writer does; most values have none.
    return text.translate(_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


def is_restricted_id(value: str | None) -> bool:
    return value is not None and _RESTRICTED_ID.fullmatch(value) is not None


def is_creditor_id(value: str | None) -> bool:
    return value is not None and _CREDITOR_ID.fullmatch(value) is not None


def is_bic(value: str | None) -> bool:
    return value is not None and _BIC.fullmatch(value) is not None


def is_iban(value: str | None) -> bool:
    return value is not None and _IBAN.fullmatch(value) is not None


def fits(value: str | None, max_length: int) -> TypeGuard[str]:
    """A MaxNText value: one to ``max_length`` characters (so, for the type checker, a str)."""
    return value is not None and 0 < len(value) <= max_length


def shortened(value: str | None, max_length: int) -> str | None:
    """A name cut to ``max_length`` characters (names only inform a person; ids are never cut)."""
    if not value:
        return None
    return value[:max_length]


def element(tag: str, value: str | None) -> str:
    """``<tag>value</tag>``, or nothing when the value is absent."""
    return f"<{tag}>{x(value)}</{tag}>" if value else ""


def date_text(day: dt.date) -> str:
    return day.isoformat()


def date_time_text(moment: dt.datetime) -> str:
    return moment.replace(microsecond=0).isoformat()
