"""Mandate references and end-to-end ids, checked with a set test before listing the bad
characters (issue 16), against the checks as they were computed before: on valid and
hostile values, the same answer and the same error (class, rule, reason code, message)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sepa_engine import errors
from sepa_engine.domain.charset import REFERENCE_MAX, SEPA_CHARACTERS
from sepa_engine.domain.identifiers import (
    _MANDATE_CHARACTERS,
    _NOT_A_STRING,
    MANDATE_REASON,
    _shown,
    _type_of,
    validate_mandate_id,
    validate_reference,
)
from sepa_engine.domain.masking import mask_reference


def reference_validate_reference(value: str, field: str = "reference") -> str:
    return reference_check_identification(value, field, SEPA_CHARACTERS, "the SEPA set", None, None)


def reference_validate_mandate_id(value: str, field: str = "mandate_id") -> str:
    # sepa_engine.domain.identifiers before issue 16, verbatim.
    shown = mask_reference(value) if isinstance(value, str) else _type_of(value)
    allowed_name = "a mandate reference (SEPA set without space)"
    return reference_check_identification(
        value, field, _MANDATE_CHARACTERS, allowed_name, MANDATE_REASON, shown
    )


def reference_check_identification(
    value: object,
    field: str,
    allowed: frozenset[str],
    allowed_name: str,
    reason_code: str | None,
    shown_value: str | None,
) -> str:
    def fail(error: type[errors.SepaEngineError], rule: str) -> errors.SepaEngineError:
        shown = shown_value if shown_value is not None else _shown(value)
        return error(field, value, rule, reason_code=reason_code, shown_value=shown)

    if not isinstance(value, str):
        raise fail(errors.InvalidFormat, _NOT_A_STRING)
    if not value:
        raise fail(errors.InvalidLength, f"is empty: 1 to {REFERENCE_MAX} characters")
    if len(value) > REFERENCE_MAX:
        raise fail(errors.InvalidLength, f"is longer than {REFERENCE_MAX} characters")
    bad = [(position, char) for position, char in enumerate(value) if char not in allowed]
    if bad:
        listed = ", ".join(f"{char!r} at position {position + 1}" for position, char in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        rule = f"has characters outside {allowed_name}: {listed}{more}"
        raise fail(errors.InvalidCharacters, rule)
    if value[0] == " " or value[-1] == " ":
        raise fail(errors.InvalidFormat, "must not start or end with a space")
    if value.startswith("/"):
        raise fail(errors.InvalidFormat, "must not start with '/'")
    if value.endswith("/"):
        raise fail(errors.InvalidFormat, "must not end with '/'")
    if "//" in value:
        raise fail(errors.InvalidFormat, "must not contain '//'")
    return value


def outcome(validate, value: object) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    try:
        return ("valid", validate(value, "end_to_end_id"))
    except errors.SepaEngineError as exc:
        return (type(exc), exc.field, exc.rule, exc.reason_code, exc.shown_value, str(exc), exc.value)


def same(value: object) -> None:
    assert outcome(validate_reference, value) == outcome(reference_validate_reference, value)
    assert outcome(validate_mandate_id, value) == outcome(reference_validate_mandate_id, value)


HOSTILE = [
    None, 7, b"RUM-1", "", " ", "RUM 1", " RUM-1", "RUM-1 ", "/RUM", "RUM/", "R//M", "R" * 35, "R" * 36,
    "RUM-\u00e9t\u00e9", "RUM_1", "\u0000", "a&b&c&d&e&f&g", "RUM-\ufb01", "\U0001f600" * 7,
    "RUM-0000000001", "BENCH-000000000001",
]


def test_same_answer_for_valid_and_hostile_values() -> None:
    for value in HOSTILE:
        same(value)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(SEPA_CHARACTERS) + ["_", "&", "\u00e9", "\t", "\u00a0"]), max_size=40))
def test_same_answer_for_text_near_the_sepa_set(value: str) -> None:
    same(value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_same_answer_for_any_text(value: str) -> None:
    same(value)
