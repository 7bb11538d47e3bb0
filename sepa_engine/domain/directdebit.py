"""What a direct-debit file is made of, as plain immutable values.

These types are already validated and normalised (see ``validation.py``): the writer trusts
them for content and only checks what it computes itself (counts, sums, uniqueness).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class SequenceType(StrEnum):
    FIRST = "FRST"
    RECURRING = "RCUR"
    ONE_OFF = "OOFF"
    FINAL = "FNAL"


class LocalInstrument(StrEnum):
    CORE = "CORE"
    B2B = "B2B"


@dataclass(frozen=True, slots=True)
class PostalAddress:
    """Structured (or hybrid) address: town and country are required from November 2026."""

    country: str
    town: str
    street: str | None = None
    building_number: str | None = None
    postcode: str | None = None
    lines: tuple[str, ...] = ()  # hybrid form: at most two AdrLine beside town and country


@dataclass(frozen=True, slots=True)
class UltimateParty:
    """Ultimate creditor or debtor: a name (at most 70) and an optional identifier."""

    name: str
    identifier: str | None = None


@dataclass(frozen=True, slots=True)
class Creditor:
    name: str
    iban: str
    creditor_id: str
    bic: str | None = None
    address: PostalAddress | None = None


@dataclass(frozen=True, slots=True)
class Amendment:
    """What changed on the mandate since the last collection; the file carries the originals."""

    original_mandate_id: str | None = None
    original_creditor_id: str | None = None
    original_creditor_name: str | None = None
    original_debtor_iban: str | None = None
    # Same Mandate, New Debtor Agent: the debtor moved to another bank.
    new_debtor_agent: bool = False

    def is_empty(self) -> bool:
        return not (
            self.original_mandate_id
            or self.original_creditor_id
            or self.original_creditor_name
            or self.original_debtor_iban
            or self.new_debtor_agent
        )


@dataclass(frozen=True, slots=True)
class DirectDebit:
    """One transaction (DrctDbtTxInf) of a payment block."""

    end_to_end_id: str
    amount_cents: int
    mandate_id: str
    mandate_signed_on: dt.date
    debtor_name: str
    debtor_iban: str
    debtor_bic: str | None = None
    debtor_address: PostalAddress | None = None
    remittance: str | None = None
    instruction_id: str | None = None
    amendment: Amendment | None = None
    ultimate_debtor: str | None = None
    ultimate_debtor_id: str | None = None
    # UltmtCdtr: the party the creditor collects for (a property manager's owner).
    ultimate_creditor: UltimateParty | None = None


@dataclass(frozen=True, slots=True, order=True)
class BlockKey:
    """Transactions that may share a payment block (PmtInf).

    The creditor's account is part of the key: one creditor may collect into two accounts.
    """

    creditor_id: str
    creditor_iban: str
    collection_date: dt.date
    sequence_type: SequenceType
    local_instrument: LocalInstrument = LocalInstrument.CORE


@dataclass(frozen=True, slots=True)
class PaymentBlock:
    """Header of one PmtInf; its transactions are streamed separately."""

    payment_info_id: str
    key: BlockKey
    creditor: Creditor
    batch_booking: bool = True


@dataclass(frozen=True, slots=True)
class FileHeader:
    message_id: str
    created_at: dt.datetime
    initiating_party_name: str
    initiating_party_id: str | None = None  # the creditor identifier: FR and ES banks require it


@dataclass(slots=True)
class BlockTotals:
    count: int = 0
    sum_cents: int = 0

    def add(self, amount_cents: int) -> None:
        self.count += 1
        self.sum_cents += amount_cents


@dataclass(slots=True)
class FileTotals:
    count: int = 0
    sum_cents: int = 0
    blocks: list[tuple[str, BlockTotals]] = field(default_factory=list)
