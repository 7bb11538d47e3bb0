"""The one place a pydantic ``ValidationError`` becomes the project's error.

Every door (``load``, ``enqueue``, the account documents, the HTTP bodies, a Python call)
reports a bad input the same way: the field path in JSON names (``address.town``,
``invoices[0].amount``), the value when it is safe to show, the rule in words (never a
regular expression), and the ISO/EPC reason code when the scheme has one
(``input_types.PATTERN_WORDS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sepa_engine import errors
from sepa_engine.domain import text
from sepa_engine.services.input_types import PATTERN_WORDS

# A value longer than this is not echoed: the message would drown the rule.
_ECHO_MAX = 70


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One bad field: where, what was sent (None: not shown), which rule, which code."""

    field: str
    value: object
    rule: str
    code: str
    reason_code: str | None = None

    def sentence(self) -> str:
        """``'12,50' must be an amount ... [AM12]``: the value (if shown), the rule, the code."""
        said = f"{self.value!r} {self.rule}" if self.value is not None else self.rule
        return f"{said} [{self.reason_code}]" if self.reason_code else said

    def to_dict(self) -> dict[str, object]:
        return {"field": self.field, "value": self.value, "rule": self.rule, "code": self.code,
                "reason_code": self.reason_code}


class InputRefused(errors.InvalidFormat):
    """An input breaking its model; ``problems`` lists every bad field, the first is the error's."""

    problems: tuple[FieldProblem, ...] = ()


_TYPE_WORDS = {
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
}


def path_of(loc: Sequence[int | str], prefix: str = "") -> str:
    """``('invoices', 0, 'amount')`` -> ``invoices[0].amount``, after ``prefix``."""
    out = prefix.rstrip(".")
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def problems(exc: ValidationError, prefix: str = "") -> tuple[FieldProblem, ...]:
    """Every problem ``exc`` holds, in the order of the fields."""
    found = [_problem(detail, prefix) for detail in exc.errors(include_url=False)]
    return tuple(found)


def _problem(detail: Any, prefix: str) -> FieldProblem:
    kind: str = detail["type"]
    loc = tuple(detail["loc"])
    context: dict[str, Any] = detail.get("ctx") or {}
    value = detail.get("input")
    reason: str | None = None
    if kind in ("too_long", "too_short") and isinstance(value, str):
        kind = "string_" + kind  # a string's length bound, reported as such
    # A key that breaks the text rules cannot be printed as a field name: name its parent.
    for position, part in enumerate(loc):
        if isinstance(part, str) and text.problem(part) is not None:
            return FieldProblem(
                path_of(loc[:position], prefix) or "document", None,
                f"has a key that {text.problem(part)}", "invalid_characters",
            )
    if kind == "string_pattern_mismatch":
        rule, reason = PATTERN_WORDS.get(str(context.get("pattern")), ("is not in the expected form", None))
    elif "rule" in context:
        rule = str(context["rule"])
    elif kind == "string_too_long":
        length = len(value) if isinstance(value, str) else "?"
        rule = f"is {length} characters long, more than the {context['max_length']} allowed"
    elif kind == "string_too_short":
        rule = "must not be empty" if context.get("min_length") == 1 else f"must be at least {context['min_length']} characters long"
    elif kind == "too_short":
        rule = f"must hold at least {context.get('min_length')} item(s)"
    elif kind == "too_long":
        rule = f"must hold at most {context.get('max_length')} item(s)"
    elif kind == "literal_error":
        rule = f"must be one of {context.get('expected')}"
    elif kind == "greater_than_equal":
        rule = f"must be at least {context.get('ge')}"
    elif kind == "less_than_equal":
        rule = f"must be at most {context.get('le')}"
    elif kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        rule = f'must be text, in quotes (e.g. "{value}")'
    else:
        rule = _TYPE_WORDS.get(kind, str(detail.get("msg", kind)))
    if "field" in context:
        # A rule over several fields (model_validator) names the one to fix.
        loc = (*loc, str(context["field"]))
        value = None
    return FieldProblem(path_of(loc, prefix) or "document", _shown(kind, loc, value), rule, kind, reason)


def _shown(kind: str, loc: tuple[int | str, ...], value: object) -> object:
    """The value when it helps and is safe to show: a short scalar, never an account number,
    never what broke the text rules."""
    if kind in ("missing", "extra_forbidden", "invalid_characters", "string_too_long"):
        return None
    if loc and isinstance(loc[-1], str) and loc[-1].endswith("iban"):
        return None  # an account number is never echoed whole (it may be a real one, mistyped)
    if isinstance(value, str):
        return value if len(value) <= _ECHO_MAX and text.problem(value) is None else None
    if isinstance(value, (bool, int, float)):
        return value
    return None


def refusal(exc: ValidationError, prefix: str = "", location: str | None = None) -> InputRefused:
    """The project's error for ``exc``: the first problem's class, field and rule, with all of them."""
    found = problems(exc, prefix) or (FieldProblem(prefix.rstrip(".") or "document", None, "is not valid", "invalid"),)
    first = found[0]
    failure = _REFUSED.get(first.code, InputRefused)(
        first.field, first.value, first.rule, reason_code=first.reason_code, location=location
    )
    failure.problems = found
    return failure


# One class per kind keeps ``except errors.InvalidDate`` (and the error's code) working.
class _CharactersRefused(InputRefused, errors.InvalidCharacters):
    code = errors.InvalidCharacters.code


class _DateRefused(InputRefused, errors.InvalidDate):
    code = errors.InvalidDate.code


class _AmountRefused(InputRefused, errors.InvalidAmount):
    code = errors.InvalidAmount.code


class _LengthRefused(InputRefused, errors.InvalidLength):
    code = errors.InvalidLength.code


_REFUSED: dict[str, type[InputRefused]] = {
    "invalid_characters": _CharactersRefused,
    "invalid_date": _DateRefused,
    "invalid_amount": _AmountRefused,
    "string_too_long": _LengthRefused,
    "string_too_short": _LengthRefused,
}
