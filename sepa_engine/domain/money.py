"""Money as integer euro cents: parsing, range checks and the XML form.

Amounts never pass through ``float``: ``0.1 + 0.2`` is not ``0.3`` and a collection file
that is one cent off is rejected by the bank. The engine stores and sums ``int`` cents and
only turns them into text at the edge (``format_cents``).

The one place amounts are parsed, so that the unit is never guessed:

* ``parse_amount`` takes euros as text (``"12.34"``) or ``Decimal`` from our own inputs:
  strict form, within the SEPA limits of one debit, or (``sepa_range=False``) any
  storable amount, zero included, for inputs that are stored and reported as problems;
* ``read_cents`` takes an amount of a file someone else wrote (xs:decimal, W3C XML Schema
  1.0 part 2 section 3.2.3, the type of every ISO 20022 amount): ``"276"``, ``"46.3"``,
  ``"+5"``, ``".5"``, extra zero decimals; any size a control sum reaches; zero included;
* ``check_cents`` takes cents as ``int``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from sepa_engine import errors

# SEPA limits for one transaction (EPC type ActiveOrHistoricCurrencyAndAmount_SimpleTypeSEPA).
MIN_CENTS = 1
MAX_CENTS = 99_999_999_999

_MAX_EUROS_DIGITS = len(str(MAX_CENTS // 100))
_MAX_AMOUNT = Decimal("999999999.99")
_TOO_SMALL = "must be at least 0.01"
_TOO_LARGE = "must be at most 999999999.99"
_NEGATIVE = "is negative"
_TOO_MANY_DECIMALS = "has more than two decimals"
_NOT_FINITE = "is not a finite number"
_FLOAT = "is a float: floats are not accepted for money, pass a string such as '12.34' or a Decimal"

# ASCII digits only: ``\d`` would also accept Arabic-Indic or full-width digits.
_PLAIN_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
_SIGNED_NUMBER = re.compile(r"[+-][0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?")
_EXPONENT = re.compile(r"[+-]?[0-9]*\.?[0-9]+[eE][+-]?[0-9]+")
_NON_FINITE = re.compile(r"[+-]?(?:nan|snan|inf|infinity)", re.IGNORECASE)
_GROUPED = re.compile(r"[0-9]+(?:[ _'\u00a0\u202f,][0-9]{3})+(?:\.[0-9]+)?")
# "12.34" with at most nine digits of euros, as every file we write has it a million
# times: within the SEPA limits except 0.00 (tested), no need for the general path.
_FAST_AMOUNT = re.compile("([0-9]{1,9})[.]([0-9]{2})")
# Euro digits a BigInteger of cents holds with room to spare (9.2e18 cents).
STORABLE_EURO_DIGITS = 15
# xs:decimal's lexical form without a sign other than "+" (amounts are never negative).
_XS_DECIMAL = re.compile(r"\+?([0-9]*)(?:\.([0-9]*))?")
_XS_PLAIN = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,2}))?")
# ISO 20022 DecimalNumber has totalDigits 18: a longer whole part is no amount of a file.
_READ_MAX_DIGITS = 18


def parse_amount(value: str | Decimal, field: str = "amount", *, sepa_range: bool = True) -> int:
    """Euros as text or ``Decimal`` -> cents, within the SEPA limits.

    Text must be plain: ASCII digits, optionally a dot and one or two decimals; surrounding
    whitespace is ignored. A ``Decimal`` is taken by value, so ``Decimal("12.340")`` is fine
    while ``Decimal("12.345")`` is refused.

    ``sepa_range=False`` keeps the form's rules but returns zero and amounts above one
    debit's maximum (up to ``STORABLE_EURO_DIGITS`` digits of euros), for callers that
    store them and report the problem later.
    """
    if type(value) is str:
        fast = _FAST_AMOUNT.fullmatch(value)
        if fast is not None:
            cents = int(fast.group(1)) * 100 + int(fast.group(2))
            if cents >= MIN_CENTS:
                return cents
    if isinstance(value, bool):
        raise errors.InvalidAmount(field, value, "is a boolean, not an amount")
    if isinstance(value, float):
        raise errors.InvalidAmount(field, value, _FLOAT)
    if isinstance(value, int):
        # An int could be euros or cents; refusing it is cheaper than a wrong debit.
        raise errors.InvalidAmount(
            field, value, "is an int: pass cents to check_cents() or euros as a string"
        )
    if isinstance(value, Decimal):
        return _cents_from_decimal(value, field, sepa_range)
    if isinstance(value, str):
        return _cents_from_text(value, field, sepa_range)
    raise errors.InvalidAmount(field, _shown(value), "must be a string or a Decimal")


def read_cents(text: str | None, field: str = "amount") -> int:
    """An amount of a file someone else wrote (xs:decimal) -> cents; ``InvalidAmount`` if not.

    ``"276"`` is 276.00 and ``"46.3"`` is 46.30: xs:decimal has no implied decimals. Zero
    is an amount here (charges of 0.00), and so is a control sum above one debit's maximum.
    More than two decimals is accepted only when the extra ones are zeros, since the
    engine keeps cents. Whether the amount is within a rule's range is the caller's check.
    """
    if text is None:
        raise errors.InvalidAmount(field, None, "is missing")
    stripped = text.strip()
    plain = _XS_PLAIN.fullmatch(stripped)
    if plain is not None:
        # The usual "12.34", "276" or "46.3": exact in integers, no Decimal needed.
        return int(plain.group(1)) * 100 + int((plain.group(2) or "").ljust(2, "0"))
    match = _XS_DECIMAL.fullmatch(stripped)
    if match is None or not (match.group(1) or match.group(2)):
        raise errors.InvalidAmount(field, text, "is not a decimal amount")
    whole = (match.group(1) or "0").lstrip("0") or "0"
    if len(whole) > _READ_MAX_DIGITS:
        raise errors.InvalidAmount(field, text, "is too large")
    decimals = (match.group(2) or "").rstrip("0")
    if len(decimals) > 2:
        raise errors.InvalidAmount(field, text, "has more than two decimals that are not zero")
    return int(whole) * 100 + int(decimals.ljust(2, "0"))


def check_cents(cents: int, field: str = "amount") -> int:
    """Check an amount already in cents against the SEPA limits and return it."""
    if isinstance(cents, bool):
        raise errors.InvalidAmount(field, cents, "is a boolean, not an amount")
    if isinstance(cents, float):
        raise errors.InvalidAmount(field, cents, _FLOAT)
    if not isinstance(cents, int):
        raise errors.InvalidAmount(field, _shown(cents), "must be an int number of cents")
    return _in_range(cents, field, cents)


def format_cents(cents: int) -> str:
    """Cents -> the XML form: ``1234`` -> ``"12.34"``, no thousands separators.

    No upper limit: control sums of a file may exceed one transaction's maximum.
    """
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise errors.InvalidAmount("amount", _shown(cents), "must be an int number of cents")
    if cents < 0:
        raise errors.InvalidAmount("amount", cents, _NEGATIVE)
    euros, rest = divmod(cents, 100)
    return f"{euros}.{rest:02d}"


def cents_to_decimal(cents: int) -> Decimal:
    """Cents -> ``Decimal`` with two places, exactly (no context rounding, any size or sign)."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise errors.InvalidAmount("amount", _shown(cents), "must be an int number of cents")
    digits = tuple(int(d) for d in str(abs(cents)))
    return Decimal((1 if cents < 0 else 0, digits, -2))


