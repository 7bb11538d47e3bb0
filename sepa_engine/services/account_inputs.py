"""What the customer portals send about accounts: typed, immutable inputs.

As in ``inputs.py``, each input checks the types of its fields when built and
``from_mapping`` reads a JSON record (unknown and missing fields refused by name, dates and
times from ISO text); rules on the values are the services' business. Field names in
errors are the JSON names (``invoices[1].amount``), so a message points at the same place
in a file as in a Python call. The JSON Schemas are in ``schemas/accounts/``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from sepa_engine import errors
from sepa_engine.services.inputs import _check_type, _Input, _iso_date, _type_name

Amount = str | Decimal
T = TypeVar("T")


def _object(data: object, prefix: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise errors.InvalidFormat(prefix.rstrip(".") or "record", _type_name(data), "must be an object")
    return data


def _list(field: str, value: object) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise errors.InvalidFormat(field, _type_name(value), "must be a list")
    return list(value)


def _strings(field: str, values: object) -> tuple[str, ...]:
    items = _list(field, values)
    for index, item in enumerate(items):
        _check_type(f"{field}[{index}]", item, (str,))
    return tuple(items)


def _nested(prefix: str, build: Callable[[], T]) -> T:
    """``build()``, with errors of the nested record named from the document's root."""
    try:
        return build()
    except errors.SepaEngineError as exc:
        if exc.field is None or exc.field.startswith(prefix.rstrip(".")):
            raise
        raise type(exc)(
            prefix + exc.field, exc.value, exc.rule, reason_code=exc.reason_code, location=exc.location,
            shown_value=exc.shown_value,
        ) from None


