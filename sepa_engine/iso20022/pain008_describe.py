"""What a pain.008 file would collect, for a person to review: creditors, blocks, dates
and transactions, optionally masked. No checks here (pain008_verify does those)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sepa_engine.domain import money
from sepa_engine.domain.masking import mask_iban, mask_name, mask_reference
from sepa_engine.iso20022 import pain008_reader as reader
from sepa_engine.iso20022.pain008_reader import BlockEnd, GroupHeader, PaymentBlock, Transaction
from sepa_engine.iso20022.pain008_rules import lenient_cents
from sepa_engine.iso20022.versions import Pain008Version


@dataclass(frozen=True, slots=True)
class CreditorSummary:
    name: str | None
    iban: str | None
    bic: str | None
    creditor_id: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "iban": self.iban, "bic": self.bic, "creditor_id": self.creditor_id}


@dataclass(frozen=True, slots=True)
class TransactionSummary:
    location: str
    end_to_end_id: str | None
    amount: str | None
    currency: str | None
    debtor_name: str | None
    debtor_iban: str | None
    mandate_id: str | None
    signature_date: str | None
    amended: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "end_to_end_id": self.end_to_end_id,
            "amount": self.amount,
            "currency": self.currency,
            "debtor_name": self.debtor_name,
            "debtor_iban": self.debtor_iban,
            "mandate_id": self.mandate_id,
            "signature_date": self.signature_date,
            "amended": self.amended,
        }


@dataclass(frozen=True, slots=True)
class BlockSummary:
    location: str
    payment_info_id: str | None
    collection_date: str | None
    sequence_type: str | None
    local_instrument: str | None
    creditor: CreditorSummary
    count: int
    sum_cents: int
    transactions: tuple[TransactionSummary, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "payment_info_id": self.payment_info_id,
            "collection_date": self.collection_date,
            "sequence_type": self.sequence_type,
            "local_instrument": self.local_instrument,
            "creditor": self.creditor.to_dict(),
            "transactions_count": self.count,
            "control_sum": money.format_cents(self.sum_cents),
            "transactions": [t.to_dict() for t in self.transactions],
        }


@dataclass(frozen=True, slots=True)
class Description:
    path: str
    message: str
    message_id: str | None
    created: str | None
    initiating_party: str | None
    masked: bool
    creditors: tuple[CreditorSummary, ...]
    blocks: tuple[BlockSummary, ...]

    @property
    def transactions(self) -> int:
        return sum(block.count for block in self.blocks)

    @property
    def sum_cents(self) -> int:
        return sum(block.sum_cents for block in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "message": self.message,
            "message_id": self.message_id,
            "created": self.created,
            "initiating_party": self.initiating_party,
            "masked": self.masked,
            "transactions": self.transactions,
            "control_sum": money.format_cents(self.sum_cents),
            "creditors": [c.to_dict() for c in self.creditors],
            "payment_blocks": [b.to_dict() for b in self.blocks],
        }


def describe(path: str | os.PathLike[str], mask: bool = False) -> Description:
    """What the file would collect, for a person to review; no checks (see ``verify``).

    ``mask`` hides what identifies a debtor (names, IBANs, mandate references) and the
    creditor accounts. Sums count the amounts that can be read; ``verify`` reports the rest.
    Raises like ``verify`` when the file cannot be read.
    """
    source = reader.readable_source(path)
    pain008 = reader.detect_version(source)
    builder = _DescriptionBuilder(mask)
    try:
        for record in reader.read_records(source, pain008):
            builder.feed(record)
    except OSError as exc:
        raise reader.unreadable(source, exc) from None
    return builder.build(str(path), pain008)


class _DescriptionBuilder:
    def __init__(self, mask: bool) -> None:
        self.mask = mask
        self.header: GroupHeader | None = None
        self.blocks: list[BlockSummary] = []
        self.creditors: dict[CreditorSummary, None] = {}
        self._block: PaymentBlock | None = None
        self._transactions: list[TransactionSummary] = []
        self._sum = 0
        self._transaction_creditor_id: str | None = None

    def _iban(self, iban: str | None) -> str | None:
        return mask_iban(iban) if self.mask and iban else iban

    def feed(self, record: reader.Record) -> None:
        if isinstance(record, Transaction):
            self._transaction(record)
        elif isinstance(record, PaymentBlock):
            self._block, self._transactions, self._sum = record, [], 0
            self._transaction_creditor_id = None
        elif isinstance(record, BlockEnd):
            self._block_end(record)
        elif isinstance(record, GroupHeader):
            self.header = record

    def _transaction(self, tx: Transaction) -> None:
        cents = lenient_cents(tx.amount)
        self._sum += cents or 0
        self._transaction_creditor_id = self._transaction_creditor_id or tx.creditor_id
        self._transactions.append(
            TransactionSummary(
                location=tx.location,
                end_to_end_id=tx.end_to_end_id,
                amount=money.format_cents(cents) if cents is not None else tx.amount,
                currency=tx.currency,
                debtor_name=mask_name(tx.debtor_name) if self.mask else tx.debtor_name,
                debtor_iban=self._iban(tx.debtor_iban),
                mandate_id=mask_reference(tx.mandate_id) if self.mask else tx.mandate_id,
                signature_date=tx.signature_date,
                amended=tx.amended,
            )
        )

    def _block_end(self, end: BlockEnd) -> None:
        block = end.block
        creditor = CreditorSummary(
            name=block.creditor_name,
            iban=self._iban(block.creditor_iban),
            bic=block.creditor_bic,
            # ABN AMRO's example carries the identifier on each transaction instead.
            creditor_id=block.creditor_id or self._transaction_creditor_id,
        )
        self.creditors.setdefault(creditor)
        self.blocks.append(
            BlockSummary(
                location=block.location,
                payment_info_id=block.payment_info_id,
                collection_date=block.collection_date,
                sequence_type=block.sequence_type,
                local_instrument=block.local_instrument,
                creditor=creditor,
                count=end.transactions,
                sum_cents=self._sum,
                transactions=tuple(self._transactions),
            )
        )
        self._block, self._transactions = None, []

    def build(self, path: str, pain008: Pain008Version) -> Description:
        header = self.header
        return Description(
            path=path,
            message=pain008.name,
            message_id=header.message_id if header else None,
            created=header.created if header else None,
            initiating_party=header.initiating_party_name if header else None,
            masked=self.mask,
            creditors=tuple(self.creditors),
            blocks=tuple(self.blocks),
        )

