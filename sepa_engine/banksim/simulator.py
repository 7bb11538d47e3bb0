"""The bank's answers to one of our pain.008 files: a pain.002 and a camt.054.

One pass over the file (``pain008_reader.read_records``): each transaction is decided
(``decisions.Bank``), its pieces of answer are spooled, and once the file has been read
the two documents are assembled from the spools, validated on the way when the XSDs are
at hand, staged and published through ``outbox`` (owner-only, atomic, never overwriting).
Memory holds per-block totals only, plus the list of R-transactions when the caller asks
for it (``keep_details``; the CLI does not).

Determinism: the draws come from a ``random.Random`` seeded from the seed and the file's
MsgId; message ids and references are hashes of the MsgId, the seed and the rates; the
creation times are derived from the file's CreDtTm and collection dates. Nothing reads
the clock, so the same file, rates and seed give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from sepa_engine import errors, outbox
from sepa_engine.banksim import camt054, facts, pain002
from sepa_engine.banksim.decisions import Bank, Outcome, Rates
from sepa_engine.banksim.facts import BlockFacts, FileFacts
from sepa_engine.banksim.streams import AnswerSchemas, Segment, Spool, ValidatingSink
from sepa_engine.domain.calendar import add_target_days
from sepa_engine.domain.money import format_cents
from sepa_engine.iso20022.pain008_reader import (
    DOCUMENT_PATH,
    BlockEnd,
    GroupHeader,
    PaymentBlock,
    Record,
    Transaction,
    detect_version,
    read_records,
)
from sepa_engine.iso20022.versions import Pain008Version

log = structlog.get_logger("sepa_engine.banksim")

DEFAULT_OUT_DIR = Path("var/inbox")
# A bank's status report comes some hours after the file; a notification is made after the
# last booking it reports, in the evening of that day.
STATUS_REPORT_DELAY = dt.timedelta(hours=2)
NOTIFICATION_DELAY = dt.timedelta(hours=3)
NOTIFICATION_TIME = dt.time(18, 0)
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")


class GroupStatus(StrEnum):
    ACCEPTED = "ACCP"
    PARTIALLY_ACCEPTED = "PART"
    REJECTED = "RJCT"


@dataclass(frozen=True, slots=True)
class Rejection:
    end_to_end_id: str
    payment_info_id: str
    reason_code: str
    amount_cents: int


@dataclass(frozen=True, slots=True)
class Return:
    end_to_end_id: str
    payment_info_id: str
    reason_code: str
    amount_cents: int
    fee_cents: int
    booked_on: dt.date


@dataclass(frozen=True)
class SimulationResult:
    pain002_path: Path
    camt054_path: Path
    original_message_id: str
    original_message_name: str
    # The pain.002 version of the status report (pain002.for_pain008).
    status_report_version: str
    group_status: GroupStatus
    transactions: int
    sum_cents: int
    rejected_count: int
    rejected_cents: int
    # Settled = credited on the collection date: every transaction not rejected,
    # including those returned later.
    settled_count: int
    settled_cents: int
    returned_count: int
    returned_cents: int
    fees_cents: int
    # Empty unless simulate() was asked to keep them (keep_details=True, the default).
    rejected: tuple[Rejection, ...] = ()
    returned: tuple[Return, ...] = ()

    @property
    def paths(self) -> tuple[Path, Path]:
        return self.pain002_path, self.camt054_path

    def to_dict(self) -> dict[str, Any]:
        return {
            "pain002": str(self.pain002_path),
            "camt054": str(self.camt054_path),
            "original_message_id": self.original_message_id,
            "original_message_name": self.original_message_name,
            "status_report_version": self.status_report_version,
            "group_status": str(self.group_status),
            "transactions": self.transactions,
            "sum": format_cents(self.sum_cents),
            "rejected": {"count": self.rejected_count, "sum": format_cents(self.rejected_cents)},
            "settled": {"count": self.settled_count, "sum": format_cents(self.settled_cents)},
            "returned": {
                "count": self.returned_count,
                "sum": format_cents(self.returned_cents),
                "fees": format_cents(self.fees_cents),
            },
        }


def simulate(
    pain008_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = DEFAULT_OUT_DIR,
    reject_rate: float = 0.0,
    return_rate: float = 0.0,
    seed: int = 0,
    *,
    schemas: AnswerSchemas | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    keep_details: bool = True,
) -> SimulationResult:
    """Answer ``pain008_path`` as a bank would; write ``<MsgId>-pain002.xml`` and
    ``<MsgId>-camt054.xml`` into ``out_dir``.

    ``reject_rate`` is the share of all transactions rejected before settlement,
    ``return_rate`` the share of the settled ones returned afterwards. With ``schemas``
    both answers are validated while they are written, and nothing is published unless
    both are valid.

    Raises ``MessageError`` (``UnreadableFile``, ``UnknownMessage``) for a file that is
    not a readable pain.008 or that no bank could answer about, ``ConfigurationError``
    for rates or a seed out of range, ``SchemaViolation`` if an answer breaks its XSD,
    and ``CollectionError`` when an answer of that name already exists.
    """
    rates = Rates(reject_rate, return_rate)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise errors.ConfigurationError("--seed", repr(seed), "must be an integer")
    source = _readable(pain008_path)
    version = detect_version(source)
    with _spools(spool_dir) as spools:
        run = _Run(version, pain002.for_pain008(version.name), rates, seed, spools, keep_details)
        for record in read_records(source, version):
            run.feed(record)
        run.finish()
        paths = _publish(Path(out_dir), run, spools, schemas)
    result = run.result(*paths)
    log.info(
        "bank.simulated",
        original_message_id=result.original_message_id,
        group_status=str(result.group_status),
        transactions=result.transactions,
        rejected=result.rejected_count,
        returned=result.returned_count,
        settled=format_cents(result.settled_cents),
    )
    return result


def answer_paths(out_dir: str | os.PathLike[str], message_id: str) -> tuple[Path, Path]:
    """Where the answers to the file with ``message_id`` are written."""
    stem = _UNSAFE_IN_NAME.sub("_", message_id)
    return Path(out_dir) / f"{stem}-pain002.xml", Path(out_dir) / f"{stem}-camt054.xml"


# --- reading and deciding ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spools:
    # pain.002 TxInfAndSts, camt.054 credit TxDtls, camt.054 return bookings.
    status: Spool
    credits: Spool
    returns: Spool


@contextmanager
def _spools(folder: str | os.PathLike[str] | None) -> Iterator[_Spools]:
    opened: list[Spool] = []
    try:
        for _ in range(3):
            opened.append(Spool(folder))
        yield _Spools(*opened)
    finally:
        for spool in opened:
            spool.close()


class _Ids:
    """Message ids and references: hashes of what defines the answers, never random."""

    def __init__(self, message_id: str, seed: int, rates: Rates) -> None:
        key = f"{message_id}\n{seed}\n{float(rates.reject)!r}\n{float(rates.return_)!r}"
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest().upper()
        # Upper-case hex fits the restricted alphabet of the DK pain.002 identifiers.
        self.status_report = "PSR" + digest[:24]
        self.notification = "NTF" + digest[24:48]
        self._reference = digest[48:60]

    def status_id(self, number: int) -> str:
        return f"RJ{self._reference}{number:08d}"

    def account_report(self, number: int) -> str:
        return f"{self.notification}-{number}"

    def credit_reference(self, block: int) -> str:
        return f"{self._reference}C{block:05d}"

    def return_reference(self, number: int) -> str:
        return f"{self._reference}R{number:08d}"


@dataclass(slots=True)
class _Block:
    facts: BlockFacts
    references: pain002.BlockReferences
    starts: tuple[int, int, int]
    count: int = 0
    cents: int = 0
    rejected_count: int = 0
    rejected_cents: int = 0
    returned_count: int = 0
    returned_cents: int = 0
    fees_cents: int = 0
    segments: tuple[Segment, Segment, Segment] | None = None

    @property
    def settled_count(self) -> int:
        return self.count - self.rejected_count

    @property
    def settled_cents(self) -> int:
        return self.cents - self.rejected_cents


@dataclass(slots=True)
class _Run:
    version: Pain008Version
    dialect: pain002.Dialect
    rates: Rates
    seed: int
    spools: _Spools
    keep_details: bool
    file: FileFacts | None = None
    ids: _Ids | None = None
    bank: Bank | None = None
    blocks: list[_Block] = field(default_factory=list)
    current: _Block | None = None
    rejected: list[Rejection] = field(default_factory=list)
    returned: list[Return] = field(default_factory=list)
    # Running numbers of the StsId and return references.
    rejection_number: int = 0
    return_number: int = 0
    last_booking: dt.date | None = None

    def feed(self, record: Record) -> None:
        # Transactions first: they are nearly every record.
        if isinstance(record, Transaction):
            self._transaction(record)
        elif isinstance(record, PaymentBlock):
            self._block_start(record)
        elif isinstance(record, BlockEnd):
            self._block_end()
        elif isinstance(record, GroupHeader):
            self.file = facts.file_facts(record)
            self.ids = _Ids(self.file.message_id, self.seed, self.rates)
            self.bank = Bank(self.rates, self.seed, self.file.message_id, self.file.count)

    def _block_start(self, record: PaymentBlock) -> None:
        if self.file is None:
            raise errors.MessageError("GrpHdr", None, "is missing before the first payment block", location=record.location)
        block_facts = facts.block_facts(record)
        spools = self.spools
        self.current = _Block(
            block_facts,
            pain002.BlockReferences(self.dialect, block_facts),
            (spools.status.offset(), spools.credits.offset(), spools.returns.offset()),
        )
        self._booked(block_facts.collection_date)

    def _transaction(self, tx: Transaction) -> None:
        block, ids, bank, file = self.current, self.ids, self.bank, self.file
        assert block is not None and ids is not None and bank is not None and file is not None
        amount = facts.amount_cents(tx)
        end_to_end_id = facts.end_to_end_id(tx)
        decision = bank.decide()
        block.count += 1
        block.cents += amount
        if decision.outcome is Outcome.REJECTED:
            assert decision.reason_code is not None
            self.rejection_number += 1
            status_id = ids.status_id(self.rejection_number)
            self.spools.status.write(
                pain002.rejection(block.references, tx, end_to_end_id, amount, status_id, decision.reason_code)
            )
            block.rejected_count += 1
            block.rejected_cents += amount
            if self.keep_details:
                self.rejected.append(Rejection(end_to_end_id, block.facts.payment_info_id, decision.reason_code, amount))
            return
        self.spools.credits.write(camt054.credit_detail(tx, end_to_end_id, amount))
        if decision.outcome is Outcome.RETURNED:
            assert decision.reason_code is not None
            self.return_number += 1
            booked_on = add_target_days(block.facts.collection_date, decision.return_days)
            self.spools.returns.write(
                camt054.returned(
                    ids.return_reference(self.return_number), block.facts, file.message_id, tx, end_to_end_id, amount, decision, booked_on
                )
            )
            block.returned_count += 1
            block.returned_cents += amount
            block.fees_cents += decision.fee_cents
            self._booked(booked_on)
            if self.keep_details:
                self.returned.append(
                    Return(end_to_end_id, block.facts.payment_info_id, decision.reason_code, amount, decision.fee_cents, booked_on)
                )

    def _block_end(self) -> None:
        block = self.current
        assert block is not None
        spools = self.spools
        ends = (spools.status.offset(), spools.credits.offset(), spools.returns.offset())
        block.segments = (
            Segment(block.starts[0], ends[0]),
            Segment(block.starts[1], ends[1]),
            Segment(block.starts[2], ends[2]),
        )
        self.blocks.append(block)
        self.current = None

    def _booked(self, day: dt.date) -> None:
        if self.last_booking is None or day > self.last_booking:
            self.last_booking = day

    def finish(self) -> None:
        if self.file is None:
            raise errors.MessageError("GrpHdr", None, "is missing: not a pain.008 document", location=DOCUMENT_PATH)
        if not self.blocks:
            raise errors.MessageError("PmtInf", None, "is missing: the file has no payment block", location=DOCUMENT_PATH)
        if self.count != self.file.count:
            # A bank rejects such a file whole (AM18); the simulator refuses to answer it.
            raise errors.MessageError(
                "NbOfTxs",
                self.file.count,
                f"does not match the {self.count} transactions in the file",
                location=f"{DOCUMENT_PATH}/GrpHdr/NbOfTxs",
            )

    # --- totals ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return sum(block.count for block in self.blocks)

    @property
    def cents(self) -> int:
        return sum(block.cents for block in self.blocks)

    @property
    def rejected_total(self) -> tuple[int, int]:
        return sum(b.rejected_count for b in self.blocks), sum(b.rejected_cents for b in self.blocks)

    def group_status(self) -> GroupStatus:
        rejected, _ = self.rejected_total
        if rejected == 0:
            return GroupStatus.ACCEPTED
        return GroupStatus.REJECTED if rejected == self.count else GroupStatus.PARTIALLY_ACCEPTED

    def result(self, pain002_path: Path, camt054_path: Path) -> SimulationResult:
        assert self.file is not None
        rejected_count, rejected_cents = self.rejected_total
        return SimulationResult(
            pain002_path=pain002_path,
            camt054_path=camt054_path,
            original_message_id=self.file.message_id,
            original_message_name=self.version.name,
            status_report_version=self.dialect.message,
            group_status=self.group_status(),
            transactions=self.count,
            sum_cents=self.cents,
            rejected_count=rejected_count,
            rejected_cents=rejected_cents,
            settled_count=sum(b.settled_count for b in self.blocks),
            settled_cents=sum(b.settled_cents for b in self.blocks),
            returned_count=sum(b.returned_count for b in self.blocks),
            returned_cents=sum(b.returned_cents for b in self.blocks),
            fees_cents=sum(b.fees_cents for b in self.blocks),
            rejected=tuple(self.rejected),
            returned=tuple(self.returned),
        )


# --- writing -------------------------------------------------------------------------------


def _publish(out_dir: Path, run: _Run, spools: _Spools, schemas: AnswerSchemas | None) -> tuple[Path, Path]:
    assert run.file is not None
    finals = answer_paths(out_dir, run.file.message_id)
    for final in finals:
        # Checked before staging, so that a rerun never publishes half an answer.
        if final.exists():
            raise errors.CollectionError("file", str(final), "already exists: an answer is never overwritten")
    status_final, notification_final = finals
    status_tmp, _ = outbox.stage(status_final, lambda out: _write_status_report(out, run, spools, schemas))
    try:
        notification_tmp, _ = outbox.stage(notification_final, lambda out: _write_notification(out, run, spools, schemas))
    except BaseException:
        outbox.discard(status_tmp)
        raise
    try:
        outbox.publish(status_tmp, status_final)
    except BaseException:
        outbox.discard(status_tmp)
        outbox.discard(notification_tmp)
        raise
    try:
        outbox.publish(notification_tmp, notification_final)
    except BaseException:
        outbox.discard(notification_tmp)
        raise
    return finals


def _write_status_report(out: BinaryIO, run: _Run, spools: _Spools, schemas: AnswerSchemas | None) -> None:
    assert run.file is not None and run.ids is not None
    dialect = run.dialect
    schema = schemas.status_report(dialect.xsd) if schemas else None
    sink = ValidatingSink(out, schema, dialect.namespace, pain002.PRUNED)
    bics = {block.facts.creditor_bic for block in run.blocks}
    header = pain002.ReportHeader(
        message_id=run.ids.status_report,
        created=run.file.created + STATUS_REPORT_DELAY,
        # The creditor's bank answers; named only when the file has one.
        creditor_agent_bic=next(iter(bics)) if len(bics) == 1 else None,
        original_message_id=run.file.message_id,
        original_message_name=run.version.name,
        count=run.count,
        sum_cents=run.cents,
        rejected_count=run.rejected_total[0],
    )
    sink.text(pain002.document_start(dialect, header))
    for block in run.blocks:
        assert block.segments is not None
        sink.text(pain002.block_start(dialect, block.facts, block.count, block.cents, block.rejected_count))
        spools.status.copy(block.segments[0], sink)
        sink.text(pain002.block_end())
    sink.text(pain002.document_end())
    sink.close()


def _write_notification(out: BinaryIO, run: _Run, spools: _Spools, schemas: AnswerSchemas | None) -> None:
    assert run.file is not None and run.ids is not None and run.last_booking is not None
    sink = ValidatingSink(out, schemas.camt054 if schemas else None, camt054.NAMESPACE, camt054.PRUNED)
    created = _notification_time(run.file.created, run.last_booking)
    sink.text(camt054.document_start(run.ids.notification, created))
    for number, blocks in enumerate(_by_account(run.blocks).values(), start=1):
        credited = [block for block in blocks if block.settled_count]
        sink.text(
            camt054.account_start(
                camt054.AccountHeader(
                    report_id=run.ids.account_report(number),
                    created=created,
                    iban=blocks[0].facts.creditor_iban,
                    owner_name=blocks[0].facts.creditor_name,
                    servicer_bic=next((b.facts.creditor_bic for b in blocks if b.facts.creditor_bic), None),
                    credit_count=len(credited),
                    credit_cents=sum(block.settled_cents for block in credited),
                    debit_count=sum(block.returned_count for block in blocks),
                    debit_cents=sum(block.returned_cents + block.fees_cents for block in blocks),
                )
            )
        )
        for block in credited:
            assert block.segments is not None
            reference = run.ids.credit_reference(block.facts.index)
            sink.text(camt054.credit_start(reference, block.facts, run.file.message_id, block.settled_count, block.settled_cents))
            spools.credits.copy(block.segments[1], sink)
            sink.text(camt054.credit_end())
        for block in blocks:
            assert block.segments is not None
            spools.returns.copy(block.segments[2], sink)
        sink.text(camt054.account_end())
    sink.text(camt054.document_end())
    sink.close()


def _by_account(blocks: list[_Block]) -> dict[str, list[_Block]]:
    # One notification per creditor account, in the order the file first names them.
    accounts: dict[str, list[_Block]] = {}
    for block in blocks:
        accounts.setdefault(block.facts.creditor_iban, []).append(block)
    return accounts


def _notification_time(file_created: dt.datetime, last_booking: dt.date) -> dt.datetime:
    evening = dt.datetime.combine(last_booking, NOTIFICATION_TIME, tzinfo=file_created.tzinfo)
    return max(file_created + NOTIFICATION_DELAY, evening)


def _readable(path: str | os.PathLike[str]) -> Path:
    source = Path(path)
    if not source.exists():
        raise errors.UnreadableFile("file", str(source), "does not exist")
    if not source.is_file():
        raise errors.UnreadableFile("file", str(source), "is not a file")
    try:
        with source.open("rb"):
            pass
    except OSError as exc:
        raise errors.UnreadableFile("file", str(source), f"cannot be opened: {exc.strerror}") from None
    return source
