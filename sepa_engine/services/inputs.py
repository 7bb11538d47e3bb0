"""What upstream sends to the registry: typed, immutable inputs.

Each input checks the *types* of its fields when it is built, so a wrong type is refused
with the field's name before any service looks at it; rules on the values (lengths,
checksums, known references) are the services' business. ``from_mapping`` builds an input
from a JSON record: missing and unknown fields are refused by name, dates are read from
ISO text.

Field names in errors are the JSON names (``address.town``, ``signed_on``), so a message
points at the same place in a file as in a Python call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from sepa_engine import errors
from sepa_engine.domain import text

T = TypeVar("T", bound="_Input")


class _Input:
    """Shared construction from a JSON record (``from_mapping``) and type checks."""

    __slots__ = ()

    # field -> accepted types; None in the tuple means the field is optional.
    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {}
    _dates: ClassVar[frozenset[str]] = frozenset()
    _prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for name, accepted in self._types.items():
            _check_type(self._prefix + name, getattr(self, name), accepted)

    @classmethod
    def from_mapping(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
        if not isinstance(data, Mapping):
            raise errors.InvalidFormat(prefix.rstrip(".") or "record", _type_name(data), "must be an object")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key in data:
            if key not in names:
                raise errors.InvalidFormat(prefix + str(key), None, "is not a known field")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            required = field.default is dataclasses.MISSING
            if field.name not in data:
                if required:
                    raise errors.InvalidFormat(prefix + field.name, None, "is required")
                continue
            value = data[field.name]
            if field.name in cls._dates and isinstance(value, str):
                value = _iso_date(prefix + field.name, value)
            elif field.name == "address" and value is not None:
                value = AddressInput.from_mapping(value, prefix + "address.")
            values[field.name] = value
        return cls(**values)


@dataclasses.dataclass(frozen=True, slots=True)
class AddressInput(_Input):
    country: str
    town: str
    street: str | None = None
    building_number: str | None = None
    postcode: str | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "country": (str,),
        "town": (str,),
        "street": (str, None),
        "building_number": (str, None),
        "postcode": (str, None),
    }
    _prefix: ClassVar[str] = "address."


@dataclasses.dataclass(frozen=True, slots=True)
class CreditorInput(_Input):
    code: str
    name: str
    creditor_identifier: str
    iban: str
    bic: str | None = None
    local_instrument: str = "CORE"
    # The rules of the creditor's bank (domain/bank_profiles.py); version, lead time and
    # cut-off left out take the profile's defaults.
    bank_profile: str = "epc"
    pain008_version: str | None = None
    lead_days: int | None = None
    cutoff: str | None = None
    timezone: str = "Europe/Paris"
    max_per_file: int = 100_000
    first_collection_policy: str = "frst"
    requires_approval: bool = False
    address: AddressInput | None = None
    ultimate_creditor_name: str | None = None
    ultimate_creditor_id: str | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "code": (str,),
        "name": (str,),
        "creditor_identifier": (str,),
        "iban": (str,),
        "bic": (str, None),
        "local_instrument": (str,),
        "bank_profile": (str,),
        "pain008_version": (str, None),
        "lead_days": (int, None),
        "cutoff": (str, None),
        "timezone": (str,),
        "max_per_file": (int,),
        "first_collection_policy": (str,),
        "requires_approval": (bool,),
        "address": (AddressInput, None),
        "ultimate_creditor_name": (str, None),
        "ultimate_creditor_id": (str, None),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class DebtorAccountInput(_Input):
    reference: str
    name: str
    address: AddressInput | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "reference": (str,),
        "name": (str,),
        "address": (AddressInput, None),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class MandateInput(_Input):
    reference: str
    debtor_account: str
    signed_on: dt.date
    iban: str
    bic: str | None = None
    kind: str = "recurrent"
    # Reference of the mandate this one replaces; without it, the debtor account's active
    # mandate (if any) is the one replaced.
    supersedes: str | None = None
    # UltmtDbtr of every debit on this mandate: the party the debit is for when it is not
    # the account holder (required in the file when the mandate names one).
    ultimate_debtor_name: str | None = None
    ultimate_debtor_id: str | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "reference": (str,),
        "debtor_account": (str,),
        "signed_on": (dt.date,),
        "iban": (str,),
        "bic": (str, None),
        "kind": (str,),
        "supersedes": (str, None),
        "ultimate_debtor_name": (str, None),
        "ultimate_debtor_id": (str, None),
    }
    _dates: ClassVar[frozenset[str]] = frozenset({"signed_on"})


@dataclasses.dataclass(frozen=True, slots=True)
class DebitRequestInput(_Input):
    mandate: str
    # Euros as text ("12.34") or Decimal; never float (see domain/money.py).
    amount: str | Decimal
    remittance: str | None = None
    # None: the next TARGET day after today in the creditor's zone.
    requested_date: dt.date | None = None
    final: bool = False
    # UltmtCdtr of this debit alone, instead of the creditor's (if any).
    ultimate_creditor_name: str | None = None
    ultimate_creditor_id: str | None = None
    # What the debit pays (see domain/debit_gate.py): the invoices it names; or the one
    # invoice it carries, booked with it (number, dates; its amount is the request's); or,
    # explicitly, a payment on account. None of them: it pays the collectable balance.
    invoices: tuple[str, ...] | list[str] | None = None
    invoice_number: str | None = None
    invoice_issue_date: dt.date | None = None
    invoice_due_date: dt.date | None = None
    on_account: bool = False

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "mandate": (str,),
        "amount": (str, Decimal),
        "remittance": (str, None),
        "requested_date": (dt.date, None),
        "final": (bool,),
        "ultimate_creditor_name": (str, None),
        "ultimate_creditor_id": (str, None),
        "invoices": (list, tuple, None),
        "invoice_number": (str, None),
        "invoice_issue_date": (dt.date, None),
        "invoice_due_date": (dt.date, None),
        "on_account": (bool,),
    }
    _dates: ClassVar[frozenset[str]] = frozenset({"requested_date", "invoice_issue_date", "invoice_due_date"})


_TYPE_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    Decimal: "a Decimal",
    dt.date: "a date (YYYY-MM-DD)",
    AddressInput: "an address",
    list: "a list of strings",
    tuple: "a list of strings",
}


def _check_type(field: str, value: object, accepted: tuple[type | None, ...]) -> None:
    if isinstance(value, str):
        # The text rules hold at every door, the Python API's included (domain/text.py).
        text.check(field, value)
    if value is None:
        if None in accepted:
            return
        raise errors.InvalidFormat(field, None, "is required")
    for kind in accepted:
        if kind is None:
            continue
        # bool is an int and datetime is a date; neither is what such a field means.
        if kind is int and isinstance(value, bool):
            continue
        if kind is dt.date and isinstance(value, dt.datetime):
            continue
        if isinstance(value, kind):
            return
    words = " or ".join(_TYPE_WORDS.get(k, k.__name__) for k in accepted if k is not None)
    if isinstance(value, float) and Decimal in accepted:
        words += " (floats are not accepted for money)"
    raise errors.InvalidFormat(field, _type_name(value), f"must be {words}")


def _iso_date(field: str, value: str) -> dt.date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise errors.InvalidDate(field, value, "is not a date in the form YYYY-MM-DD") from None


def _type_name(value: object) -> str:
    # The type is what went wrong; the repr of an arbitrary object can be huge.
    return f"<{type(value).__name__}>"
