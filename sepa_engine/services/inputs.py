"""What upstream sends to the registry: one pydantic model per input, the only statement
of the contract.

Each model is frozen and refuses unknown fields; its field types (``input_types``) carry
the rules (type, length, pattern, text rules). The same model checks a ``load`` record, an
``enqueue`` line, an HTTP body and a Python call, and is what ``schemas/*.json`` and the
OpenAPI document are generated from (``input_schemas``). Rules that need the ledger
(checksums, known references, a signature in the future) stay in the services.

A bad input raises ``input_errors.InputRefused`` (an ``errors.InvalidFormat``) naming the
field by its JSON path (``address.town``, ``invoices[0]``), so a message points at the same
place in a file as in a Python call. Models accept their fields by position too, in the
order declared, as the dataclasses they replace did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sepa_engine import errors
from sepa_engine.services import input_errors
from sepa_engine.services.input_types import (
    Amount,
    BankProfile,
    Bic,
    BuildingNumber,
    Code,
    Country,
    CreditorIdentifier,
    DebtorName,
    FirstCollectionPolicy,
    Flag,
    Iban,
    IdempotencyKey,
    Integer,
    IsoDate,
    LocalInstrument,
    MandateKind,
    Name,
    Note,
    Pain008Version,
    Postcode,
    Reference,
    Remittance,
    Resolution,
    Street,
    TimeOfDay,
    TimeZoneName,
    TokenAccess,
    Town,
)


def described(title: str, description: str, **schema: Any) -> ConfigDict:
    """The configuration of an input model: frozen, no unknown field, and its schema's words
    (``schema``: keywords of the whole document, e.g. ``minProperties``)."""
    return ConfigDict(
        frozen=True, extra="forbid", title=title, json_schema_extra={"description": description, **schema}
    )


class InputModel(BaseModel):
    """Construction by keyword or position, from a JSON record, with the project's errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, *args: Any, **data: Any) -> None:
        if args:
            names = list(type(self).model_fields)
            if len(args) > len(names):
                raise errors.InvalidFormat(type(self).__name__, None, f"takes at most {len(names)} positional values")
            data.update(zip(names, args, strict=False))
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise input_errors.refusal(exc) from None

    # Tells pydantic this __init__ only adapts the call: validation (model_validate, nested
    # models) builds instances without it, so errors stay pydantic's until refusal() words them.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked like a new input (``dataclasses.replace`` of old)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**values, **changes})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], prefix: str = "", location: str | None = None) -> Self:
        """The model of a decoded JSON record; errors name fields after ``prefix``."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise input_errors.refusal(exc, prefix, location) from None




class AddressInput(InputModel):
    model_config = described(
        "Postal address",
        "A structured postal address of a creditor or a debtor, as written into pain.008 files (PstlAdr). Town and "
        "country are required: structured addresses need both from November 2026. Free text is stored as sent and "
        "transliterated to the SEPA character set when a file is written.",
    )

    country: Country = Field(description="ISO 3166-1 alpha-2 country code, two capital letters (Ctry).")
    town: Town = Field(description="Town name (TwnNm), at most 35 characters.")
    street: Street | None = Field(default=None, description="Street name (StrtNm), at most 70 characters.")
    building_number: BuildingNumber | None = Field(default=None, description="Building number (BldgNb), at most 16 characters.")
    postcode: Postcode | None = Field(default=None, description="Post code (PstCd), at most 16 characters.")


class CreditorInput(InputModel):
    model_config = described(
        "Creditor",
        "A creditor collecting by SEPA direct debit, with the settings of its bank. One record of creditors.json. "
        "Creditors are configuration: a record whose IBAN, BIC or creditor identifier fails its checks is refused, "
        "not stored.",
    )

    code: Code = Field(
        description="Short name other records use to name this creditor: 1 to 32 characters among a-z, 0-9 and '-'; "
        "'pending' is reserved (the outbox folder of files awaiting approval)."
    )
    name: Name = Field(description="Creditor name as the debtor's bank shows it (Cdtr/Nm), at most 70 characters.")
    creditor_identifier: CreditorIdentifier = Field(
        description="SEPA creditor identifier (ICS, AT-02) in compact form, e.g. FR72ZZZ123456; its check digits are verified."
    )
    iban: Iban = Field(
        description="IBAN of the account the collections are credited to, compact (no spaces); its check digits and "
        "SEPA country are verified."
    )
    bic: Bic | None = Field(default=None, description="BIC of the creditor's bank, 8 or 11 characters; optional in SEPA.")
    local_instrument: LocalInstrument = Field(
        default="CORE", description="SEPA scheme of the collections: CORE (consumers) or B2B."
    )
    # The rules of the creditor's bank (domain/bank_profiles.py); version, lead time and
    # cut-off left out take the profile's defaults.
    bank_profile: BankProfile = Field(
        default="epc",
        description="Rules of the creditor's bank (README, 'Bank profiles'): accepted pain.008 versions and their end "
        "dates, address form, closing days beyond TARGET, default cut-off and lead time. Default epc.",
    )
    pain008_version: Pain008Version | None = Field(
        default=None,
        description="pain.008 version the creditor's bank accepts; default: the profile's default. A version the "
        "profile no longer accepts is refused.",
    )
    lead_days: Integer | None = Field(
        default=None, ge=1, le=30,
        description="TARGET days between the day a file reaches the bank and the collection date (1 is the scheme "
        "minimum); default: the profile's.",
    )
    cutoff: TimeOfDay | None = Field(
        default=None,
        description="Bank cut-off as wall-clock time HH:MM in the creditor's time zone; a file sent later counts as "
        "sent the next TARGET day. Default: the profile's.",
    )
    timezone: TimeZoneName = Field(
        default="Europe/Paris",
        description="IANA time zone of the creditor's bank, e.g. Europe/Paris; business dates and the cut-off are read in it.",
    )
    max_per_file: Integer = Field(
        default=100_000, ge=1, le=1_000_000, description="Most transactions in one pain.008 file for this creditor's bank."
    )
    first_collection_policy: FirstCollectionPolicy = Field(
        default="frst",
        description="Sequence type of the first collection of a recurrent mandate: frst (FRST) or rcur (RCUR, allowed "
        "since November 2016).",
    )
    requires_approval: Flag = Field(
        default=False,
        description="When true, each file written for this creditor waits in outbox/pending/<code>/ until a person "
        "runs `sepa-engine batch approve ID`; only then is it moved to the folder the bank transfer reads. Default false.",
    )
    address: AddressInput | None = Field(
        default=None, description="Postal address of the creditor (required once a debtor is outside the EEA)."
    )
    ultimate_creditor_name: Name | None = Field(
        default=None,
        description="UltmtCdtr/Nm of every debit of this creditor unless the request names its own: the party the "
        "creditor collects for (an owner, for a property manager).",
    )
    ultimate_creditor_id: Reference | None = Field(
        default=None,
        description="UltmtCdtr identifier (OrgId/Othr/Id), SEPA characters, at most 35; only with ultimate_creditor_name.",
    )


class DebtorAccountInput(InputModel):
    model_config = described(
        "Debtor account", "A customer of a creditor, who signs mandates. One record of debtor-accounts.json."
    )

    reference: Reference = Field(
        description="Customer number, unique per creditor; mandates name their debtor account by it."
    )
    name: DebtorName = Field(
        description="Debtor name (Dbtr/Nm); stored as sent, transliterated to the SEPA set and cut to 70 characters in files."
    )
    address: AddressInput | None = Field(
        default=None,
        description="Postal address of the debtor; required by the scheme for accounts in SEPA countries outside the "
        "EEA (CH, GB, MC...).",
    )


class MandateInput(InputModel):
    model_config = described(
        "Mandate",
        "A SEPA direct-debit mandate signed by a debtor. One record of mandates.json. A new mandate replaces "
        "(supersedes) the debtor account's active mandate, or the one named in supersedes, and takes over its pending "
        "requests. IBAN and BIC checksums, the SEPA country and the reference's characters are business rules: a record "
        "breaking them is stored and reported with its problems, and its collections are refused. A signature date "
        "after today is refused.",
    )

    reference: Reference = Field(
        description="Unique mandate reference (UMR, RUM), at most 35 characters; it may repeat the reference of the "
        "mandate it replaces."
    )
    debtor_account: Reference = Field(
        description="Reference (customer number) of the debtor account that signed the mandate."
    )
    # Not after today: the registry checks it with the injected clock (text.check_past_date).
    signed_on: IsoDate = Field(description="Date of signature, YYYY-MM-DD; not after today.")
    iban: Iban = Field(description="IBAN of the debtor's account, compact (no spaces).")
    bic: Bic | None = Field(default=None, description="BIC of the debtor's bank, 8 or 11 characters; optional in SEPA.")
    kind: MandateKind = Field(
        default="recurrent", description="recurrent (default) or one_off (a single collection, OOFF)."
    )
    # Without it, the debtor account's active mandate (if any) is the one replaced.
    supersedes: Reference | None = Field(
        default=None,
        description="Reference of the mandate this one replaces, when it is not the debtor account's active mandate.",
    )
    ultimate_debtor_name: Name | None = Field(
        default=None,
        description="UltmtDbtr/Nm of every debit on this mandate: the party the debit is for when it is not the account "
        "holder. Written in every file when the mandate names one.",
    )
    ultimate_debtor_id: Reference | None = Field(
        default=None,
        description="UltmtDbtr identifier (OrgId/Othr/Id), SEPA characters, at most 35; only with ultimate_debtor_name.",
    )


class DebitRequestInput(InputModel):
    model_config = described(
        "Debit request",
        "A request to collect an amount on a mandate. One record of requests.json. An amount of zero or above "
        "999999999.99, or a mandate that cannot be collected, is a business rule: the request is stored with its "
        "problems and the collection run refuses it with a reason code. Every request says what it pays: the invoices "
        "it names (invoices), the one invoice it carries (invoice_number, invoice_issue_date, invoice_due_date; booked "
        "with the request, its amount being the request's), or explicitly a payment on account (on_account); a request "
        "that says none of these pays the account's collectable balance. The account gate refuses, naming the field, "
        "the rule and the ISO reason code, a debit that would take money under dispute (MS02), already requested "
        "(AM05) or more than is due (AM09), on an account collected by its schedule, or on a mandate that is not the "
        "account's current one (MD01).",
    )

    mandate: Reference = Field(
        description="Reference of the mandate to collect on; the reference of a superseded mandate leads to the mandate "
        "that replaced it."
    )
    amount: Amount = Field(
        description="Amount in euros as a string with a dot and at most two decimals, e.g. \"12.34\"; numbers are "
        "refused, since floats cannot hold cents exactly."
    )
    remittance: Remittance | None = Field(
        default=None, description="Unstructured remittance information shown to the debtor, at most 140 characters."
    )
    # None: the next TARGET day after today in the creditor's zone.
    requested_date: IsoDate | None = Field(
        default=None,
        description="Earliest collection date wanted, YYYY-MM-DD; by default the next TARGET day after today in the "
        "creditor's time zone.",
    )
    final: Flag = Field(default=False, description="true when this is the last collection on the mandate (FNAL).")
    ultimate_creditor_name: Name | None = Field(
        default=None,
        description="UltmtCdtr/Nm of this debit alone, instead of the creditor's: the party the creditor collects for "
        "(an owner, for a property manager).",
    )
    ultimate_creditor_id: Reference | None = Field(
        default=None,
        description="UltmtCdtr identifier (OrgId/Othr/Id), SEPA characters, at most 35; only with ultimate_creditor_name.",
    )
    # What the debit pays (see domain/debit_gate.py).
    invoices: Annotated[tuple[Reference, ...], Field(min_length=1)] | None = Field(
        default=None,
        description="Numbers of the account's invoices this request pays, in the order they are paid; the amount is at "
        "most what they still owe. Not with invoice_number or on_account.",
    )
    invoice_number: Reference | None = Field(
        default=None,
        description="Number of the invoice this request carries: the engine books it (once: the same number with the "
        "same details is recognised, with other details refused) and the request pays it. Its amount is the request's "
        "amount.",
    )
    invoice_issue_date: IsoDate | None = Field(
        default=None, description="Issue date of the carried invoice, YYYY-MM-DD; required with invoice_number."
    )
    invoice_due_date: IsoDate | None = Field(
        default=None, description="Due date of the carried invoice, YYYY-MM-DD, not before its issue date."
    )
    on_account: Flag = Field(
        default=False,
        description="true for an explicit payment on account: it pays no invoice yet and shows as a payment on account "
        "on the statement. Not with invoices or invoice_number.",
    )


# --- the records of ``sepa-engine load`` and ``enqueue``: the input, its key and its creditor ----
_KEY_WITHIN = (
    "Unique key of this {what} within the creditor. Sending the same key with the same content again changes "
    "nothing; with other content it is refused."
)


class CreditorRecord(CreditorInput):
    """A line of creditors.json: the creditor and the key of its registration."""

    idempotency_key: IdempotencyKey = Field(
        description="Unique key of this registration (global for creditors). Sending the same key with the same "
        "content again changes nothing; with other content it is refused."
    )
    OUTSIDE: ClassVar[tuple[str, ...]] = ("idempotency_key",)


class DebtorAccountRecord(DebtorAccountInput):
    idempotency_key: IdempotencyKey = Field(description=_KEY_WITHIN.format(what="registration"))
    creditor: Code = Field(description="Code of the creditor this customer belongs to.")
    OUTSIDE: ClassVar[tuple[str, ...]] = ("idempotency_key", "creditor")


class MandateRecord(MandateInput):
    idempotency_key: IdempotencyKey = Field(description=_KEY_WITHIN.format(what="registration"))
    creditor: Code = Field(description="Code of the creditor the mandate is given to.")
    OUTSIDE: ClassVar[tuple[str, ...]] = ("idempotency_key", "creditor")


class DebitRequestRecord(DebitRequestInput):
    idempotency_key: IdempotencyKey = Field(description=_KEY_WITHIN.format(what="request"))
    creditor: Code = Field(description="Code of the creditor collecting.")
    OUTSIDE: ClassVar[tuple[str, ...]] = ("idempotency_key", "creditor")


def split_record(record: InputModel, model: type[InputModel]) -> tuple[dict[str, Any], Any]:
    """``record``'s fields that travel outside the input (key, creditor), and the input."""
    outside = {name: getattr(record, name) for name in getattr(record, "OUTSIDE", ())}
    fields = {name: getattr(record, name) for name in model.model_fields}
    # Already checked as part of the record: built without validating twice.
    return outside, model.model_construct(_fields_set=record.model_fields_set - set(outside), **fields)


