"""The one JSON reader for input from outside (load files, enqueue lines, HTTP bodies,
account documents): bounded, strict, and with the text rules applied.

``json.loads`` alone accepts what a bank-facing ledger must not:

* nesting 100,000 deep ends in ``RecursionError`` (a traceback on the CLI, a 500 over
  HTTP): documents deeper than ``MAX_DEPTH`` are refused before they are parsed. No input
  of the engine nests more than four levels; 64 leaves room and stops the attack;
* a key given twice silently keeps the last value (RFC 8259 section 4 leaves it to the
  reader): refused, naming the key, since the two senders of one document can disagree
  about which value counts;
* ``NaN`` and ``Infinity`` are not JSON (RFC 8259 section 6): refused;
* strings with NUL, control, unpaired surrogate, bidi or zero-width characters: refused
  with their JSON path by ``domain/text.py``.

Errors are ``InvalidFormat`` (``InvalidCharacters`` for the text rules) naming ``source``
or the JSON path, so every caller turns them into its own "field value problem".
"""

from __future__ import annotations

import json
import re
from typing import Any

from sepa_engine import errors
from sepa_engine.domain import text

MAX_DEPTH = 64

# A JSON string, written so that the regular expression engine never backtracks.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return document


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


def depth(raw: str) -> int:
    """How deep arrays and objects nest in ``raw`` (brackets inside strings not counted)."""
    if "[" not in raw and "{" not in raw:
        return 0
    deepest = level = 0
    for match in _BRACKET.finditer(_STRING.sub('""', raw)):
        if match.group() in "[{":
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def loads(raw: str | bytes, source: str = "document") -> Any:
    """The decoded document; ``InvalidFormat`` naming ``source`` or the JSON path if refused."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise errors.InvalidFormat(source, None, f"is not UTF-8 text (byte {exc.start + 1})") from None
    nesting = depth(raw)
    if nesting > MAX_DEPTH:
        raise errors.InvalidFormat(source, None, f"nests arrays and objects {nesting} deep, more than the {MAX_DEPTH} allowed")
    try:
        document = json.loads(raw, parse_constant=_refuse_constant, object_pairs_hook=_pairs)
    except DuplicateKey as exc:
        shown = exc.key if text.problem(exc.key) is None else "(unprintable)"
        raise errors.InvalidFormat(source, None, f"is not valid JSON: the key {shown!r} appears twice in one object") from None
    except RecursionError:  # pragma: no cover - depth() refuses these first; kept as a last guard
        raise errors.InvalidFormat(source, None, f"nests more than {MAX_DEPTH} deep") from None
    except ValueError as exc:
        raise errors.InvalidFormat(source, None, f"is not valid JSON: {exc}") from None
    return document


def check_text(document: Any, prefix: str = "") -> None:
    """``InvalidCharacters`` for the first string of ``document`` that breaks the text rules."""
    found = text.problems_in(document, prefix)
    if found:
        path, rule = found[0]
        raise errors.InvalidCharacters(path, None, rule)
