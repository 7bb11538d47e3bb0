"""The field types of every input model, each carrying its rule once: type, length,
pattern, the text rules of ``domain/text.py``, and the rule in words for error messages.

An input model (``inputs.py``, ``account_inputs.py``) declares ``name: Name`` and gets, from
this one declaration, the check at every door (file, line, HTTP body, Python call), the JSON
Schema of ``schemas/`` and the OpenAPI document, and the sentence an operator reads when a
value breaks it. Nothing here coerces what the published schemas did not accept: strings
stay strings, integers and booleans are strict (``"5"``, ``5.0`` and ``true`` are not 5),
amounts are text or Decimal, never float.

Lengths are the SEPA ones where the value goes into a pain.008 file (the EPC
Implementation Guidelines restrict ISO 20022 fields; see shared/iso20022/RULES.md section
"Field lengths", which cites xsd/pain.008.003.02.xsd): names (Nm) 70, remittance (Ustrd) 140,
identifiers and references (Max35Text) 35, town (TwnNm) 35, street (StrtNm) 70, building
number and post code (BldgNb, PstCd) 16. Fields that never reach a bank file have the
project's own bounds (notes 2000, idempotency keys 100), so that no free text is unbounded.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, TypeAlias

from pydantic import (
    AfterValidator,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from sepa_engine import errors
from sepa_engine.domain import money, text

# pattern -> (the rule in words, the ISO/EPC reason code of a value that breaks it, if any).
# Every pattern a model uses is registered here by ``words()``: an error never shows a regex.
PATTERN_WORDS: dict[str, tuple[str, str | None]] = {}


def _text_rules(value: object) -> object:
    # Before any other check: a message may quote the value, which must then be printable.
    if isinstance(value, str):
        rule = text.problem(value)
        if rule is not None:
            raise PydanticCustomError("invalid_characters", "{rule}", {"rule": rule})
    return value


_TEXT = BeforeValidator(_text_rules)


def words(regex: str, rule: str, reason_code: str | None = None) -> str:
    """``regex``, registered with its rule in words (and reason code) for error messages."""
    PATTERN_WORDS[regex] = (rule, reason_code)
    return regex


class OneOf:
    """One of ``values``, written exactly (no case folding: ``core`` is not ``CORE``)."""

    def __init__(self, *values: str) -> None:
        self.values = values
        self.rule = "must be one of " + ", ".join(values)

    def _check(self, value: str) -> str:
        if value not in self.values:
            raise PydanticCustomError("literal_error", "{rule}", {"rule": self.rule})
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, core_schema.str_schema(strict=True))

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "enum": list(self.values)}


def _text(maximum: int, minimum: int = 1) -> StringConstraints:
    return StringConstraints(strict=True, min_length=minimum, max_length=maximum)


# The text rules come last in each Annotated: they wrap the other checks, so they run first.
# --- text ------------------------------------------------------------------------------------
# Nm of creditor and ultimate parties: Max70Text in the SEPA schema (RULES.md, Nm row).
Name: TypeAlias = Annotated[str, _text(70), _TEXT]
# Dbtr/Nm is stored as sent and cut to 70 in files; 140 is ISO's Max140Text (RULES.md, Nm row).
DebtorName: TypeAlias = Annotated[str, _text(140), _TEXT]
# RmtInf/Ustrd: one occurrence of at most 140 characters (RULES.md, RmtInf/Ustrd row).
Remittance: TypeAlias = Annotated[str, _text(140, minimum=0), _TEXT]
# Identifiers and references: ISO Max35Text (RULES.md, MndtId and EndToEndId rows).
Reference: TypeAlias = Annotated[str, _text(35), _TEXT]
# Statement labels, reasons a person gives: shown beside 140-character remittances.
Label: TypeAlias = Annotated[str, _text(140), _TEXT]
# Notes kept in a history only, never in a bank file: the project's bound.
Note: TypeAlias = Annotated[str, _text(2000), _TEXT]
IdempotencyKey: TypeAlias = Annotated[str, _text(100), _TEXT]
# Structured address (PstlAdr; EPC guidelines, ISO pain.008.001.08 PostalAddress24).
Town: TypeAlias = Annotated[str, _text(35), _TEXT]
Street: TypeAlias = Annotated[str, _text(70), _TEXT]
BuildingNumber: TypeAlias = Annotated[str, _text(16), _TEXT]
Postcode: TypeAlias = Annotated[str, _text(16), _TEXT]
TimeZoneName: TypeAlias = Annotated[str, _text(40), _TEXT]

# --- fixed forms -----------------------------------------------------------------------------
Code: TypeAlias = Annotated[str, StringConstraints(strict=True, pattern=words(
    r"^[a-z0-9-]{1,32}$", "must be 1 to 32 lower-case letters, digits or hyphens")), _TEXT]
Country: TypeAlias = Annotated[str, StringConstraints(strict=True, pattern=words(
    r"^[A-Z]{2}$", "must be a country code of 2 capital letters (ISO 3166-1 alpha-2)")), _TEXT]
# Shape only: the check digits and the SEPA country are verified by the services (domain/identifiers).
Iban: TypeAlias = Annotated[str, StringConstraints(strict=True, pattern=words(
    r"^[A-Z]{2}[0-9]{2}[A-Za-z0-9]{1,30}$",
    "must be an IBAN: 2 capital letters, 2 check digits, then up to 30 letters or digits, without spaces", "AC01",
)), _TEXT]
Bic: TypeAlias = Annotated[str, StringConstraints(strict=True, pattern=words(
    r"^[A-Za-z0-9]{8}([A-Za-z0-9]{3})?$", "must be a BIC: 8 or 11 letters and digits", "RC01")), _TEXT]
# AT-02, EPC262-08 "Creditor Identifier Overview"; RULES.md, CdtrSchmeId row.
CreditorIdentifier: TypeAlias = Annotated[str, StringConstraints(strict=True, pattern=words(
    r"^[A-Za-z]{2}[0-9]{2}[A-Za-z0-9]{3}[A-Za-z0-9]{1,28}$",
    "must be a SEPA creditor identifier: 2 letters, 2 check digits, a 3-character business code, "
    "then up to 28 letters or digits",
)), _TEXT]
TimeOfDay: TypeAlias = Annotated[str, StringConstraints(strict=True, pattern=words(
    r"^([01][0-9]|2[0-3]):[0-5][0-9]$", "must be a time of day written HH:MM (00:00 to 23:59)")), _TEXT]
Phone: TypeAlias = Annotated[str, StringConstraints(strict=True, pattern=words(
    r"^\+?[0-9][0-9 ().-]{2,34}$", "must be a phone number: digits, spaces, ( ) . - and an optional leading +")), _TEXT]
# 254: the longest address a mail path carries (RFC 5321 section 4.5.3.1.3).
Email: TypeAlias = Annotated[str, StringConstraints(strict=True, max_length=254, pattern=words(
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "must be an e-mail address (name@domain.tld)")), _TEXT]
Resolution: TypeAlias = Annotated[str, StringConstraints(strict=True, pattern=words(
    r"^(ignored|[1-9][0-9]{0,9})$", "must be 'ignored' or the id of a debit request")), _TEXT]

# --- choices ---------------------------------------------------------------------------------
LocalInstrument: TypeAlias = Annotated[str, OneOf("CORE", "B2B"), _TEXT]
BankProfile: TypeAlias = Annotated[str, OneOf("de", "epc", "fr", "ie", "nl"), _TEXT]
Pain008Version: TypeAlias = Annotated[str, OneOf("pain.008.001.08", "pain.008.001.02"), _TEXT]
FirstCollectionPolicy: TypeAlias = Annotated[str, OneOf("frst", "rcur"), _TEXT]
MandateKind: TypeAlias = Annotated[str, OneOf("recurrent", "one_off"), _TEXT]
LedgerKind: TypeAlias = Annotated[str, OneOf("invoice", "credit_note", "fee"), _TEXT]
DisputeStatus: TypeAlias = Annotated[str, OneOf("under_review", "accepted", "rejected"), _TEXT]
CollectionMode: TypeAlias = Annotated[str, OneOf("on_demand", "automatic"), _TEXT]
Frequency: TypeAlias = Annotated[str, OneOf("monthly", "quarterly"), _TEXT]
TokenAccess: TypeAlias = Annotated[str, OneOf("read", "write"), _TEXT]

# --- amounts ---------------------------------------------------------------------------------
AMOUNT_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,2})?$"
AMOUNT_WORDS = "must be an amount in euros: digits, then at most 2 decimals after a point (e.g. 12.50)"
_AMOUNT = re.compile(AMOUNT_PATTERN)


def _amount(value: object) -> str | Decimal:
    if isinstance(value, Decimal):
        return value  # the Python API's form; its range and scale are the services' rules
    if isinstance(value, str):
        _text_rules(value)
        if _AMOUNT.match(value):
            return value
        raise PydanticCustomError("invalid_amount", "{rule}", {"rule": _amount_problem(value)})
    if isinstance(value, float):
        raise PydanticCustomError(
            "invalid_amount", "{rule}", {"rule": f'must be text, in quotes (e.g. "{value}"): floats are not accepted for money'}
        )
    if isinstance(value, int) and not isinstance(value, bool):
        raise PydanticCustomError("invalid_amount", "{rule}", {"rule": f'must be text, in quotes (e.g. "{value}")'})
    raise PydanticCustomError("invalid_amount", "{rule}", {"rule": "must be an amount written as text (e.g. \"12.50\")"})


def _amount_problem(value: str) -> str:
    """The most specific words for text that is not an amount (``domain/money`` knows commas,
    signs, exponents...), else the form in general."""
    try:
        money.parse_amount(value, sepa_range=False)
    except errors.InvalidAmount as exc:
        return exc.rule
    return AMOUNT_WORDS


# Euros as text ("12.34") or Decimal; never float (see domain/money.py).
Amount: TypeAlias = Annotated[str | Decimal, PlainValidator(_amount), WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN})]
PATTERN_WORDS[AMOUNT_PATTERN] = (AMOUNT_WORDS, None)

# --- dates -----------------------------------------------------------------------------------
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
PATTERN_WORDS[DATE_PATTERN] = ("must be a date that exists, written YYYY-MM-DD", None)


def _date(value: object) -> dt.date:
    # A datetime is a date to Python, but a time of day is not what a date field means.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        _text_rules(value)
        try:
            if len(value) != 10:
                raise ValueError(value)
            return dt.date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("invalid_date", "{rule}", {"rule": "is not a date in the form YYYY-MM-DD"}) from None
    raise PydanticCustomError("invalid_date", "{rule}", {"rule": "must be a date (YYYY-MM-DD)"})


IsoDate: TypeAlias = Annotated[
    dt.date, PlainValidator(_date), WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN})
]

DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})$"
PATTERN_WORDS[DATETIME_PATTERN] = ("must be a date and time with its offset, written YYYY-MM-DDTHH:MM[:SS]Z or +HH:MM", None)
_DATETIME = re.compile(DATETIME_PATTERN)


def aware_datetime(value: object) -> dt.datetime:
    """An aware datetime from ISO 8601 text; a time without an offset is refused, not guessed."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        _text_rules(value)
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise PydanticCustomError(
                "invalid_date", "{rule}", {"rule": "is not a date and time in ISO 8601 form"}
            ) from None
        if parsed.tzinfo is not None and not _DATETIME.match(value):
            raise PydanticCustomError("invalid_date", "{rule}", {"rule": PATTERN_WORDS[DATETIME_PATTERN][0]})
    else:
        raise PydanticCustomError("invalid_date", "{rule}", {"rule": "must be a date and time (ISO 8601)"})
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError("invalid_date", "{rule}", {"rule": "has no UTC offset (e.g. 2026-11-20T10:15:00+01:00)"})
    return parsed


AwareDateTime: TypeAlias = Annotated[
    dt.datetime, PlainValidator(aware_datetime), WithJsonSchema({"type": "string", "pattern": DATETIME_PATTERN})
]

# --- numbers and flags -----------------------------------------------------------------------
# Strict: a JSON true is not 1, "5" is not 5 (the published schemas said "integer").
Integer: TypeAlias = Annotated[int, Strict()]
Flag: TypeAlias = Annotated[bool, Strict()]


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise PydanticCustomError("not_unique", "{rule}", {"rule": f"{value!r} is named twice"})
        seen.add(value)
    return values


Unique = AfterValidator(_unique)
