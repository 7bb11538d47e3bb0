"""Writer for pain.008 customer direct-debit initiation files (001.08 and 001.02).

The file is streamed: transactions come from an iterator, are rendered straight into a
spool file, and only the per-block totals stay in memory. The group header and each
payment block header carry counts and control sums *before* their transactions, so the
final document is assembled after the spool is complete: header, then each block header
followed by a copy of its spooled transactions.

When the caller already knows each block's count and sum (the collection run asks the
ledger), it passes them as a plan: the document is then written in one pass with no spool,
and what was streamed must add up to the plan or the writer raises.

Either way the final bytes are also fed to the validating read-back (``readback.py``):
official XSD of the version, amounts re-added against every NbOfTxs/CtrlSum, and the rules
of the creditor's bank profile when one is given. A large file's read-back is shared
between a child process and this one (``readback.SplitReadBack``): in planned mode the
child reads while this process renders, and this one takes pieces whenever the child is
behind; in spooled mode both read once the totals are known. A file read against a bank
profile is read by one process whole. A file that fails any check raises before the
caller can publish it.

End-to-end uniqueness in constant memory: a Bloom filter flags ids that *may* have been
seen, and the ids go to a side file; only when the filter flagged something is that file
re-read to count the suspects exactly. A duplicate is always caught (Bloom filters have no
false negatives) and a false alarm never raises (the exact count decides).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from sepa_engine import errors
from sepa_engine.domain.bank_profiles import AddressForm, BankProfile, address_form
from sepa_engine.domain.directdebit import (
    Amendment,
    BlockKey,
    DirectDebit,
    FileHeader,
    PaymentBlock,
    PostalAddress,
    UltimateParty,
)
from sepa_engine.domain.money import format_cents
from sepa_engine.iso20022 import readback
from sepa_engine.iso20022.versions import Pain008Version, SmndaPlacement

# Transactions are handed on in pieces of this size: small enough that a read-back split
# between two processes (readback.SplitReadBack) balances finely and three fit in a socket
# pair's buffer, large enough that the per-piece work stays negligible.
_SPOOL_FLUSH = 48 * 1024
# Below this many transactions a child process costs more than it saves.
CHILD_VALIDATION_FROM = 5_000
_NOT_PROVIDED = "NOTPROVIDED"  # EPC: debtor/creditor agent without BIC

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"})
_NEEDS_ESCAPE = re.compile(r"[&<>\"']")


def _x(text: str) -> str:
    # EPC asks for all five XML specials as entities, including the apostrophe that the
    # SEPA character set allows; most values have none, so test before translating.
    return text.translate(_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


@dataclass(frozen=True, slots=True)
class WrittenBlock:
    payment_info_id: str
    key: BlockKey
    count: int
    sum_cents: int


@dataclass(frozen=True, slots=True)
class BlockPlan:
    """A payment block with the count and sum its transactions must add up to."""

    block: PaymentBlock
    count: int
    sum_cents: int


@dataclass(frozen=True, slots=True)
class WrittenFile:
    message_id: str
    version: str
    count: int
    sum_cents: int
    blocks: tuple[WrittenBlock, ...]
    sha256: str
    size: int


# --- rendering -----------------------------------------------------------------------------


class _Renderer:
    """Text of each part of the document for one version; the only place tags are spelt.

    Headers are one element per line for the people who open the file; each transaction is
    one line, which keeps files diffable and about 40 % smaller than indenting every element
    (the validating parser's time grows with the bytes it reads).
    """

    def __init__(self, version: Pain008Version, created_on: dt.date | None = None) -> None:
        self.version = version
        # The 2009 version can only carry address lines, which are forbidden from November
        # 2026 (bank_profiles.ADDRESS_LINES_FORBIDDEN_FROM): the file's own date decides.
        form = address_form(version.name, created_on or dt.date.max)
        writers: dict[AddressForm, Callable[[PostalAddress | None], str]] = {
            AddressForm.STRUCTURED: self.structured_address,
            AddressForm.EPC_LINES: self.line_address,
            AddressForm.NONE: self.no_address,
        }
        self.address = writers[form]
        bic = version.bic_tag
        self._bic_open, self._bic_close = f"<{bic}>", f"</{bic}>"
        self._smnda_account = version.smnda is SmndaPlacement.DEBTOR_ACCOUNT
        self._no_debtor_agent = self.agent("DbtrAgt", None)
        self._debtor_agent_open = f"<DbtrAgt><FinInstnId>{self._bic_open}"
        self._debtor_agent_close = f"{self._bic_close}</FinInstnId></DbtrAgt>"
        # The last debtor address and its text: a run's rows often share one address object.
        self._last_address: PostalAddress | None = None
        self._last_address_text = self.address(None)

    def agent(self, tag: str, bic: str | None) -> str:
        inner = f"{self._bic_open}{bic}{self._bic_close}" if bic else f"<Othr><Id>{_NOT_PROVIDED}</Id></Othr>"
        return f"<{tag}><FinInstnId>{inner}</FinInstnId></{tag}>"

    @staticmethod
    def no_address(_address: PostalAddress | None) -> str:
        return ""

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def line_address(address: PostalAddress | None) -> str:
        """EPC subset of the 2009 PstlAdr: Ctry, then at most two AdrLine of 70 characters
        built from the structured fields (street and number; postcode and town)."""
        if address is None:
            return ""
        return "<PstlAdr>" + f"<Ctry>{address.country}</Ctry>" + "".join(
            f"<AdrLine>{_x(line)}</AdrLine>" for line in address_lines(address)
        ) + "</PstlAdr>"

    @staticmethod
    def ultimate(tag: str, party: UltimateParty | None) -> str:
        if party is None:
            return ""
        ident = (
            f"<Id><OrgId><Othr><Id>{_x(party.identifier)}</Id></Othr></OrgId></Id>" if party.identifier else ""
        )
        return f"<{tag}><Nm>{_x(party.name)}</Nm>{ident}</{tag}>"

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def structured_address(address: PostalAddress | None) -> str:
        # Cached: a creditor's address repeats in every block, and debtors often share towns.
        if address is None:
            return ""
        text = "<PstlAdr>"
        if address.street:
            text += f"<StrtNm>{_x(address.street)}</StrtNm>"
        if address.building_number:
            text += f"<BldgNb>{_x(address.building_number)}</BldgNb>"
        if address.postcode:
            text += f"<PstCd>{_x(address.postcode)}</PstCd>"
        text += f"<TwnNm>{_x(address.town)}</TwnNm><Ctry>{address.country}</Ctry>"
        for line in address.lines:
            text += f"<AdrLine>{_x(line)}</AdrLine>"
        return text + "</PstlAdr>"

    @staticmethod
    def scheme_id(creditor_id: str) -> str:
        return (
            f"<Id><PrvtId><Othr><Id>{_x(creditor_id)}</Id>"
            "<SchmeNm><Prtry>SEPA</Prtry></SchmeNm></Othr></PrvtId></Id>"
        )

    def document_start(self, header: FileHeader, count: int, sum_cents: int) -> str:
        initiating_id = (
            f"<Id><OrgId><Othr><Id>{_x(header.initiating_party_id)}</Id></Othr></OrgId></Id>"
            if header.initiating_party_id
            else ""
        )
        created = header.created_at.replace(microsecond=0).isoformat()
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Document xmlns="{self.version.namespace}" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
            "<CstmrDrctDbtInitn>\n"
            "<GrpHdr>\n"
            f"<MsgId>{_x(header.message_id)}</MsgId>\n"
            f"<CreDtTm>{created}</CreDtTm>\n"
            f"<NbOfTxs>{count}</NbOfTxs>\n"
            f"<CtrlSum>{format_cents(sum_cents)}</CtrlSum>\n"
            f"<InitgPty><Nm>{_x(header.initiating_party_name)}</Nm>{initiating_id}</InitgPty>\n"
            "</GrpHdr>\n"
        )

    @staticmethod
    def document_end() -> str:
        return "</CstmrDrctDbtInitn>\n</Document>\n"

    def block_start(self, block: PaymentBlock, count: int, sum_cents: int) -> str:
        key, creditor = block.key, block.creditor
        return (
            "<PmtInf>\n"
            f"<PmtInfId>{_x(block.payment_info_id)}</PmtInfId>\n"
            "<PmtMtd>DD</PmtMtd>\n"
            f"<BtchBookg>{'true' if block.batch_booking else 'false'}</BtchBookg>\n"
            f"<NbOfTxs>{count}</NbOfTxs>\n"
            f"<CtrlSum>{format_cents(sum_cents)}</CtrlSum>\n"
            "<PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl>"
            f"<LclInstrm><Cd>{key.local_instrument.value}</Cd></LclInstrm>"
            f"<SeqTp>{key.sequence_type.value}</SeqTp></PmtTpInf>\n"
            f"<ReqdColltnDt>{key.collection_date.isoformat()}</ReqdColltnDt>\n"
            f"<Cdtr><Nm>{_x(creditor.name)}</Nm>{self.address(creditor.address)}</Cdtr>\n"
            f"<CdtrAcct><Id><IBAN>{key.creditor_iban}</IBAN></Id></CdtrAcct>\n"
            f"{self.agent('CdtrAgt', creditor.bic)}\n"
            "<ChrgBr>SLEV</ChrgBr>\n"
            f"<CdtrSchmeId>{self.scheme_id(key.creditor_id)}</CdtrSchmeId>\n"
        )

    @staticmethod
    def block_end() -> str:
        return "</PmtInf>\n"

    def amendment(self, amendment: Amendment | None) -> str:
        # AmdmntInd is optional and means "false" when absent; writing it on every
        # transaction would cost one more element per debit for the bank's parser and ours.
        if amendment is None or amendment.is_empty():
            return ""
        parts: list[str] = []
        if amendment.original_mandate_id:
            parts.append(f"<OrgnlMndtId>{_x(amendment.original_mandate_id)}</OrgnlMndtId>")
        if amendment.original_creditor_id or amendment.original_creditor_name:
            name = (
                f"<Nm>{_x(amendment.original_creditor_name)}</Nm>" if amendment.original_creditor_name else ""
            )
            ident = self.scheme_id(amendment.original_creditor_id) if amendment.original_creditor_id else ""
            parts.append(f"<OrgnlCdtrSchmeId>{name}{ident}</OrgnlCdtrSchmeId>")
        if amendment.new_debtor_agent and self._smnda_account:
            parts.append("<OrgnlDbtrAcct><Id><Othr><Id>SMNDA</Id></Othr></Id></OrgnlDbtrAcct>")
        elif amendment.original_debtor_iban:
            parts.append(f"<OrgnlDbtrAcct><Id><IBAN>{amendment.original_debtor_iban}</IBAN></Id></OrgnlDbtrAcct>")
        if amendment.new_debtor_agent and not self._smnda_account:
            parts.append("<OrgnlDbtrAgt><FinInstnId><Othr><Id>SMNDA</Id></Othr></FinInstnId></OrgnlDbtrAgt>")
        return f"<AmdmntInd>true</AmdmntInd><AmdmntInfDtls>{''.join(parts)}</AmdmntInfDtls>"

    def transaction(self, tx: DirectDebit) -> str:
        """One DrctDbtTxInf line: the common debit (no instruction id, amendment or ultimate
        party, no XML special in its text) in one f-string, the others by ``full_transaction``.

        The writer's CPU per transaction is what the read-back's share on the writer's core
        waits for (readback.SplitReadBack); this path spells the same bytes in about half
        the time (tests/iso20022/test_pain008_writer.py compares the two on generated debits).
        """
        if (
            tx.instruction_id or tx.amendment is not None or tx.ultimate_debtor
            or tx.ultimate_creditor is not None or type(tx.amount_cents) is not int or tx.amount_cents < 0
        ):
            return self.full_transaction(tx)
        remittance = tx.remittance
        if _NEEDS_ESCAPE.search(f"{tx.end_to_end_id}{tx.mandate_id}{tx.debtor_name}{remittance or ''}"):
            return self.full_transaction(tx)
        address = tx.debtor_address
        if address is not self._last_address:
            self._last_address, self._last_address_text = address, self.address(address)
        bic = tx.debtor_bic
        cents = tx.amount_cents
        return (
            f"<DrctDbtTxInf><PmtId><EndToEndId>{tx.end_to_end_id}</EndToEndId></PmtId>"
            f'<InstdAmt Ccy="EUR">{cents // 100}.{cents % 100:02d}</InstdAmt>'
            f"<DrctDbtTx><MndtRltdInf><MndtId>{tx.mandate_id}</MndtId>"
            f"<DtOfSgntr>{tx.mandate_signed_on.isoformat()}</DtOfSgntr></MndtRltdInf></DrctDbtTx>"
            f"{f'{self._debtor_agent_open}{bic}{self._debtor_agent_close}' if bic else self._no_debtor_agent}"
            f"<Dbtr><Nm>{tx.debtor_name}</Nm>{self._last_address_text}</Dbtr>"
            f"<DbtrAcct><Id><IBAN>{tx.debtor_iban}</IBAN></Id></DbtrAcct>"
            f"{f'<RmtInf><Ustrd>{remittance}</Ustrd></RmtInf>' if remittance else ''}</DrctDbtTxInf>\n"
        )

    def full_transaction(self, tx: DirectDebit) -> str:
        # IBANs, BICs, dates and amounts are pattern-checked values that cannot hold XML
        # specials (and if one did, the read-back parser would refuse the file), so only
        # free text and references go through escaping.
        instr = f"<InstrId>{_x(tx.instruction_id)}</InstrId>" if tx.instruction_id else ""
        ultimate = (
            self.ultimate("UltmtDbtr", UltimateParty(tx.ultimate_debtor, tx.ultimate_debtor_id))
            if tx.ultimate_debtor else ""
        )
        remittance = f"<RmtInf><Ustrd>{_x(tx.remittance)}</Ustrd></RmtInf>" if tx.remittance else ""
        return (
            f"<DrctDbtTxInf><PmtId>{instr}<EndToEndId>{_x(tx.end_to_end_id)}</EndToEndId></PmtId>"
            f'<InstdAmt Ccy="EUR">{format_cents(tx.amount_cents)}</InstdAmt>'
            f"<DrctDbtTx><MndtRltdInf><MndtId>{_x(tx.mandate_id)}</MndtId>"
            f"<DtOfSgntr>{tx.mandate_signed_on.isoformat()}</DtOfSgntr>"
            f"{self.amendment(tx.amendment)}</MndtRltdInf></DrctDbtTx>"
            f"{self.ultimate('UltmtCdtr', tx.ultimate_creditor)}"
            f"{self.agent('DbtrAgt', tx.debtor_bic)}"
            f"<Dbtr><Nm>{_x(tx.debtor_name)}</Nm>{self.address(tx.debtor_address)}</Dbtr>"
            f"<DbtrAcct><Id><IBAN>{tx.debtor_iban}</IBAN></Id></DbtrAcct>"
            f"{ultimate}{remittance}</DrctDbtTxInf>\n"
        )


def address_lines(address: PostalAddress) -> tuple[str, ...]:
    """At most two lines of 70: "street number" and "postcode town" (EPC 2009 subset)."""
    first = " ".join(part for part in (address.street, address.building_number) if part)
    second = " ".join(part for part in (address.postcode, address.town) if part)
    return tuple(line[:70] for line in (first, second, *address.lines) if line)[:2]


# --- uniqueness in constant memory ---------------------------------------------------------


class _EndToEndIds:
    """Exact duplicate detection for up to millions of ids in a few MiB.

    A Bloom filter (4 MiB, 3 probes: under 0.1 % false alarms at a million ids) flags
    suspects; every id also goes to an unnamed side file, re-read only when there are
    suspects, to count them exactly. Probes come from Python's own string hash (randomised
    per process, which is fine for a filter that lives for one file), split
    Kirsch-Mitzenmacher style.
    """

    _BITS = 1 << 25
    _MASK = _BITS - 1

    def __init__(self, spool_dir: str | Path | None) -> None:
        self._bits = bytearray(self._BITS // 8)
        self._suspects: set[str] = set()
        self._side = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - closed by close(), it outlives this call
        self._pending: list[str] = []

    def add(self, value: str) -> None:
        h = hash(value) & 0xFFFFFFFFFFFFFFFF
        mask = self._MASK
        h1, h2 = h & mask, (h >> 32) | 1
        i2, i3 = (h1 + h2) & mask, (h1 + 2 * h2) & mask
        # The three probes unrolled (a loop over them cost a third of this method): seen
        # when all three bits were set before, then all three set.
        byte1, bit1, byte2, bit2, byte3, bit3 = h1 >> 3, 1 << (h1 & 7), i2 >> 3, 1 << (i2 & 7), i3 >> 3, 1 << (i3 & 7)
        bits = self._bits
        seen = bits[byte1] & bit1 and bits[byte2] & bit2 and bits[byte3] & bit3
        bits[byte1] |= bit1
        bits[byte2] |= bit2
        bits[byte3] |= bit3
        if seen:
            self._suspects.add(value)
        self._pending.append(value)
        if len(self._pending) >= 8192:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._side.write(("\n".join(self._pending) + "\n").encode("utf-8"))
            self._pending = []

    def check(self) -> None:
        try:
            if not self._suspects:
                return
            self._flush()
            self._side.seek(0)
            counts = dict.fromkeys(self._suspects, 0)
            for line in self._side:
                value = line[:-1].decode("utf-8")
                if value in counts:
                    counts[value] += 1
            duplicates = sorted((v, n) for v, n in counts.items() if n > 1)
            if duplicates:
                value, times = duplicates[0]
                raise errors.DuplicateIdentifier("EndToEndId", value, f"is used {times} times in the file")
        finally:
            self._side.close()

    def close(self) -> None:
        self._side.close()


# --- output: file, digest and read-back in one place ---------------------------------------


class _Sink:
    """The output file, its digest and its read-back, fed the document's parts in order."""

    def __init__(self, out: BinaryIO, check: readback.Whole | readback.SplitReadBack) -> None:
        self._out = out
        self._check = check
        self._digest = hashlib.sha256()
        self.size = 0

    def _write(self, data: bytes) -> bytes:
        self._out.write(data)
        self._digest.update(data)
        self.size += len(data)
        return data

    def document_start(self, text: str) -> None:
        self._check.document_start(self._write(text.encode("utf-8")))

    def block_start(self, text: str) -> None:
        self._check.block_start(self._write(text.encode("utf-8")))

    def transactions(self, data: bytes) -> None:
        """Whole transactions of the open block, never part of one."""
        self._check.transactions(self._write(data))

    def block_end(self, text: str) -> None:
        self._check.block_end(self._write(text.encode("utf-8")))

    def document_end(self, text: str) -> None:
        self._check.document_end(self._write(text.encode("utf-8")))

    def finish(self) -> str:
        self._check.close()
        return self._digest.hexdigest()

    def abandon(self) -> None:
        self._check.abandon()