def _cents_from_text(value: str, field: str, sepa_range: bool = True) -> int:
    text = value.strip()
    if not text:
        raise errors.InvalidAmount(field, value, "is empty")
    match = _PLAIN_AMOUNT.fullmatch(text)
    if match is None:
        raise errors.InvalidAmount(field, value, _text_problem(text))
    whole, decimals = match.group(1), match.group(2) or ""
    if len(decimals) > 2:
        raise errors.InvalidAmount(field, value, _TOO_MANY_DECIMALS)
    whole = whole.lstrip("0") or "0"
    # Checked on the digits before int(): a 10,000-digit string must not reach int().
    if not sepa_range:
        _check_storable(len(whole), field, value)
        return int(whole) * 100 + int(decimals.ljust(2, "0"))
    if len(whole) > _MAX_EUROS_DIGITS:
        raise errors.InvalidAmount(field, value, _TOO_LARGE)
    return _in_range(int(whole) * 100 + int(decimals.ljust(2, "0")), field, value)


def _check_storable(euro_digits: int, field: str, shown: object) -> None:
    if euro_digits > STORABLE_EURO_DIGITS:
        raise errors.InvalidAmount(field, shown, f"has more than {STORABLE_EURO_DIGITS} digits before the decimal point")


def _text_problem(text: str) -> str:
    """The most specific reason why ``text`` is not a plain amount."""
    if _NON_FINITE.fullmatch(text):
        return _NOT_FINITE
    if _EXPONENT.fullmatch(text):
        return "uses exponent notation"
    if _SIGNED_NUMBER.fullmatch(text):
        return _NEGATIVE if text.startswith("-") else "must not carry a sign"
    if _GROUPED.fullmatch(text):
        return "contains a thousands separator"
    if "," in text:
        return "uses a comma: write euros and cents with a dot, e.g. 12.34"
    if text.count(".") > 1:
        return "has more than one decimal point"
    return "is not a number: write euros and cents with a dot, e.g. 12.34"


def _cents_from_decimal(value: Decimal, field: str, sepa_range: bool = True) -> int:
    if not value.is_finite():
        raise errors.InvalidAmount(field, value, _NOT_FINITE)
    if value < 0:
        raise errors.InvalidAmount(field, value, _NEGATIVE)
    if value == 0:
        # Also keeps 0E+999999999 away from the power of ten below.
        if sepa_range:
            raise errors.InvalidAmount(field, value, _TOO_SMALL)
        return 0
    if sepa_range and value > _MAX_AMOUNT:
        raise errors.InvalidAmount(field, value, _TOO_LARGE)
    if not sepa_range:
        _check_storable(value.adjusted() + 1, field, value)
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite values have an int exponent
    # Work on the digit tuple rather than value * 100: multiplication rounds to the
    # context precision (28 digits) and could turn 1.0000...0001 into a whole cent.
    extra = -exponent - 2
    if extra > 0:
        if any(digits[-extra:]):
            raise errors.InvalidAmount(field, value, _TOO_MANY_DECIMALS)
        digits = digits[:-extra]
        exponent = -2
    cents = int("".join(map(str, digits)) or "0") * 10 ** (exponent + 2)
    return _in_range(cents, field, value) if sepa_range else cents


def _in_range(cents: int, field: str, shown: object) -> int:
    if cents < 0:
        raise errors.InvalidAmount(field, shown, _NEGATIVE)
    if cents < MIN_CENTS:
        raise errors.InvalidAmount(field, shown, _TOO_SMALL)
    if cents > MAX_CENTS:
        raise errors.InvalidAmount(field, shown, _TOO_LARGE)
    return cents


def _shown(value: object) -> str:
    # The type is what went wrong; repr() of arbitrary objects can be huge or hostile.
    return f"<{type(value).__name__}>"
