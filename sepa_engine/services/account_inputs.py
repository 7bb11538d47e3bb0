"""What the customer portals send about accounts: one pydantic model per input.

As in ``inputs.py``: frozen models refusing unknown fields, field types from
``input_types`` carrying the rules, errors named by JSON path (``invoices[1].amount``)
through ``input_errors``. ``schemas/accounts/*.json`` are generated from these models
(``input_schemas``); rules that need the ledger (balances, open invoices) stay in the services.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from sepa_engine import errors
from sepa_engine.services import input_types
from sepa_engine.services.input_types import (
    Amount,
    AwareDateTime,
    Bic,
    Code,
    CollectionMode,
    Country,
    DebtorName,
    DisputeStatus,
    Email,
    Frequency,
    Iban,
    IdempotencyKey,
    Integer,
    IsoDate,
    Label,
    LedgerKind,
    Name,
    Note,
    Phone,
    Postcode,
    Reference,
    Unique,
)
from sepa_engine.services.inputs import InputModel, described

T = TypeVar("T")


# --- ledger entries ------------------------------------------------------------------------


class LedgerEntryInput(InputModel):
    """An invoice, a credit note or a fee the creditor records on an account."""

    model_config = described(
        "Ledger entry",
        "An invoice, a credit note or a fee a creditor records on a customer's account (`sepa-engine accounts "
        "invoices|credit-notes|fees add --file`). Payments are booked by the engine from the debits it sends; returned "
        "payments from the bank's returns. The idempotency key is given beside the document (--idempotency-key), not in it.",
    )

    kind: LedgerKind = Field(
        description="What the document is: invoice and fee raise what the customer owes, credit_note lowers it."
    )
    number: Reference = Field(
        description="Document number, unique per creditor and kind; the customer selects and disputes invoices by it."
    )
    issue_date: IsoDate = Field(
        description="Issue date (YYYY-MM-DD); orders the statement and decides which invoices are the oldest."
    )
    amount: Amount = Field(
        description="Amount in euros with a dot and at most two decimals, e.g. \"120.50\"; always positive (the kind "
        "gives the direction)."
    )
    due_date: IsoDate | None = Field(
        default=None, description="Due date (YYYY-MM-DD), not before the issue date; shown on statements."
    )
    label: Label | None = Field(default=None, description="Free text shown on statements, at most 140 characters.")
    applies_to: Reference | None = Field(
        default=None,
        description="Credit notes only: number of the invoice (or fee) of the same account this credit note settles first.",
    )


# --- on demand -----------------------------------------------------------------------------
InvoiceList = Annotated[tuple[Reference, ...], Field(min_length=1, json_schema_extra={"uniqueItems": True}), Unique]


class PayNowInput(InputModel):
    """Pay part or all of the balance (``amount``), or a selection of invoices (numbers)."""

    model_config = described(
        "Payment on demand",
        "A customer's \"pay now\" on an account in on-demand mode: part or all of the collectable balance (amount), or "
        "a selection of invoices (invoices). Exactly one of the two. The debit is requested for the next TARGET "
        "business day. The idempotency key is given beside the document (--idempotency-key), not in it.",
        oneOf=[{"required": ["amount"]}, {"required": ["invoices"]}],
    )

    amount: Amount | None = Field(
        default=None, description="Euros to collect, more than zero, at most two decimals, at most the collectable balance."
    )
    invoices: InvoiceList | None = Field(
        default=None,
        description="Numbers of the invoices to pay; each must be open, not under dispute and not already being "
        "collected. The debit's remittance text names them and the payment is allocated to them.",
    )

    @model_validator(mode="after")
    def _one_of_the_two(self) -> PayNowInput:
        if (self.amount is None) == (self.invoices is None):
            raise PydanticCustomError(
                "one_of", "{rule}", {"rule": "give either an amount or a list of invoices, not both", "field": "amount"}
            )
        return self


class GroupSelection(InputModel):
    """The invoices to pay at one creditor of the group."""

    creditor: Code = Field(description="Creditor code.")
    invoices: InvoiceList = Field(description="Numbers of that creditor's invoices to pay.")


class GroupPaymentInput(InputModel):
    """One customer paying a selection of invoices at several creditors of one group."""

    model_config = described(
        "Payment across the creditors of a group",
        "One customer paying a selection of invoices at several creditors of the same group: one debit per creditor, "
        "each under that creditor's mandate and identifier; all are created or none. The idempotency key is given "
        "beside the document (--idempotency-key), not in it.",
    )

    customer_reference: Reference = Field(
        description="The customer's reference shared by its accounts at the creditors of the group (account detail "
        "customer_reference)."
    )
    selections: tuple[GroupSelection, ...] = Field(
        min_length=1, description="The invoices to pay, per creditor; each creditor at most once."
    )


# --- disputes ------------------------------------------------------------------------------
class DisputedInvoice(InputModel):
    number: Reference = Field(description="Invoice number.")
    # None: the whole invoice is disputed.
    amount: Amount | None = Field(
        default=None, description="Disputed part of the invoice in euros; the whole invoice when absent."
    )


def _whole_invoice(value: object) -> object:
    # A bare number disputes the whole invoice.
    return {"number": value} if isinstance(value, str) else value


DisputedLine = Annotated[
    DisputedInvoice, BeforeValidator(_whole_invoice, json_schema_input_type=Reference | DisputedInvoice)
]


class DisputeInput(InputModel):
    model_config = described(
        "Dispute",
        "A customer contests one or more invoices of an account. While the dispute is open or under review, these "
        "invoices are not collected. The idempotency key is given beside the document (--idempotency-key), not in it.",
    )

    reason: Note = Field(description="Why the customer contests the invoices, at most 2000 characters.")
    invoices: tuple[DisputedLine, ...] = Field(
        min_length=1,
        description="The contested invoices: a number (the whole invoice) or an object with the disputed amount.",
    )

    @classmethod
    def of(cls, reason: str, *numbers: str) -> DisputeInput:
        """Whole invoices, by number."""
        return cls(reason=reason, invoices=tuple(DisputedInvoice(number=number) for number in numbers))


class DisputeTransitionInput(InputModel):
    model_config = described(
        "Dispute status change",
        "A step of a dispute's follow-up, by the creditor's staff. open -> under_review | accepted | rejected; "
        "under_review -> accepted | rejected. Accepting books a credit note for the disputed amount. The idempotency "
        "key is given beside the document (--idempotency-key), not in it.",
    )

    status: DisputeStatus = Field(description="The new status.")
    note: Note | None = Field(default=None, description="Comment kept in the dispute's history, at most 2000 characters.")
    credit_note_number: Reference | None = Field(
        default=None, description="Accepting only: number of the credit note created (default D-<dispute id>)."
    )


# --- mandates, modes and details -----------------------------------------------------------
class ESignedMandateInput(InputModel):
    """A mandate the debtor signed electronically, with the evidence of the signature."""

    model_config = described(
        "Electronically signed mandate",
        "A SEPA mandate the debtor signed electronically, with the evidence of the signature. Registering it supersedes "
        "the account's mandate: pending debits move to it and the next file carries the amendment details. The "
        "idempotency key is given beside the document (--idempotency-key), not in it.",
    )

    reference: Reference = Field(
        description="Unique mandate reference (RUM/UMR), at most 35 characters; may be the old one when only the bank "
        "account changes."
    )
    # Not in the future: checked by the service with the injected clock.
    signed_at: AwareDateTime = Field(
        description="Date and time of the signature with its UTC offset (ISO 8601, e.g. 2026-11-20T10:15:00+01:00); "
        "not in the future."
    )
    iban: Iban = Field(description="IBAN of the account to debit, compact; its check digits are verified.")
    signer_name: DebtorName = Field(description="Name of the person who signed.")
    evidence_id: IdempotencyKey = Field(
        description="Identifier of the signature's evidence at the e-signature provider, unique per creditor."
    )
    bic: Bic | None = Field(default=None, description="BIC of the debtor's bank, 8 or 11 characters; optional in SEPA.")


class ModeChangeInput(InputModel):
    model_config = described(
        "Collection mode change",
        "Switch an account between on-demand and automatic collection, or change its schedule. Switching from on "
        "demand to automatic needs a new electronically signed mandate. The idempotency key is given beside the "
        "document (--idempotency-key), not in it.",
    )

    mode: CollectionMode = Field(
        description="on_demand: the customer asks for each debit; automatic: the schedule debits the collectable "
        "balance each period."
    )
    frequency: Frequency | None = Field(
        default=None, description="Automatic only: monthly, or quarterly (January, April, July, October)."
    )
    day: Integer | None = Field(
        default=None, ge=1, le=28,
        description="Automatic only: day of the month of the collection, 1 to 28 (moved to the next TARGET day when "
        "TARGET is closed).",
    )
    # Required to switch from on demand to automatic.
    mandate: ESignedMandateInput | None = Field(
        default=None, description="The new electronically signed mandate; required to switch from on demand to automatic."
    )
    # Required to leave automatic mode (the creditor's staff only): kept in the history.
    reason: Label | None = Field(
        default=None,
        description="Why the account leaves automatic mode; required then, and only the creditor's staff (actor "
        "staff:<name>) may do it. Kept in the account's history.",
    )


class AccountDetailsInput(InputModel):
    """The document of an account-details change: a field absent is kept, null clears it."""

    model_config = described(
        "Account details",
        "Billing details of an account (the portal's \"account information\"). Only the fields present change; null "
        "clears a field. Every change is kept with who made it, when, and the old and new values. The idempotency key "
        "is given beside the document (--idempotency-key), not in it.",
        minProperties=1,
    )

    customer_reference: Reference | None = Field(
        default=None, description="The customer's reference shared across the creditors of a group, unique per creditor."
    )
    contact_name: DebtorName | None = Field(default=None, description="Main contact: first and last name.")
    contact_role: Name | None = Field(default=None, description="Main contact: role or function.")
    billing_street: Label | None = Field(default=None, description="Billing address: street and number.")
    billing_postcode: Postcode | None = Field(default=None, description="Billing address: post code.")
    billing_town: Name | None = Field(default=None, description="Billing address: town.")
    billing_country: Country | None = Field(default=None, description="Billing address: ISO 3166 country code.")
    phone: Phone | None = Field(default=None, description="Phone number: digits, spaces and + ( ) . -")
    fax: Phone | None = Field(default=None, description="Fax number: digits, spaces and + ( ) . -")
    email: Email | None = Field(default=None, description="Billing email address (pre-notifications are sent there).")

    @model_validator(mode="before")
    @classmethod
    def _changes_something(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data:
            raise PydanticCustomError("min_properties", "{rule}", {"rule": "must change at least one field"})
        return data


# The account details a portal shows and lets the customer change ("informations compte").
DETAIL_FIELDS = tuple(AccountDetailsInput.model_fields)


class DetailsInput:
    """The details to change, checked by ``AccountDetailsInput``: a field absent is kept, a
    field set to None is cleared. ``changes`` holds only the fields given."""

    __slots__ = ("changes",)
    changes: Mapping[str, str | None]

    def __init__(self, changes: Mapping[str, str | None]) -> None:
        if not isinstance(changes, Mapping):
            raise errors.InvalidFormat("changes", f"<{type(changes).__name__}>", "must be an object")
        if not changes:
            raise errors.InvalidFormat("changes", None, "must change at least one field")
        checked = AccountDetailsInput.from_mapping(changes)
        object.__setattr__(self, "changes", {name: getattr(checked, name) for name in changes})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"DetailsInput is immutable: {name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DetailsInput) and dict(self.changes) == dict(other.changes)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.changes.items())))

    def __repr__(self) -> str:
        return f"DetailsInput({dict(self.changes)!r})"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "", location: str | None = None) -> DetailsInput:
        checked = AccountDetailsInput.from_mapping(data, prefix, location)
        return cls({name: getattr(checked, name) for name in checked.model_fields_set})


class CreditorSettingsInput(InputModel):
    """Account settings of a creditor; a field left None is kept."""

    model_config = described(
        "Creditor account settings",
        "Settings of a creditor for customer accounts; a field absent is kept. The idempotency key is given beside the "
        "document (--idempotency-key), not in it.",
        minProperties=1,
    )

    prenotification_days: Integer | None = Field(
        default=None, ge=1, le=60,
        description="Calendar days between a pre-notification and its automatic debit, 1 to 60 (default 14).",
    )
    group_code: Code | None = Field(
        default=None, description="Group of creditors whose customers may pay several of them in one call."
    )

    @model_validator(mode="before")
    @classmethod
    def _changes_something(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data:
            raise PydanticCustomError("min_properties", "{rule}", {"rule": "must change at least one setting"})
        return data


# --- helpers for command-line options --------------------------------------------------------
def read_date(field: str, value: object) -> dt.date:
    """A date from ISO text, for options given on a command line."""
    return _option(field, value, input_types._date)


def iso_datetime(field: str, value: object) -> dt.datetime:
    """An aware datetime from ISO 8601 text; a time without an offset is refused, not guessed."""
    return _option(field, value, input_types.aware_datetime)


def _option(field: str, value: object, read: Callable[[object], T]) -> T:
    try:
        return read(value)
    except PydanticCustomError as exc:
        raise errors.InvalidDate(field, value if isinstance(value, str) else None, str(exc)) from None