# --- the writer ----------------------------------------------------------------------------


@dataclass(slots=True)
class _OpenBlock:
    block: PaymentBlock
    start: int = 0
    count: int = 0
    sum_cents: int = 0
    # Sizes of the block's flushes to the spool: each holds whole transactions, so the
    # read-back may be split between them (readback.SplitReadBack).
    pieces: list[int] = field(default_factory=list)


def write_pain008(
    out: BinaryIO,
    version: Pain008Version,
    header: FileHeader,
    transactions: Iterable[tuple[PaymentBlock, DirectDebit]],
    *,
    plan: Sequence[BlockPlan] | None = None,
    spool_dir: str | Path | None = None,
    profile: BankProfile | None = None,
) -> WrittenFile:
    """Write one validated pain.008 document to ``out`` from (block, transaction) pairs.

    Pairs must come grouped by payment block (a block may not reappear after another one
    started), in the plan's order when a plan is given. Raises ``SchemaViolation``,
    ``ControlSumMismatch``, ``DuplicateIdentifier``, or with ``profile`` a
    ``CollectionError`` naming the first rule of that bank the file breaks and its source;
    on any error, what was written to ``out`` must be discarded.
    """
    ids = _EndToEndIds(spool_dir)
    try:
        if plan is None:
            written = _write_spooled(out, version, header, transactions, ids, spool_dir, profile)
        else:
            written = _write_planned(out, version, header, transactions, ids, list(plan), profile)
        ids.check()
        return written
    finally:
        ids.close()


