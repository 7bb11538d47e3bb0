"""The SEPA basic Latin character set, and transliteration of free text into it.

Banks only have to accept ``a-z A-Z 0-9 / - ? : ( ) . , ' +`` and space (EPC217-08). Free
text (names, addresses, remittance information) is converted with ``to_sepa_text``;
identifiers and references are never converted, only checked (see ``identifiers.py``).

How ``to_sepa_text`` converts one character, first rule that applies:

1. in the SEPA set: kept;
2. in ``_TABLE`` below: replaced (the table wins over Unicode decomposition, so that
   ``ä`` becomes ``ae`` and not ``a``);
3. whitespace (tab, newline, no-break space...): a space;
4. otherwise its NFKD decomposition is used: accents and other combining marks are
   dropped (``é`` -> ``e``, ``Ç`` -> ``C``, ``ñ`` -> ``n``, ``å`` -> ``a``) and
   compatibility forms are unfolded (``ﬁ`` -> ``fi``, full-width ``Ａ`` -> ``A``); each
   part goes through rules 1-3 again;
5. anything left (emoji, symbols, non-Latin scripts, control characters) is left out.

``_TABLE`` (character -> replacement, and why):

* ``ä ö ü Ä Ö Ü`` -> ``ae oe ue Ae Oe Ue``, ``ß ẞ`` -> ``ss SS``: the DK convention;
* ``æ Æ œ Œ`` -> ``ae AE oe OE``: ligatures that NFKD does not split;
* ``ø Ø ł Ł đ Đ ð Ð ħ Ħ ŧ Ŧ ı`` -> ``o O l L d D d D h H t T i``: letters with a stroke
  have no decomposition in Unicode; ``þ Þ`` -> ``th TH``;
* ``&`` -> ``+`` (EPC conversion table);
* apostrophes and accents used as such ``’ ‘ ‚ ‛ ´ ` ′ ʼ`` -> ``'``;
* double quotes ``" “ ” „ ‟ « » ‹ › ″`` -> ``'`` (the set has no double quote);
* dashes, minus sign and underscore ``– — ‐ ‑ ‒ ― − _`` -> ``-``;
* fraction slash ``⁄`` -> ``/``, so that NFKD's ``½`` reads ``1/2`` and not ``12``;
* ``€`` -> ``EUR``.

Then runs of spaces become one space and the ends are stripped; an optional maximum
length cuts the result without leaving a trailing space.

Known gap: Greek and Cyrillic letters have no entry and are left out; EPC217-08's
conversion table transliterates them (Bulgarian and Greek debtors).
"""

from __future__ import annotations

import re
import string
import unicodedata

from sepa_engine import errors

SEPA_CHARACTERS: frozenset[str] = frozenset(
    string.ascii_letters + string.digits + "/-?:().,'+ "
)

# Maximum lengths the pain.008 writer applies (see RULES.md section 2).
NAME_MAX = 70
REMITTANCE_MAX = 140
ADDRESS_LINE_MAX = 70
STREET_MAX = 70
BUILDING_NUMBER_MAX = 16
POSTCODE_MAX = 16
TOWN_MAX = 35
REFERENCE_MAX = 35


def _expand(keys: str, value: str) -> dict[str, str]:
    return dict.fromkeys(keys, value)


_TABLE: dict[str, str] = {
    "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
    "ß": "ss", "ẞ": "SS",
    "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
    "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
    "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T", "ı": "i",
    "þ": "th", "Þ": "TH",
    "&": "+",
    **_expand("\u2019\u2018\u201a\u201b\u00b4`\u2032\u02bc", "'"),
    **_expand('"\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a\u2033', "'"),
    **_expand("\u2013\u2014\u2010\u2011\u2012\u2015\u2212_", "-"),
    "\u2044": "/",
    "€": "EUR",
}  # fmt: skip


_WORD = r"[A-Za-z0-9/\-?:().,'+]+"
_CANONICAL = re.compile(f"(?:{_WORD}(?: {_WORD})*)?")


def is_sepa_text(value: object) -> bool:
    """True when ``value`` is a string made only of SEPA characters (``""`` included)."""
    return isinstance(value, str) and all(char in SEPA_CHARACTERS for char in value)


def invalid_characters(value: str) -> list[tuple[int, str]]:
    """``(position, character)`` of every character outside the SEPA set, for reports."""
    return [(position, char) for position, char in enumerate(value) if char not in SEPA_CHARACTERS]


def to_sepa_text(value: str, max_length: int | None = None) -> str:
    """Transliterate free text to the SEPA set (rules in the module docstring)."""
    if not isinstance(value, str):
        raise errors.InvalidFormat("text", f"<{type(value).__name__}>", "must be a string")
    if max_length is not None and (isinstance(max_length, bool) or max_length < 0):
        raise errors.InvalidLength("max_length", max_length, "must be zero or more")
    if _CANONICAL.fullmatch(value):
        # Already SEPA characters with single inner spaces (most names and texts): the
        # conversion below would return it unchanged, so only the cut remains.
        return value if max_length is None else value[:max_length].rstrip(" ")
    # NFC first: a decomposed "a" + U+0308 must reach the table as "ä" to become "ae".
    converted = "".join(_convert(char) for char in unicodedata.normalize("NFC", value))
    # _convert turned every kind of whitespace into plain spaces; collapse and strip them.
    text = " ".join(converted.split())
    if max_length is not None:
        text = text[:max_length].rstrip(" ")
    return text


def _convert(char: str) -> str:
    direct = _convert_simple(char)
    if direct is not None:
        return direct
    parts = (_convert_simple(part) for part in unicodedata.normalize("NFKD", char))
    return "".join(part for part in parts if part is not None)


def _convert_simple(char: str) -> str | None:
    """Rules 1-3; None when the character needs decomposing or has no conversion."""
    if char in SEPA_CHARACTERS:
        return char
    if char in _TABLE:
        return _TABLE[char]
    if char.isspace():
        return " "
    return None