def iso_datetime(field: str, value: object) -> dt.datetime:
    """An aware datetime from ISO 8601 text; a time without an offset is refused, not guessed."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise errors.InvalidDate(field, value, "is not a date and time in ISO 8601 form") from None
    else:
        raise errors.InvalidFormat(field, _type_name(value), "must be a date and time (ISO 8601)")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise errors.InvalidDate(field, str(value), "has no UTC offset (e.g. 2026-11-20T10:15:00+01:00)")
    return parsed


# --- ledger entries ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class LedgerEntryInput(_Input):
    """An invoice, a credit note or a fee the creditor records on an account."""

    kind: str
    number: str
    issue_date: dt.date
    amount: Amount
    due_date: dt.date | None = None
    label: str | None = None
    # Credit notes: the invoice (number) they settle first.
    applies_to: str | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "kind": (str,),
        "number": (str,),
        "issue_date": (dt.date,),
        "amount": (str, Decimal),
        "due_date": (dt.date, None),
        "label": (str, None),
        "applies_to": (str, None),
    }
    _dates: ClassVar[frozenset[str]] = frozenset({"issue_date", "due_date"})


# --- on demand -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class PayNowInput(_Input):
    """Pay part or all of the balance (``amount``), or a selection of invoices (numbers)."""

    amount: Amount | None = None
    invoices: tuple[str, ...] | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "amount": (str, Decimal, None),
        "invoices": (tuple, None),
    }

    def __post_init__(self) -> None:
        _Input.__post_init__(self)
        if self.invoices is not None:
            _strings("invoices", self.invoices)
        if (self.amount is None) == (self.invoices is None):
            raise errors.InvalidFormat("amount", None, "give either an amount or a list of invoices, not both")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "") -> PayNowInput:
        record = dict(_object(data, prefix))
        if "invoices" in record and record["invoices"] is not None:
            record["invoices"] = _strings(prefix + "invoices", record["invoices"])
        return _Input.from_mapping.__func__(cls, record, prefix)  # type: ignore[attr-defined,no-any-return]


@dataclasses.dataclass(frozen=True, slots=True)
class GroupSelection(_Input):
    """The invoices to pay at one creditor of the group."""

    creditor: str
    invoices: tuple[str, ...]

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {"creditor": (str,), "invoices": (tuple,)}

    def __post_init__(self) -> None:
        _Input.__post_init__(self)
        if not _strings("invoices", self.invoices):
            raise errors.InvalidFormat("invoices", None, "must name at least one invoice")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "") -> GroupSelection:
        record = dict(_object(data, prefix))
        if "invoices" in record:
            record["invoices"] = _strings(prefix + "invoices", record["invoices"])
        return _Input.from_mapping.__func__(cls, record, prefix)  # type: ignore[attr-defined,no-any-return]


@dataclasses.dataclass(frozen=True, slots=True)
class GroupPaymentInput(_Input):
    """One customer paying a selection of invoices at several creditors of one group."""

    customer_reference: str
    selections: tuple[GroupSelection, ...]

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {"customer_reference": (str,), "selections": (tuple,)}

    def __post_init__(self) -> None:
        _Input.__post_init__(self)
        if not self.selections:
            raise errors.InvalidFormat("selections", None, "must name at least one creditor")
        for index, selection in enumerate(self.selections):
            if not isinstance(selection, GroupSelection):
                raise errors.InvalidFormat(f"selections[{index}]", _type_name(selection), "must be a GroupSelection")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "") -> GroupPaymentInput:
        record = dict(_object(data, prefix))
        if "selections" in record:
            selections = []
            for index, item in enumerate(_list(prefix + "selections", record["selections"])):
                where = f"{prefix}selections[{index}]."
                selections.append(_nested(where, lambda: GroupSelection.from_mapping(item, where)))  # noqa: B023
            record["selections"] = tuple(selections)
        return _Input.from_mapping.__func__(cls, record, prefix)  # type: ignore[attr-defined,no-any-return]


# --- disputes ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class DisputedInvoice(_Input):
    number: str
    # None: the whole invoice is disputed.
    amount: Amount | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {"number": (str,), "amount": (str, Decimal, None)}


@dataclasses.dataclass(frozen=True, slots=True)
class DisputeInput(_Input):
    reason: str
    invoices: tuple[DisputedInvoice, ...]

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {"reason": (str,), "invoices": (tuple,)}

    def __post_init__(self) -> None:
        _Input.__post_init__(self)
        if not self.invoices:
            raise errors.InvalidFormat("invoices", None, "must name at least one invoice")
        for index, item in enumerate(self.invoices):
            if not isinstance(item, DisputedInvoice):
                raise errors.InvalidFormat(f"invoices[{index}]", _type_name(item), "must be a DisputedInvoice")

    @classmethod
    def of(cls, reason: str, *numbers: str) -> DisputeInput:
        """Whole invoices, by number."""
        return cls(reason, tuple(DisputedInvoice(number) for number in numbers))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "") -> DisputeInput:
        record = dict(_object(data, prefix))
        if "invoices" in record:
            lines = []
            for index, item in enumerate(_list(prefix + "invoices", record["invoices"])):
                where = f"{prefix}invoices[{index}]."
                # A bare number disputes the whole invoice.
                lines.append(
                    _nested(where, lambda: DisputedInvoice(item) if isinstance(item, str) else DisputedInvoice.from_mapping(item, where))  # noqa: B023
                )
            record["invoices"] = tuple(lines)
        return _Input.from_mapping.__func__(cls, record, prefix)  # type: ignore[attr-defined,no-any-return]


@dataclasses.dataclass(frozen=True, slots=True)
class DisputeTransitionInput(_Input):
    status: str
    note: str | None = None
    # Accepting: the number of the credit note it creates (default D-<dispute id>).
    credit_note_number: str | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "status": (str,),
        "note": (str, None),
        "credit_note_number": (str, None),
    }


# --- mandates, modes and details -----------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class ESignedMandateInput(_Input):
    """A mandate the debtor signed electronically, with the evidence of the signature."""

    reference: str
    signed_at: dt.datetime
    iban: str
    signer_name: str
    evidence_id: str
    bic: str | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "reference": (str,),
        "signed_at": (dt.datetime,),
        "iban": (str,),
        "signer_name": (str,),
        "evidence_id": (str,),
        "bic": (str, None),
    }

    def __post_init__(self) -> None:
        _Input.__post_init__(self)
        iso_datetime("signed_at", self.signed_at)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "") -> ESignedMandateInput:
        record = dict(_object(data, prefix))
        if "signed_at" in record:
            record["signed_at"] = iso_datetime(prefix + "signed_at", record["signed_at"])
        return _Input.from_mapping.__func__(cls, record, prefix)  # type: ignore[attr-defined,no-any-return]


@dataclasses.dataclass(frozen=True, slots=True)
class ModeChangeInput(_Input):
    mode: str
    frequency: str | None = None
    day: int | None = None
    # Required to switch from on demand to automatic.
    mandate: ESignedMandateInput | None = None
    # Required to leave automatic mode (the creditor's staff only): kept in the history.
    reason: str | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "mode": (str,),
        "frequency": (str, None),
        "day": (int, None),
        "mandate": (ESignedMandateInput, None),
        "reason": (str, None),
    }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "") -> ModeChangeInput:
        record = dict(_object(data, prefix))
        if record.get("mandate") is not None:
            where = prefix + "mandate."
            record["mandate"] = _nested(where, lambda: ESignedMandateInput.from_mapping(record["mandate"], where))
        return _Input.from_mapping.__func__(cls, record, prefix)  # type: ignore[attr-defined,no-any-return]


# The account details a portal shows and lets the customer change ("informations compte").
DETAIL_FIELDS = (
    "customer_reference",
    "contact_name",
    "contact_role",
    "billing_street",
    "billing_postcode",
    "billing_town",
    "billing_country",
    "phone",
    "fax",
    "email",
)


@dataclasses.dataclass(frozen=True, slots=True)
class DetailsInput:
    """The details to change: a field absent is kept, a field set to None is cleared."""

    changes: Mapping[str, str | None]

    def __post_init__(self) -> None:
        if not isinstance(self.changes, Mapping):
            raise errors.InvalidFormat("changes", _type_name(self.changes), "must be an object")
        if not self.changes:
            raise errors.InvalidFormat("changes", None, "must change at least one field")
        for name, value in self.changes.items():
            if name not in DETAIL_FIELDS:
                raise errors.InvalidFormat(str(name), None, "is not a known field")
            _check_type(name, value, (str, None))
        object.__setattr__(self, "changes", MappingProxyType(dict(self.changes)))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "") -> DetailsInput:
        record = _object(data, prefix)
        for name in record:
            if name not in DETAIL_FIELDS:
                raise errors.InvalidFormat(prefix + str(name), None, "is not a known field")
        return cls(dict(record))


@dataclasses.dataclass(frozen=True, slots=True)
class CreditorSettingsInput(_Input):
    """Account settings of a creditor; a field left None is kept."""

    prenotification_days: int | None = None
    group_code: str | None = None

    _types: ClassVar[dict[str, tuple[type | None, ...]]] = {
        "prenotification_days": (int, None),
        "group_code": (str, None),
    }


def read_date(field: str, value: object) -> dt.date:
    """A date from ISO text, for options given on a command line."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise errors.InvalidFormat(field, _type_name(value), "must be a date (YYYY-MM-DD)")
    return _iso_date(field, value)