def _write_spooled(
    out: BinaryIO,
    version: Pain008Version,
    header: FileHeader,
    transactions: Iterable[tuple[PaymentBlock, DirectDebit]],
    ids: _EndToEndIds,
    spool_dir: str | Path | None,
    profile: BankProfile | None,
) -> WrittenFile:
    renderer = _Renderer(version, header.created_at.date())
    blocks: list[_OpenBlock] = []
    # A large file is read back on both cores once assembled (readback.SplitReadBack); the
    # child is started while rendering goes on, so its start-up costs nothing.
    child: readback.ReadBackProcess | None = None
    try:
        with tempfile.TemporaryFile(dir=spool_dir) as spool:
            pending: list[str] = []
            pending_size = offset = 0
            current: _OpenBlock | None = None
            for block, tx in transactions:
                if current is None or block.payment_info_id != current.block.payment_info_id:
                    # Flush so that block boundaries are exact byte offsets in the spool.
                    offset += _flush(spool, pending, current)
                    pending, pending_size = [], 0
                    _refuse_reopened(block, blocks)
                    current = _OpenBlock(block, start=offset)
                    blocks.append(current)
                text = renderer.transaction(tx)
                pending.append(text)
                pending_size += len(text)
                current.count += 1
                current.sum_cents += tx.amount_cents
                ids.add(tx.end_to_end_id)
                if pending_size >= _SPOOL_FLUSH:
                    offset += _flush(spool, pending, current)
                    pending, pending_size = [], 0
                    if child is None and profile is None and sum(b.count for b in blocks) >= CHILD_VALIDATION_FROM:
                        child = readback.ReadBackProcess(version, part=True)
            offset += _flush(spool, pending, current)
            if current is None:
                raise errors.CollectionError("file", header.message_id, "has no transactions")

            if child is None and profile is None and sum(b.count for b in blocks) >= CHILD_VALIDATION_FROM:
                child = readback.ReadBackProcess(version, part=True)
            if child is not None:
                check: readback.Whole | readback.SplitReadBack = readback.SplitReadBack(version, child)
            else:
                check = readback.Whole(readback.InProcessReadBack(version, profile))
            child = None  # the sink owns it now
            sink = _Sink(out, check)
            try:
                sink.document_start(renderer.document_start(header, *_totals(blocks)))
                for open_block in blocks:
                    sink.block_start(renderer.block_start(open_block.block, open_block.count, open_block.sum_cents))
                    _copy(spool, open_block, sink)
                    sink.block_end(renderer.block_end())
                sink.document_end(renderer.document_end())
                digest = sink.finish()
            except BaseException:
                sink.abandon()
                raise
    except BaseException:
        if child is not None:
            child.abandon()
        raise
    return _written(header, version, blocks, digest, sink.size)


