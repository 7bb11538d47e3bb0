"""What the bank tells us about our direct debits, as typed records shared by every reader.

A pain.002 status report (rejects before settlement, acknowledgements) and the camt.052,
camt.053 and camt.054 booking reports (returns, refunds, reversals and settled collections
after settlement) all become ``ReturnRecord``s. A record says what happened (``kind``), to
how much of a file (``scope``: the whole file, one payment block, one transaction or one
booking entry whose details are elsewhere) and carries every reference the reconciliation
matches on. Readers never touch the ledger.

Reading streams: ``read`` returns a ``ReadResult`` at once (after the message was
recognised from its namespace) and the records are produced while you iterate over it,
so memory does not grow with the file. The result's warnings and skip counters fill in
as the records are read and are complete once the iteration has ended (``done``).

Problems are collected, not raised: each becomes a ``Finding`` with its location. Only
a file that cannot be read at all raises (``errors.UnreadableFile``,
``errors.UnknownMessage``), and, with ``strict=True``, a file whose deviations from its
XSD or from the message rules would otherwise only be warnings
(``errors.SchemaViolation``, raised once they are known: before the first record when
the file was validated as a tree, at the end of the iteration when it was streamed).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, fields
from enum import StrEnum
from operator import attrgetter
from pathlib import Path
from typing import Any

from sepa_engine.domain.money import format_cents
from sepa_engine.domain.reason_codes import RType


class Scope(StrEnum):
    """How much of our files one record speaks about."""

    # The whole original file (pain.002 OrgnlGrpInfAndSts): applies to every transaction in it.
    GROUP = "group"
    # One payment block (pain.002 OrgnlPmtInfAndSts): applies to every transaction in it.
    PAYMENT_BLOCK = "payment_block"
    TRANSACTION = "transaction"
    # A booking entry without transaction details: a lump sum whose details come in
    # another file. Never split by guessing.
    ENTRY = "entry"

    def covers_many(self) -> bool:
        """True when the reconciliation must expand the record to the transactions it covers."""
        return self is not Scope.TRANSACTION


class Kind(StrEnum):
    """What happened, as the reconciliation applies it."""

    REJECTED = "rejected"  # before settlement (pain.002 RJCT): nothing was booked
    RETURNED = "returned"  # after settlement, by the debtor bank (up to D+5)
    REFUNDED = "refunded"  # after settlement, claimed by the debtor (MD06 8 weeks, MD01 13 months)
    REVERSED = "reversed"  # after settlement, by the creditor or its bank
    SETTLED = "settled"  # the collection was credited
    ACCEPTED = "accepted"  # acknowledged by the bank (pain.002 ACCP, ACTC...): the file lifecycle
    # A status or booking the reader could not classify: kept for a person, never guessed.
    UNKNOWN = "unknown"

    def is_failure(self) -> bool:
        """The debit did not (or no longer does) bring the money in."""
        return self in (Kind.REJECTED, Kind.RETURNED, Kind.REFUNDED, Kind.REVERSED)

    @property
    def r_type(self) -> RType | None:
        """The R-transaction type of the reason-code table, for policy lookups."""
        return _R_TYPES.get(self)


_R_TYPES = {
    Kind.REJECTED: RType.REJECT,
    Kind.RETURNED: RType.RETURN,
    Kind.REFUNDED: RType.REFUND,
    Kind.REVERSED: RType.REVERSAL,
}


class SkipReason(StrEnum):
    """Why something the bank reported did not become a record."""

    CREDIT_TRANSFER = "credit_transfer"  # ICDT/RCDT/... families: not a direct debit
    # Bank charges, card payments, cash, interest...: no direct debit at all.
    NOT_DIRECT_DEBIT = "not_direct_debit"
    # A debit of this account by somebody else's direct debit (we are the debtor there).
    DIRECT_DEBIT_PAID = "direct_debit_paid"
    # A pain.002 about a file that is not one of our pain.008 direct-debit files.
    NOT_OURS = "not_ours"


class FindingCode(StrEnum):
    SCHEMA_VIOLATION = "schema_violation"
    SCHEMA_NOT_CHECKED = "schema_not_checked"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_DATE = "invalid_date"
    MISSING_FIELD = "missing_field"
    NOT_OURS = "not_ours"
    NOT_BOOKED = "not_booked"
    UNKNOWN_STATUS = "unknown_status"
    UNCLASSIFIED = "unclassified"
    AMOUNT_FROM_ENTRY = "amount_from_entry"

    def is_deviation(self) -> bool:
        """A departure from the XSD or the message rules: what ``strict`` refuses.

        The others describe the content (not ours, not booked, an unknown status) or what
        could not be checked, and never make a file unacceptable by themselves.
        """
        return self in _DEVIATIONS


_DEVIATIONS = frozenset(
    {FindingCode.SCHEMA_VIOLATION, FindingCode.INVALID_AMOUNT, FindingCode.INVALID_DATE, FindingCode.MISSING_FIELD}
)


@dataclass(frozen=True, slots=True)
class Finding:
    code: FindingCode
    message: str
    # XPath of the element, "line N" for XSD deviations found on a tree, None for the file.
    location: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"code": str(self.code), "message": self.message, "location": self.location}

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


@dataclass(frozen=True, slots=True)
class ReturnRecord:
    """One thing the bank says about our collections.

    Identifiers are as the file gives them, surrounding whitespace removed; the EPC
    placeholder ``NOTPROVIDED`` becomes None so that it never matches anything. Amounts
    are integer cents read with ``Decimal`` ("276" is 276.00). Group and block records of
    a pain.002 carry the original control sum as ``amount_cents`` (without currency) and
    the original number of transactions.

    Fees: ``fees_cents`` are the charges given on this transaction (None when none are
    given); ``entry_fees_cents`` are the charges given on its booking entry, repeated on
    every record of that entry, to be booked once per ``entry_reference`` when none of the
    entry's records carries its own (banks give either or both).
    """

    scope: Scope
    kind: Kind
    location: str
    status: str | None = None  # pain.002 status code, or the camt entry status (BOOK, INFO, PDNG)
    booked: bool = False  # camt: the entry moved money (Sts BOOK); always False in a pain.002
    original_message_id: str | None = None
    original_message_name: str | None = None  # pain.002 OrgnlMsgNmId, e.g. "pain.008.001.02"
    payment_info_id: str | None = None
    instruction_id: str | None = None
    end_to_end_id: str | None = None
    mandate_reference: str | None = None
    creditor_id: str | None = None
    amount_cents: int | None = None
    currency: str | None = None
    number_of_transactions: int | None = None
    booking_date: dt.date | None = None
    value_date: dt.date | None = None
    settlement_date: dt.date | None = None
    requested_collection_date: dt.date | None = None
    reason_code: str | None = None  # ISO external code (Rsn/Cd)
    proprietary_reason: str | None = None  # Rsn/Prtry, as the bank wrote it
    additional_info: str | None = None
    fees_cents: int | None = None
    entry_fees_cents: int | None = None
    entry_amount_cents: int | None = None
    credit_debit: str | None = None  # CRDT or DBIT, as booked
    reversal_indicator: bool | None = None
    entry_reference: str | None = None  # the entry's AcctSvcrRef (else NtryRef)
    bank_reference: str | None = None  # the transaction's AcctSvcrRef / the pain.002 StsId
    bank_transaction_code: str | None = None  # "PMNT/IDDT/UPDD", the one the kind was decided from
    proprietary_bank_code: str | None = None
    account_iban: str | None = None  # the reported account (camt)
    debtor_name: str | None = None

    def __reduce__(self) -> tuple[type[ReturnRecord], tuple[Any, ...]]:
        # Pickled as the constructor's arguments: a file read in a child process sends every
        # record through a pipe, and the dataclass's own state (a list, restored field by
        # field after a ``fields()`` call per record) made unpickling 2.6 times slower, on
        # the side that applies the records (7 % of a 100,000-return file under cProfile).
        return ReturnRecord, _record_values(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": str(self.scope),
            "kind": str(self.kind),
            "status": self.status,
            "booked": self.booked,
            "end_to_end_id": self.end_to_end_id,
            "mandate_reference": self.mandate_reference,
            "original_message_id": self.original_message_id,
            "original_message_name": self.original_message_name,
            "payment_info_id": self.payment_info_id,
            "instruction_id": self.instruction_id,
            "creditor_id": self.creditor_id,
            "amount": _money(self.amount_cents),
            "currency": self.currency,
            "number_of_transactions": self.number_of_transactions,
            "reason_code": self.reason_code,
            "proprietary_reason": self.proprietary_reason,
            "additional_info": self.additional_info,
            "fees": _money(self.fees_cents),
            "entry_fees": _money(self.entry_fees_cents),
            "entry_amount": _money(self.entry_amount_cents),
            "booking_date": _date(self.booking_date),
            "value_date": _date(self.value_date),
            "settlement_date": _date(self.settlement_date),
            "requested_collection_date": _date(self.requested_collection_date),
            "credit_debit": self.credit_debit,
            "reversal_indicator": self.reversal_indicator,
            "entry_reference": self.entry_reference,
            "bank_reference": self.bank_reference,
            "bank_transaction_code": self.bank_transaction_code,
            "proprietary_bank_code": self.proprietary_bank_code,
            "account_iban": self.account_iban,
            "debtor_name": self.debtor_name,
            "location": self.location,
        }


# Every field, in the constructor's order (``ReturnRecord.__reduce__``).
_record_values = attrgetter(*(f.name for f in fields(ReturnRecord)))


def _money(cents: int | None) -> str | None:
    return None if cents is None else format_cents(cents)


def _date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


class ReadResult:
    """One file being read: iterate over it (once) for its records.

    Not a frozen dataclass on purpose: the warnings, skip counters and the message id
    fill in while the records stream, which is what keeps memory flat on a large file.
    Read them after the iteration has ended (``done`` is then True).
    """

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        self.message = message  # e.g. "camt.053.001.02", "pain.002.001.03.ch.02"
        self.message_id: str | None = None  # GrpHdr/MsgId of this file
        self.created: str | None = None
        self.warnings: list[Finding] = []
        self.skipped_by_reason: Counter[SkipReason] = Counter()
        # Why a pain.002 yields nothing: it answers a file that is not one of our pain.008 files.
        self.not_ours: str | None = None
        self.records_read = 0
        self.done = False
        self._records: Iterator[ReturnRecord] = iter(())

    def bind(self, records: Iterator[ReturnRecord]) -> None:
        """For readers: the generator that fills this result while it yields the records."""
        self._records = records

    def __iter__(self) -> Iterator[ReturnRecord]:
        return self._records

    @property
    def records(self) -> Iterator[ReturnRecord]:
        return self._records

    @property
    def skipped(self) -> int:
        return sum(self.skipped_by_reason.values())

    def warn(self, code: FindingCode, message: str, location: str | None = None) -> None:
        self.warnings.append(Finding(code, message, location))

    def skip(self, reason: SkipReason, count: int = 1) -> None:
        self.skipped_by_reason[reason] += count

    @property
    def deviations(self) -> list[Finding]:
        return [finding for finding in self.warnings if finding.code.is_deviation()]

    def to_dict(self, records: list[ReturnRecord]) -> dict[str, Any]:
        """The ``returns inspect --json`` document, once the records have been read."""
        return {
            "message": self.message,
            "records": [record.to_dict() for record in records],
            "skipped": self.skipped,
            "warnings": [finding.to_dict() for finding in self.warnings],
        }


def read(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    xsd_dir: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
) -> ReadResult:
    """Read any status or return file we support, chosen from its root namespace.

    Raises ``UnknownMessage`` (naming the message) for anything else and
    ``UnreadableFile`` for files that are not well-formed or safe XML.
    """
    # Imported here: the readers import this module for its types.
    from sepa_engine.iso20022 import camt, pain002, return_support

    message = return_support.detect(path, max_bytes=max_bytes)
    if message.family == "pain.002":
        return pain002.read(path, strict=strict, xsd_dir=xsd_dir, max_bytes=max_bytes, message=message)
    return camt.read(path, strict=strict, xsd_dir=xsd_dir, max_bytes=max_bytes, message=message)
