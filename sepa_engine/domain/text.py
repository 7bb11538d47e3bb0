"""Text rules every string from outside must pass, in one place.

Whatever door a string comes in by (a ``load`` file, an ``enqueue`` line, an HTTP body,
path or query, a Python call), it is refused with its field named when it holds:

* a NUL or another control character (C0 except tab, line feed and carriage return, DEL,
  C1): PostgreSQL cannot store NUL in text at all, SQLite stores it and cuts the value
  short in many clients, and none of them belong in a name, reference or label. Tab and
  line breaks are whitespace that ``charset.to_sepa_text`` already maps to a space;
* an unpaired surrogate (U+D800-U+DFFF): valid in a JSON escape, but no UTF-8 encoder can
  write it, so it would fail at the database or on stdout instead of at the door;
* a bidirectional formatting character (U+061C, U+200E, U+200F, U+202A-U+202E,
  U+2066-U+2069): they reorder what a reviewer sees without changing what is stored
  ("Trojan Source", CVE-2021-42574; the list is Unicode's Bidi_Control property, UAX #9);
* a zero-width character (U+200B, U+200C, U+200D, U+2060, U+FEFF): invisible, they make
  two references that look equal differ. ``charset.to_sepa_text`` would drop them, so a
  text that holds one is not what the bank file would show.

These are refused rather than transliterated: the SEPA conversion (charset.py) maps none
of them to a character, and a silent change would store what upstream did not send.

Lengths are the fields' own (JSON Schemas, ``charset.NAME_MAX``...); ``check_length``
words the rule the same way everywhere. ``check_past_date`` is the plausibility rule for
dates that record something that already happened (a signature).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sepa_engine import errors

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def _kind(char: str) -> str | None:
    point = ord(char)
    if point == 0:
        return "a NUL character"
    if (point < 0x20 and char not in _ALLOWED_CONTROLS) or 0x7F <= point <= 0x9F:
        return "a control character"
    if 0xD800 <= point <= 0xDFFF:
        return "an unpaired surrogate"
    if char in _BIDI:
        return "a bidirectional formatting character"
    if char in _ZERO_WIDTH:
        return "a zero-width character"
    return None


def _suspect(point: int) -> bool:
    return point < 0x20 or 0x7F <= point <= 0x9F or 0x200B <= point <= 0x206F or 0xD800 <= point <= 0xDFFF or point in (0x061C, 0xFEFF)


def problem(value: str) -> str | None:
    """The rule ``value`` breaks, in words, or None when it passes."""
    if value.isascii() and value.isprintable():
        return None  # the common case, checked in C
    for position, char in enumerate(value):
        if not _suspect(ord(char)):
            continue
        kind = _kind(char)
        if kind is not None:
            return f"contains {kind} (U+{ord(char):04X}) at position {position + 1}, which is not allowed in text"
    return None


def check(field: str, value: str) -> str:
    """``value`` when it passes the text rules; else ``InvalidCharacters`` naming ``field``.

    The value is not echoed: it may hold exactly what cannot be printed.
    """
    rule = problem(value)
    if rule is not None:
        raise errors.InvalidCharacters(field, None, rule)
    return value


def check_length(field: str, value: str, maximum: int) -> str:
    if len(value) > maximum:
        raise errors.InvalidLength(field, None, f"is {len(value)} characters long, more than the {maximum} allowed")
    return value


def problems_in(node: object, path: str = "") -> list[tuple[str, str]]:
    """``(path, rule)`` of every string (object keys included) in a decoded JSON document
    that breaks the text rules; paths read ``debtors[2].name``."""
    found: list[tuple[str, str]] = []
    if isinstance(node, str):
        rule = problem(node)
        if rule is not None:
            found.append((path or "document", rule))
    elif isinstance(node, Mapping):
        for key, value in node.items():
            name = str(key)
            key_rule = problem(name)
            where = f"{path}.{name}" if path else name
            if key_rule is not None:
                # A bad key cannot be printed as such; name it by its place instead.
                found.append((path or "document", f"has a key that {key_rule}"))
                continue
            found.extend(problems_in(value, where))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(problems_in(value, f"{path}[{index}]"))
    return found


def check_past_date(field: str, value: dt.date, today: dt.date) -> dt.date:
    """A date that records something done (a signature) cannot be after ``today``."""
    if value > today:
        raise errors.InvalidDate(field, value.isoformat(), f"is in the future (today is {today.isoformat()})")
    return value


# A spreadsheet reads a cell that starts with one of these as a formula (OWASP, "CSV
# Injection"): ``=HYPERLINK(...)`` in an invoice label would run when the export is opened.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """``value`` made inert for a spreadsheet: a leading ``'`` before a formula start, as
    OWASP recommends. Only for text the engine did not format itself (labels, numbers of
    documents, references): its own amounts, such as ``-12.50``, are written as they are."""
    return "'" + value if value.startswith(CSV_FORMULA_STARTS) else value