def _write_planned(
    out: BinaryIO,
    version: Pain008Version,
    header: FileHeader,
    transactions: Iterable[tuple[PaymentBlock, DirectDebit]],
    ids: _EndToEndIds,
    plan: list[BlockPlan],
    profile: BankProfile | None,
) -> WrittenFile:
    if not plan or any(p.count < 1 for p in plan):
        raise errors.CollectionError("file", header.message_id, "has no transactions")
    renderer = _Renderer(version, header.created_at.date())
    total_count = sum(p.count for p in plan)
    total_cents = sum(p.sum_cents for p in plan)
    check: readback.Whole | readback.SplitReadBack
    if total_count < CHILD_VALIDATION_FROM:
        check = readback.Whole(readback.InProcessReadBack(version, profile))
    elif profile is not None:
        # The profile's rules follow the file's order (block and transaction numbers, the
        # file's size): they are read by one child, whole.
        check = readback.Whole(readback.ReadBackProcess(version, profile))
    else:
        check = readback.SplitReadBack(version)
    sink = _Sink(out, check)
    blocks: list[_OpenBlock] = []
    try:
        sink.document_start(renderer.document_start(header, total_count, total_cents))
        current: _OpenBlock | None = None
        pending: list[str] = []
        pending_size = 0
        for block, tx in transactions:
            if current is None or block.payment_info_id != current.block.payment_info_id:
                _emit_text(sink, pending)
                pending, pending_size = [], 0
                if current is not None:
                    _close_planned(sink, renderer, current, plan[len(blocks) - 1])
                if len(blocks) >= len(plan) or plan[len(blocks)].block.payment_info_id != block.payment_info_id:
                    _refuse_reopened(block, blocks)
                    raise errors.CollectionError("PmtInfId", block.payment_info_id, "is not the next block of the plan")
                current = _OpenBlock(block)
                blocks.append(current)
                expected = plan[len(blocks) - 1]
                sink.block_start(renderer.block_start(block, expected.count, expected.sum_cents))
            text = renderer.transaction(tx)
            pending.append(text)
            pending_size += len(text)
            current.count += 1
            current.sum_cents += tx.amount_cents
            ids.add(tx.end_to_end_id)
            if pending_size >= _SPOOL_FLUSH:
                _emit_text(sink, pending)
                pending, pending_size = [], 0
        _emit_text(sink, pending)
        if current is None or len(blocks) != len(plan):
            raise errors.ControlSumMismatch("plan", f"{len(plan)} blocks", f"was announced but {len(blocks)} were streamed")
        _close_planned(sink, renderer, current, plan[-1])
        sink.document_end(renderer.document_end())
        digest = sink.finish()
    except BaseException:
        sink.abandon()
        raise
    return _written(header, version, blocks, digest, sink.size)


