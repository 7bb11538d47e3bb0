"""A JSON Schema violation said in words: the rule a person can act on, never a raw regex.

jsonschema's own messages quote the pattern ("'abc' does not match
'^[0-9]{1,15}(\\.[0-9]{1,2})?$'"), which tells an operator or a portal developer nothing.
Every pattern of ``schemas/`` has its sentence here (a test walks the schemas to keep it
so); the other keywords are phrased from the schema's own numbers and lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema.exceptions import ValidationError

_AMOUNT = "must be an amount in euros: digits, then at most 2 decimals after a point (e.g. 12.50)"
_CODE = "must be 1 to 32 lower-case letters, digits or hyphens"
_DATE = "must be a date that exists, written YYYY-MM-DD"
_BIC = "must be a BIC: 8 or 11 letters and digits"
_PHONE = "must be a phone number: digits, spaces, ( ) . - and an optional leading +"
_TIME = "must be a time of day written HH:MM (00:00 to 23:59)"

PATTERNS: dict[str, str] = {
    r"^[0-9]{1,15}(\.[0-9]{1,2})?$": _AMOUNT,
    r"^[0-9]+(\.[0-9]{1,2})?$": _AMOUNT,
    r"^[0-9]+\.[0-9]{2}$": "must be an amount with exactly 2 decimals after a point (e.g. 12.50)",
    r"^-?[0-9]+\.[0-9]{2}$": "must be an amount with exactly 2 decimals after a point, with a leading - when negative",
    r"^[a-z0-9-]{1,32}$": _CODE,
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$": _DATE,
    r"^[A-Z]{2}[0-9]{2}[A-Za-z0-9]{1,30}$": "must be an IBAN: 2 capital letters, 2 check digits, then up to 30 letters or digits, without spaces",
    r"^[A-Za-z0-9]{8}([A-Za-z0-9]{3})?$": _BIC,
    r"^[A-Za-z]{2}[0-9]{2}[A-Za-z0-9]{3}[A-Za-z0-9]{1,28}$": (
        "must be a SEPA creditor identifier: 2 letters, 2 check digits, a 3-character business code, "
        "then up to 28 letters or digits"
    ),
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})$": (
        "must be a date and time with its offset, written YYYY-MM-DDTHH:MM[:SS]Z or +HH:MM"
    ),
    r"^[A-Z]{2}$": "must be a country code of 2 capital letters (ISO 3166-1 alpha-2)",
    r"^([01][0-9]|2[0-3]):[0-5][0-9]$": _TIME,
    r"^[0-9]{4}-([0-9]{2}|Q[1-4])$": "must be a period written YYYY-MM (a month) or YYYY-Qn (a quarter)",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "must be an e-mail address (name@domain.tld)",
    r"^\+?[0-9][0-9 ().-]{2,34}$": _PHONE,
    r"^[0-9a-f]{64}$": "must be 64 lower-case hexadecimal characters (a SHA-256)",
    r"^(ignored|matched:[1-9][0-9]*)$": "must be 'ignored' or 'matched:' followed by a request id",
    r"^[A-Z]{2}([0-9]{2}\*{1,26}[A-Z0-9]{4}|\*{3,6})$": "must be a masked IBAN (country, check digits, stars, last 4 characters)",
    r"^(\*{1,4}|\*{1,31}[^*]{4})$": "must be a masked value (stars, then the last 4 characters)",
}

_TYPES = {
    "string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
    "object": "a JSON object", "array": "a JSON array", "null": "null",
}


def in_words(error: ValidationError) -> str:
    """The rule ``error`` broke, in words; the bad value is left to the caller to show."""
    keyword = error.validator
    expected: Any = error.validator_value  # whatever the schema wrote beside the keyword
    if keyword == "pattern":
        return PATTERNS.get(str(expected), f"is not in the expected form (pattern {expected})")
    if keyword == "required":
        missing = _missing(error)
        return f"{missing} is required" if missing else "a required field is missing"
    if keyword == "additionalProperties":
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        extra = sorted(set(error.instance) - set(schema.get("properties", {}))) if isinstance(error.instance, dict) else []
        return f"{', '.join(extra)}: not a field of this record" if extra else "has fields this record does not take"
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        if kinds == ["string"] and isinstance(error.instance, (int, float)) and not isinstance(error.instance, bool):
            return f'must be text, in quotes (e.g. "{error.instance}")'

        return "must be " + " or ".join(_TYPES.get(str(kind), str(kind)) for kind in kinds)
    if keyword == "enum":
        return "must be one of " + ", ".join(str(value) for value in expected)
    if keyword == "const":
        return f"must be {expected}"
    if keyword == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters long"
    if keyword == "maxLength":
        return f"must be at most {expected} characters long"
    if keyword == "minimum":
        return f"must be at least {expected}"
    if keyword == "maximum":
        return f"must be at most {expected}"
    if keyword == "exclusiveMinimum":
        return f"must be more than {expected}"
    if keyword == "exclusiveMaximum":
        return f"must be less than {expected}"
    if keyword == "minItems":
        return f"must hold at least {expected} item(s)"
    if keyword == "maxItems":
        return f"must hold at most {expected} item(s)"
    if keyword == "format":
        return {"date": _DATE, "date-time": "must be a date and time (ISO 8601)", "email": "must be an e-mail address"}.get(
            str(expected), f"must be a valid {expected}"
        )
    # oneOf/anyOf/not and the rest: jsonschema's sentence quotes no pattern for these.
    return error.message


def value_of(error: ValidationError) -> Any:
    """The offending value when it is a scalar worth quoting; None for objects and arrays."""
    instance = error.instance
    if error.validator in ("required", "additionalProperties") or isinstance(instance, (dict, list)):
        return None
    if error.validator == "pattern" and "IBAN" in PATTERNS.get(str(error.validator_value), ""):
        return None  # an account number is never echoed whole (it may be a real one, mistyped)
    return instance


def _missing(error: ValidationError) -> str | None:
    # "'amount' is a required property": the name is the quoted part.
    message = error.message
    if message.startswith("'") and "' is a required property" in message:
        return message[1 : message.index("' is a required property")]
    return None