# --- bodies of the HTTP API that no file describes ------------------------------------------
class MandateRevocationInput(InputModel):
    model_config = described(
        "Mandate revocation",
        "Revoke the mandate in force under a reference; its pending requests are cancelled. Revoking a revoked mandate "
        "changes nothing.",
    )

    reference: Reference = Field(description="The mandate reference (UMR).")
    reason: Note = Field(description="Why (kept with the mandate).")


class ExceptionResolutionInput(InputModel):
    model_config = described(
        "Resolution of a return exception",
        "Close an exception: \"ignored\", or the id of a debit request of the creditor the record is then applied to.",
    )

    resolution: Resolution = Field(description="\"ignored\", or the id of a debit request of the creditor.")
    note: Note | None = Field(default=None, description="Comment kept with the resolution.")


class ApiTokenInput(InputModel):
    model_config = described(
        "API token",
        "A bearer token of the HTTP API (`sepa-engine tokens create`): who uses it, the creditors it acts for, and "
        "whether it may write.",
    )

    name: Name = Field(description="Who uses the token (shown in lists and kept as the actor of its changes).")
    creditors: Annotated[tuple[Code, ...], Field(min_length=1, max_length=1000)] = Field(
        description="Codes of the creditors the token acts for; at least one."
    )
    access: TokenAccess = Field(description="read, or write (which implies read).")