def _close_planned(sink: _Sink, renderer: _Renderer, current: _OpenBlock, expected: BlockPlan) -> None:
    if (current.count, current.sum_cents) != (expected.count, expected.sum_cents):
        raise errors.ControlSumMismatch(
            f"PmtInf[{current.block.payment_info_id}]",
            readback.totals_text((expected.count, expected.sum_cents)),
            f"was planned but the transactions add up to {readback.totals_text((current.count, current.sum_cents))}",
        )
    sink.block_end(renderer.block_end())


def _refuse_reopened(block: PaymentBlock, blocks: list[_OpenBlock]) -> None:
    if any(b.block.payment_info_id == block.payment_info_id for b in blocks):
        raise errors.DuplicateIdentifier(
            "PmtInfId", block.payment_info_id, "reappears after another payment block: input must be grouped by block"
        )


def _emit_text(sink: _Sink, pending: list[str]) -> None:
    if pending:
        sink.transactions("".join(pending).encode("utf-8"))


def _flush(spool: BinaryIO, pending: list[str], block: _OpenBlock | None) -> int:
    if not pending:
        return 0
    data = "".join(pending).encode("utf-8")
    spool.write(data)
    assert block is not None  # pending text is always some block's transactions
    block.pieces.append(len(data))
    return len(data)


def _copy(spool: BinaryIO, block: _OpenBlock, sink: _Sink) -> None:
    spool.seek(block.start)
    for size in block.pieces:
        chunk = spool.read(size)
        if len(chunk) != size:
            raise errors.CollectionError("spool", None, "ended before its block was complete")
        sink.transactions(chunk)


def _totals(blocks: list[_OpenBlock]) -> tuple[int, int]:
    return sum(b.count for b in blocks), sum(b.sum_cents for b in blocks)


def _written(header: FileHeader, version: Pain008Version, blocks: list[_OpenBlock], digest: str, size: int) -> WrittenFile:
    count, cents = _totals(blocks)
    return WrittenFile(
        message_id=header.message_id,
        version=version.name,
        count=count,
        sum_cents=cents,
        blocks=tuple(WrittenBlock(b.block.payment_info_id, b.block.key, b.count, b.sum_cents) for b in blocks),
        sha256=digest,
        size=size,
    )


def creation_time(at: dt.datetime, timezone: str) -> dt.datetime:
    """CreDtTm in the business zone, with its offset, to the second."""
    return at.astimezone(ZoneInfo(timezone)).replace(microsecond=0)
