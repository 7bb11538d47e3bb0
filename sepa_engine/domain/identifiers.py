"""Validators for IBAN, BIC, creditor identifier, references and mandate references.

Each kind follows python-stdnum's shape: ``compact_x`` (normalise the spelling),
``validate_x`` (return the normalised value or raise one of ``sepa_engine.errors``) and
``is_valid_x`` (never raises, whatever it is given). The checks themselves are schwifty's
(IBAN, BIC) and python-stdnum's (creditor identifier); this module translates their
exceptions and adds what the SEPA scheme asks on top (country scope, XSD patterns).

Every error carries ``field``, the raw ``value`` and the rule it broke. IBANs are shown
masked (``shown_value``) so that ``str(error)`` is safe to log; mandate references too,
since they identify a debtor to anyone holding the creditor's files.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import schwifty
import schwifty.exceptions as schwifty_errors
from schwifty import registry as schwifty_registry
from schwifty.checksum import Algorithm
from schwifty.checksum import algorithms as checksum_algorithms
from schwifty.checksum import france as schwifty_france
from schwifty.domain import Component, Range
from stdnum import exceptions as stdnum_errors
from stdnum.eu import at_02

from sepa_engine import errors
from sepa_engine.domain.charset import REFERENCE_MAX, SEPA_CHARACTERS
from sepa_engine.domain.masking import mask_iban, mask_reference

# Countries in the geographical scope of the SEPA schemes (EPC409-09), as of 2026.
#
# schwifty has its own flag (``IBAN.in_sepa_zone``) but, in schwifty 2026.10.1, it lacks the
# countries that joined in 2024-2025 (AL and ME in November 2024, MD and MK in March 2025,
# RS in May 2025) and flags New Caledonia, French Polynesia, Wallis and Futuna and the French
# Southern Territories (NC, PF, WF, TF), which use the CFP franc and are outside the scope.
# So the list is ours. JE, GG and IM accounts carry GB IBANs in practice; schwifty still knows
# their own prefixes, which are accepted too.
SEPA_COUNTRIES: frozenset[str] = frozenset(
    # EU member states
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
    # EEA outside the EU
    + "IS LI NO".split()
    # Other scheme countries and territories
    + "AD CH GB GG GI IM JE MC SM VA".split()
    # EU outermost regions and territories with their own ISO code (Aland, French
    # overseas departments and collectivities inside the EU or with the euro)
    + "AX BL GF GP MF MQ PM RE YT".split()
    # Joined 2024-2025
    + "AL MD ME MK RS".split()
)

IBAN_REASON = "AC01"  # ISO: incorrect account number
BIC_REASON = "RC01"  # ISO: bank identifier incorrect
MANDATE_REASON = "MD02"  # ISO: mandate data missing or incorrect

_NOT_A_STRING = "must be a string"
_LETTERS_AND_DIGITS = "may only contain letters A-Z and digits"
_BIC_STRUCTURE = "must be 4 letters, 2 country letters, then 2 or 5 letters or digits"
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# The location code pattern of pain.008.001.02's BICIdentifier: its second character is
# never the letter O and its first never 0 or 1 (test/passive BICs).
_BIC_LOCATION = re.compile(r"[A-Z2-9][A-NP-Z0-9]")
_CI_STRUCTURE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}")
_CI_MIN, _CI_MAX = 8, 35
_IBAN_MAX = 34


# --- IBAN ----------------------------------------------------------------------------------
def compact_iban(value: str) -> str:
    """Remove all whitespace and upper-case: ``fr76 3000 ...`` -> ``FR763000...``."""
    return _compact(value, "iban")


def validate_iban(value: str, field: str = "iban") -> str:
    """Return the compact IBAN, or raise if it is wrong or outside the SEPA scope.

    Checks, in order: characters, length and BBAN format of the country, ISO 7064 check
    digits, SEPA scope, then the national check digits where schwifty knows the algorithm.
    Where it does not (SE, HU, AL...), schwifty emits a ``NationalChecksumNotVerified``
    warning and the IBAN passes; an application that turns that warning into an error gets
    ``InvalidChecksum`` instead.
    """

    def fail(error: type[errors.SepaEngineError], rule: str) -> errors.SepaEngineError:
        return error(field, value, rule, reason_code=IBAN_REASON, shown_value=_masked(value))

    if not isinstance(value, str):
        raise fail(errors.InvalidFormat, _NOT_A_STRING)
    compact = _compact(value, field)
    if not compact:
        raise fail(errors.InvalidLength, "is empty")
    if len(compact) > _IBAN_MAX:
        raise fail(errors.InvalidLength, f"is longer than {_IBAN_MAX} characters")
    if not compact.isascii():
        # Before schwifty, which upper-cases with str.upper(): "ﬁ21..." would become "FI21...".
        raise fail(errors.InvalidFormat, _LETTERS_AND_DIGITS)
    # schwifty's IBAN.validate() and BBAN.validate_national_checksum(), step by step on the
    # compact string: the object path looks the country's spec up eight times and slices
    # through properties: the largest per-request cost of the collection run. Same checks,
    # same order, same algorithms (tests/domain/test_iban_differential.py keeps the two equal).
    if _IBAN_STRUCTURE.fullmatch(compact) is None:
        raise fail(errors.InvalidFormat, _iban_format_rule(compact))
    country = compact[:2]
    try:
        spec = schwifty_registry.get_iban_spec(country)
    except schwifty_errors.InvalidCountryCode:
        raise fail(errors.UnsupportedCountry, "has an unknown country code") from None
    if spec.iban_length != len(compact):
        raise fail(errors.InvalidLength, f"does not have the length of a {country} IBAN")
    bban = compact[4:]
    if not spec.regex.match(bban):
        raise fail(errors.InvalidFormat, _iban_format_rule(compact))
    if _iso7064_check_digits(bban + country) != compact[2:4]:
        raise fail(errors.InvalidChecksum, "fails its ISO 7064 MOD 97-10 check digits")
    if country not in SEPA_COUNTRIES:
        raise fail(errors.UnsupportedCountry, _outside_sepa(country))
    # After the scope check: schwifty warns (NationalChecksumNotVerified) for countries whose
    # national algorithm it lacks, and there is no point warning about a refused account.
    try:
        _check_national_digits(country, bban)
    except schwifty_errors.NationalChecksumNotVerified:
        # Only raised when the application turned that warning into an error: its choice
        # to refuse what cannot be verified, reported in our terms.
        rule = "has national check digits that cannot be verified"
        raise fail(errors.InvalidChecksum, rule) from None
    except schwifty_errors.SchwiftyException:
        raise fail(errors.InvalidChecksum, "fails its national check digits") from None
    return compact


# schwifty's IBAN._validate_characters pattern (ASCII only here: non-ASCII is refused before).
_IBAN_STRUCTURE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+")
# ISO 7064's letters as numbers (A=10 ... Z=35), digits as themselves.
_ISO7064_NUMBERS = str.maketrans({c: str(int(c, 36)) for c in string.ascii_uppercase})


def _iso7064_check_digits(bban_and_country: str) -> str:
    """MOD 97-10 check digits of ``bban + country`` (schwifty's ISO7064_mod97_10.compute):
    98 - (number * 100 mod 97), always 02-98, so the aliases 00, 01 and 99 never pass."""
    return f"{98 - int(bban_and_country.translate(_ISO7064_NUMBERS) + '00') % 97:02d}"


def _check_national_digits(country: str, bban: str) -> None:
    """schwifty's BBAN.validate_national_checksum on a BBAN whose length and format passed."""
    lookup, (national_digits,) = _lookup_cuts(country, len(bban))
    bank_key = bban[lookup[0]] if len(lookup) == 1 else "".join(bban[cut] for cut in lookup)
    algorithm = _national_algorithm(country, bank_key)
    if algorithm is None:
        # No algorithm: schwifty's own path, so the warning is its own, raised the same way.
        schwifty.BBAN(country, bban).validate_national_checksum()
        return
    components = [bban[cut] for cut in _cuts(country, len(bban), tuple(algorithm.accepts))]
    if type(algorithm) is _RIB_ALGORITHM:
        valid = _rib_key(*components) == bban[national_digits]
    else:
        valid = algorithm.validate(components, bban[national_digits])
    if not valid:
        raise schwifty_errors.InvalidBBANChecksum("Invalid national checksum")


# The French (and Monaco) RIB key, schwifty's algorithm for most accounts a French creditor
# collects from, computed with its letter table through str.translate instead of its
# generator per character: 97 - (89 bank + 15 branch + 3 account) mod 97, as two digits.
_RIB_ALGORITHM = type(checksum_algorithms["FR:default"])
_RIB_NUMBERS = str.maketrans(schwifty_france.numerics)


def _rib_key(bank: str, branch: str, account: str) -> str:
    number = 89 * int(bank.translate(_RIB_NUMBERS)) + 15 * int(branch.translate(_RIB_NUMBERS))
    return f"{97 - (number + 3 * int(account.translate(_RIB_NUMBERS))) % 97:02d}"


@lru_cache(maxsize=1024)
def _lookup_cuts(country: str, length: int) -> tuple[tuple[slice, ...], tuple[slice]]:
    """The components a country's banks are looked up by, and its national check digits."""
    spec = schwifty_registry.get_iban_spec(country)
    lookup = tuple(spec.bic_lookup_components or [Component.BANK_CODE])
    return _cuts(country, length, lookup), _cuts(country, length, (Component.NATIONAL_CHECKSUM_DIGITS,))  # type: ignore[return-value]


@lru_cache(maxsize=1024)
def _cuts(country: str, length: int, components: tuple[Component, ...]) -> tuple[slice, ...]:
    """Where each component sits in a BBAN of ``length``, as schwifty's BBAN._get_component
    reads it (an absent component, or one beyond the BBAN, is ""). Specs never change."""
    spec = schwifty_registry.get_iban_spec(country)
    cuts = []
    for component in components:
        position = spec.positions.get(component) or Range(0, 0)
        inside = position.start < length and position.end <= length
        cuts.append(slice(position.start, position.end) if inside else slice(0, 0))
    return tuple(cuts)


@lru_cache(maxsize=4096)
def _national_algorithm(country: str, bank_key: str) -> Algorithm | None:
    """The national check-digit algorithm for a bank (schwifty's choice, by the bank's
    registry entry: German banks each have their own). Cached per bank, never per account:
    the registry is fixed for the process, and a ledger has few banks and many accounts."""
    banks = schwifty_registry.get_banks_by_code(country, bank_key)
    bank = max(banks, key=lambda b: b.primary) if banks else None
    return checksum_algorithms.get(f"{country}:{bank.checksum_algo if bank is not None else 'default'}")


def is_valid_iban(value: object) -> bool:
    return _is_valid(validate_iban, value)


def _iban_format_rule(compact: str) -> str:
    if re.fullmatch(r"[A-Z0-9]+", compact) is None:
        return _LETTERS_AND_DIGITS
    if re.match(r"[A-Z]{2}[0-9]{2}", compact) is None:
        return "must start with a country code and two check digits"
    return "does not match the account format of its country"


# --- BIC -----------------------------------------------------------------------------------
def compact_bic(value: str) -> str:
    """Remove all whitespace and upper-case: ``deut de ff`` -> ``DEUTDEFF``."""
    return _compact(value, "bic")


def validate_bic(value: str, field: str = "bic") -> str:
    """Return the compact BIC (8 or 11 characters), or raise.

    Structure and country only: schwifty's bank registry is partial, so a BIC need not be
    listed there. The structure is SWIFT's (letters in the first six characters) because
    pain.008.001.02 requires it; .001.08 would also accept digits in the bank code.
    """

    def fail(error: type[errors.SepaEngineError], rule: str) -> errors.SepaEngineError:
        return error(field, value, rule, reason_code=BIC_REASON, shown_value=_shown(value))

    if not isinstance(value, str):
        raise fail(errors.InvalidFormat, _NOT_A_STRING)
    compact = _compact(value, field)
    if not compact.isascii():
        # Before schwifty, which upper-cases with str.upper(): "ﬀ" would become "FF".
        raise fail(errors.InvalidFormat, _BIC_STRUCTURE)
    try:
        bic = schwifty.BIC(compact, enforce_swift_compliance=True)
    except schwifty_errors.InvalidLength:
        raise fail(errors.InvalidLength, "must have 8 or 11 characters") from None
    except schwifty_errors.InvalidCountryCode:
        rule = "has an unknown country code in positions 5-6"
        raise fail(errors.UnsupportedCountry, rule) from None
    except schwifty_errors.SchwiftyException:
        raise fail(errors.InvalidFormat, _BIC_STRUCTURE) from None
    if _BIC_LOCATION.fullmatch(bic.location_code) is None:
        rule = "has a location code (positions 7-8) that SEPA files refuse"
        raise fail(errors.InvalidFormat, rule)
    return str(bic)


def is_valid_bic(value: object) -> bool:
    return _is_valid(validate_bic, value)


# --- creditor identifier -------------------------------------------------------------------
def compact_creditor_id(value: str) -> str:
    """python-stdnum's AT-02 compaction: drops spaces and ``- / ? : ( ) . ' +``, upper-cases."""
    if not isinstance(value, str):
        raise errors.InvalidFormat("creditor_id", value, _NOT_A_STRING, shown_value=_type_of(value))
    # Upper-case first: stdnum's compact() deletes a lower-case "m" (it is in its list of
    # separators), which would silently change the identifier.
    return str(at_02.compact(value.translate(_ASCII_UPPER)))


def validate_creditor_id(value: str, field: str = "creditor_id") -> str:
    """Return the compact SEPA creditor identifier (AT-02), or raise.

    Layout ``CCdd`` + 3-character business code + national identifier (1-28 characters);
    check digits by ISO 7064 MOD 97-10 with the business code ignored (RULES.md section 3).
    """

    def fail(error: type[errors.SepaEngineError], rule: str) -> errors.SepaEngineError:
        return error(field, value, rule, shown_value=_shown(value))

    if not isinstance(value, str):
        raise fail(errors.InvalidFormat, _NOT_A_STRING)
    try:
        compact = compact_creditor_id(value)
    except stdnum_errors.ValidationError:
        raise fail(errors.InvalidFormat, "is not readable as a creditor identifier") from None
    if not compact:
        raise fail(errors.InvalidLength, "is empty")
    if len(compact) < _CI_MIN:
        raise fail(errors.InvalidLength, f"is shorter than {_CI_MIN} characters")
    if len(compact) > _CI_MAX:
        raise fail(errors.InvalidLength, f"is longer than {_CI_MAX} characters")
    if _CI_STRUCTURE.fullmatch(compact) is None:
        raise fail(
            errors.InvalidFormat,
            "must be a country code, two check digits, a 3-character business code "
            "and a national identifier of letters and digits",
        )
    if compact[:2] not in SEPA_COUNTRIES:
        raise fail(errors.UnsupportedCountry, _outside_sepa(compact[:2]))
    try:
        at_02.validate(compact)
    except stdnum_errors.InvalidChecksum:
        raise fail(errors.InvalidChecksum, "fails its ISO 7064 MOD 97-10 check digits") from None
    except stdnum_errors.InvalidLength:
        raise fail(errors.InvalidLength, "has an invalid length") from None
    except stdnum_errors.ValidationError:
        # InvalidFormat and InvalidComponent.
        raise fail(errors.InvalidFormat, "has an invalid format") from None
    # stdnum tests "n mod 97 == 1", which also passes the aliases 00, 01 and 99 of the
    # digits 97, 98 and 02; MOD 97-10 only ever produces 02-98.
    if compact[2:4] != at_02.calc_check_digits(compact):
        raise fail(errors.InvalidChecksum, "has ISO 7064 MOD 97-10 check digits outside 02-98")
    return compact


def is_valid_creditor_id(value: object) -> bool:
    return _is_valid(validate_creditor_id, value)


# --- references ----------------------------------------------------------------------------
_MANDATE_CHARACTERS = SEPA_CHARACTERS - {" "}


def validate_reference(value: str, field: str = "reference") -> str:
    """Check a MsgId, PmtInfId, InstrId or EndToEndId and return it unchanged.

    SEPA set (RestrictedIdentificationSEPA1), 1-35 characters, no leading or trailing
    ``/`` and no ``//``. Never trimmed nor transliterated: the bank echoes the value back
    in its returns and reconciliation matches it byte for byte. For the same reason a
    leading or trailing space is refused: banks trim them on the way back.
    """
    return _check_identification(value, field, SEPA_CHARACTERS, "the SEPA set", None, masked=False)


def is_valid_reference(value: object) -> bool:
    return _is_valid(validate_reference, value)


def validate_mandate_id(value: str, field: str = "mandate_id") -> str:
    """Check a mandate reference (MndtId) and return it unchanged.

    As a reference, without spaces (RestrictedIdentificationSEPA2: the 2013 DK schema refuses
    them, later ones accept them; refusing is the safe side).
    """
    allowed_name = "a mandate reference (SEPA set without space)"
    return _check_identification(value, field, _MANDATE_CHARACTERS, allowed_name, MANDATE_REASON, masked=True)


def is_valid_mandate_id(value: object) -> bool:
    return _is_valid(validate_mandate_id, value)


def _check_identification(
    value: object,
    field: str,
    allowed: frozenset[str],
    allowed_name: str,
    reason_code: str | None,
    *,
    masked: bool,
) -> str:
    def fail(error: type[errors.SepaEngineError], rule: str) -> errors.SepaEngineError:
        # Masked only when refused: a valid reference (nearly all of them) costs no mask.
        shown: str | None
        if masked:
            shown = mask_reference(value) if isinstance(value, str) else _type_of(value)
        else:
            shown = _shown(value)
        return error(field, value, rule, reason_code=reason_code, shown_value=shown)

    if not isinstance(value, str):
        raise fail(errors.InvalidFormat, _NOT_A_STRING)
    if not value:
        raise fail(errors.InvalidLength, f"is empty: 1 to {REFERENCE_MAX} characters")
    if len(value) > REFERENCE_MAX:
        raise fail(errors.InvalidLength, f"is longer than {REFERENCE_MAX} characters")
    # The set test in C first: the listing below (a Python loop per character) is only
    # needed to name what is wrong, and most references have nothing wrong.
    if not allowed.issuperset(value):
        bad = [(position, char) for position, char in enumerate(value) if char not in allowed]
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


# --- shared --------------------------------------------------------------------------------
def _compact(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise errors.InvalidFormat(field, value, _NOT_A_STRING, shown_value=_type_of(value))
    # ASCII-only upper-casing: str.upper() turns "ﬀ" into "FF" and "ß" into "SS", which
    # would let a look-alike string pass as a valid code.
    return "".join(value.split()).translate(_ASCII_UPPER)


def _outside_sepa(country_code: str) -> str:
    return f"is from {country_code}, not a SEPA scheme country"


def _masked(value: object) -> str:
    return mask_iban(value) if isinstance(value, str) else _type_of(value)


def _shown(value: object) -> str | None:
    # Non-strings are shown by type: their str() can be huge, or anything at all.
    return None if isinstance(value, str) else _type_of(value)


def _type_of(value: object) -> str:
    return f"<{type(value).__name__}>"


def _is_valid(validate: Callable[[Any], str], value: object) -> bool:
    try:
        validate(value)
    except errors.SepaEngineError:
        return False
    return True
