"""The facts of a pain.008 the bank answers about, checked once and typed.

The reader hands over text as it stands in the file; what the answers need (dates,
amounts in cents, the creditor's account) is parsed here, and a file the bank could not
answer about (no MsgId, an amount that is not one, a currency other than EUR) is refused
with the element's location, as a ``MessageError``: the file is the problem.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sepa_engine import errors
from sepa_engine.banksim import text
from sepa_engine.domain.money import parse_amount
from sepa_engine.iso20022.pain008_reader import (
    GroupHeader,
    PaymentBlock,
    Transaction,
    parse_date,
)

_CURRENCY = "EUR"
_CORE_SUB_FAMILY = "ESDD"
# ISO bank transaction sub-families of a collection credit, by local instrument.
_SUB_FAMILY = {"B2B": "BBDD"}


@dataclass(frozen=True, slots=True)
class FileFacts:
    message_id: str
    created: dt.datetime
    # GrpHdr/NbOfTxs: the bank answers about exactly this many transactions.
    count: int


@dataclass(frozen=True, slots=True)
class BlockFacts:
    index: int
    payment_info_id: str
    collection_date: dt.date
    creditor_iban: str
    # Optional values: None when absent or when they do not fit the answers' XSDs.
    creditor_bic: str | None
    creditor_name: str | None
    creditor_id: str | None
    service_level: str | None
    local_instrument: str | None
    sequence_type: str | None
    # PMNT/IDDT/<this>: ESDD for Core collections, BBDD for B2B.
    sub_family: str


def file_facts(header: GroupHeader) -> FileFacts:
    where = header.location
    if not text.fits(header.message_id, 35):
        raise _refused(where + "/MsgId", header.message_id, "is missing or longer than 35 characters")
    assert header.message_id is not None
    created = _date_time(header.created)
    if created is None:
        raise _refused(where + "/CreDtTm", header.created, "is not an ISO date and time")
    declared = (header.number_of_transactions or "").strip()
    if not declared.isascii() or not declared.isdigit() or len(declared) > 15:
        raise _refused(where + "/NbOfTxs", header.number_of_transactions, "is not a count of transactions (1 to 15 digits)")
    return FileFacts(header.message_id, created, int(declared))


def block_facts(block: PaymentBlock) -> BlockFacts:
    where = block.location
    if not text.is_restricted_id(block.payment_info_id):
        # The DK pain.002 echoes it in a restricted alphabet; a changed id would match nothing.
        raise _refused(
            where + "/PmtInfId",
            block.payment_info_id,
            "cannot be echoed in a pain.002 (up to 35 of A-Z a-z 0-9 + ? / - : ( ) . , ' and space)",
        )
    assert block.payment_info_id is not None
    collection_date = parse_date(block.collection_date)
    if collection_date is None:
        raise _refused(where + "/ReqdColltnDt", block.collection_date, "is not a date")
    if not text.is_iban(block.creditor_iban):
        raise _refused(where + "/CdtrAcct/Id/IBAN", block.creditor_iban, "is not an IBAN: the bank has no account to book on")
    assert block.creditor_iban is not None
    return BlockFacts(
        index=block.index,
        payment_info_id=block.payment_info_id,
        collection_date=collection_date,
        creditor_iban=block.creditor_iban,
        creditor_bic=block.creditor_bic if text.is_bic(block.creditor_bic) else None,
        creditor_name=block.creditor_name or None,
        creditor_id=block.creditor_id if text.is_creditor_id(block.creditor_id) else None,
        service_level=block.service_level if text.fits(block.service_level, 4) else None,
        local_instrument=block.local_instrument if text.fits(block.local_instrument, 35) else None,
        sequence_type=block.sequence_type if block.sequence_type in text.SEQUENCE_TYPES else None,
        sub_family=_SUB_FAMILY.get((block.local_instrument or "").strip(), _CORE_SUB_FAMILY),
    )


def amount_cents(tx: Transaction) -> int:
    """The instructed amount in cents; refuses what no bank would collect."""
    if tx.currency != _CURRENCY:
        raise _refused(tx.location + "/InstdAmt/@Ccy", tx.currency, "is not EUR: SEPA direct debits are in euros")
    if tx.amount is None:
        raise _refused(tx.location + "/InstdAmt", None, "is missing")
    try:
        return parse_amount(tx.amount, "InstdAmt")
    except errors.InvalidAmount as exc:
        raise _refused(tx.location + "/InstdAmt", tx.amount, exc.rule) from None


def end_to_end_id(tx: Transaction) -> str:
    if not text.fits(tx.end_to_end_id, 35):
        raise _refused(tx.location + "/PmtId/EndToEndId", tx.end_to_end_id, "is missing or longer than 35 characters")
    assert tx.end_to_end_id is not None
    return tx.end_to_end_id


def _date_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _refused(location: str, value: object, problem: str) -> errors.MessageError:
    field = location.rsplit("/", 1)[-1]
    return errors.MessageError(field, value, problem, location=location)
