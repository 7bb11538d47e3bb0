"""Validating read-back of a pain.008 document while it is being written.

The bytes of the file are fed to lxml's validating pull parser with the official XSD of
their version, and every transaction amount is re-added and compared with the NbOfTxs and
CtrlSum the writer declared, per payment block and for the group. Given a bank profile,
the same pass checks the profile's rules too (``readback_profile.py``), so a written file is
parsed once. The parser's tree is pruned as it grows, so memory stays flat whatever the
file's size.

``ReadBackProcess`` runs the same check in a child process: lxml keeps the GIL while it
parses, so on a two-core machine a large file is rendered on one core and validated on the
other. The child is forked from a forkserver that has this module preloaded (no interpreter
start-up per file, and safe in a threaded daemon, unlike a plain fork). ``SplitReadBack``
shares one file's read-back between such a child and the writer's own process, since
parsing against the XSD costs more than rendering.
"""

from __future__ import annotations

import collections
import os
import pickle
import re
import socket
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Protocol

from lxml import etree

from sepa_engine import errors, helper_processes
from sepa_engine.domain.bank_profiles import BankProfile
from sepa_engine.domain.money import format_cents, read_cents
from sepa_engine.iso20022.pain008_findings import Finding
from sepa_engine.iso20022.readback_profile import ProfileReadBack
from sepa_engine.iso20022.versions import Pain008Version, load_schema, version

# Amounts as the writer spells them ("12.34", at most 999999999.99), one per line once
# joined: a block's worth is checked by one regex and summed in integers, no float.
_WRITTEN_AMOUNTS = re.compile(r"(?:[0-9]{1,9}\.[0-9]{2}\n)*")


class ReadBack(Protocol):
    def feed(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class InProcessReadBack:
    """One pass over a file being written: XSD, control sums and, given one, a bank profile.

    The parser reports only the group header and the start and end of each payment block;
    transactions are not events. After each piece of input, the block's transactions that
    are complete (all but the last child, which may still be growing) are checked together
    and cut from the tree: per transaction, Python does no more than fetch InstdAmt's text
    (and the profile's fields). This took a fifth off the read-back's CPU time compared with
    one event per transaction (BENCHMARKS.md, 2026-12-04 night).
    """

    def __init__(self, pain008: Pain008Version, profile: BankProfile | None = None, *, part: bool = False) -> None:
        if pain008.xsd_name is None:
            raise errors.ConfigurationError("pain008_version", pain008.name, "has no XSD to validate against")
        ns = "{" + pain008.namespace + "}"
        self._ns = ns
        self._tx_tag, self._block_tag, self._header_tag = ns + "DrctDbtTxInf", ns + "PmtInf", ns + "GrpHdr"
        self._amount_tag = ns + "InstdAmt"
        self._parser = etree.XMLPullParser(
            events=("start", "end"),
            tag=(self._block_tag, self._header_tag),
            schema=load_schema(pain008.xsd_name),
            resolve_entities=False,
            no_network=True,
            collect_ids=False,  # ISO messages use no xml:id; the id table costs a quarter of parsing
        )
        self._block: etree._Element | None = None
        # Index of the open block's first transaction among its children, once one started.
        self._first_tx: int | None = None
        self._block_count = self._block_cents = 0
        self._blocks = 0
        self.count = self.cents = 0
        self._declared: tuple[int, int] | None = None
        self._message_id: str | None = None
        self._size = 0
        self._profile = ProfileReadBack(profile, pain008) if profile is not None else None
        # A part of a split document (``SplitReadBack``) holds only some of each block's
        # transactions: it reports what it read, and the totals are compared once all the
        # parts are in.
        self._part = part
        self._read_blocks: list[tuple[str, int, int, int, int]] = []
        if part and profile is not None:
            raise errors.ConfigurationError("profile", profile.name, "is checked on a whole document, not on its parts")

    @property
    def profile_findings(self) -> list[Finding]:
        """Every rule of the bank profile broken so far (all of them once closed)."""
        return self._profile.findings if self._profile is not None else []

    def feed(self, data: bytes) -> None:
        self._size += len(data)
        try:
            self._parser.feed(data)
            self._drain()
        except etree.XMLSyntaxError as exc:
            raise schema_error(exc, self._ns) from None

    def close(self) -> None:
        try:
            self._parser.close()
            self._drain()
        except etree.XMLSyntaxError as exc:
            raise schema_error(exc, self._ns) from None
        if self._part:
            return
        actual = (self.count, self.cents)
        if self._declared != actual:
            raise errors.ControlSumMismatch(
                "GrpHdr/CtrlSum", totals_text(self._declared), f"does not match the transactions read back ({totals_text(actual)})"
            )
        if self._profile is not None:
            findings = self._profile.finish(self._size)
            if findings:
                # The first rule broken names the batch's failure, with its source.
                raise errors.CollectionError("file", self._message_id, f"breaks a rule of its bank: {findings[0].message}")

    def _drain(self) -> None:
        for event, element in self._parser.read_events():
            if element.tag == self._block_tag:
                if event == "start":
                    self._block, self._first_tx = element, None
                else:
                    self._settle(element, len(element))
                    self._block_end(element)
            elif event == "end":
                self._declared = (int(element[2].text), read_cents(element[3].text, "GrpHdr/CtrlSum"))
                self._message_id = element[0].text
                if self._profile is not None:
                    self._profile.header(element)
        if self._block is not None:
            self._settle(self._block, len(self._block) - 1)

    def _settle(self, block: etree._Element, upto: int) -> None:
        """Check and cut the block's transactions before child ``upto``."""
        first = self._first_tx
        if first is None:
            first = self._find_first_transaction(block)
            if first is None:
                return
        if upto <= first:
            return
        transactions = block[first:upto]
        texts = [self._amount(tx).text or "" for tx in transactions]
        joined = "\n".join(texts) + "\n"
        if _WRITTEN_AMOUNTS.fullmatch(joined) is not None:
            cents = sum(map(int, joined.replace(".", "").split()))
        else:  # spelt otherwise (or not an amount): read one by one, the error names it
            cents = sum(read_cents(text, "DrctDbtTxInf/InstdAmt") for text in texts)
        if self._profile is not None:
            for number, tx in enumerate(transactions, start=self._block_count + 1):
                self._profile.transaction(tx, number)
        self._block_count += len(transactions)
        self._block_cents += cents
        del block[first:upto]

    def _find_first_transaction(self, block: etree._Element) -> int | None:
        for index, child in enumerate(block):
            if child.tag == self._tx_tag:
                self._first_tx = index
                if self._profile is not None:
                    # The block's own fields all stand before its first transaction.
                    self._profile.block(block, self._tx_tag)
                return index
        return None

    def _amount(self, tx: etree._Element) -> etree._Element:
        amount = tx[1]  # after PmtId, unless the transaction has its own PmtTpInf
        if amount.tag != self._amount_tag:
            found = tx.find(self._amount_tag)
            if found is None:
                raise errors.SchemaViolation("InstdAmt", None, "is missing")
            amount = found
        return amount

    @property
    def tally(self) -> Tally:
        """What this part declared and read, once closed."""
        return Tally(self._declared, tuple(self._read_blocks))

    def _block_end(self, element: etree._Element) -> None:
        self._blocks += 1
        declared = (int(element[3].text), read_cents(element[4].text, "PmtInf/CtrlSum"))
        actual = (self._block_count, self._block_cents)
        if self._part:
            self._read_blocks.append((element[0].text or "", *declared, *actual))
        elif declared != actual:
            raise errors.ControlSumMismatch(
                f"PmtInf[{self._blocks}]/CtrlSum", totals_text(declared), f"does not match its transactions ({totals_text(actual)})"
            )
        self.count += self._block_count
        self.cents += self._block_cents
        self._block_count = self._block_cents = 0
        self._block, self._first_tx = None, None
        element.clear()
        parent = element.getparent()
        while element.getprevious() is not None and element.getprevious().tag == self._block_tag:
            parent.remove(element.getprevious())


def totals_text(totals: tuple[int, int] | None) -> str:
    if totals is None:
        return "(missing)"
    count, cents = totals
    return f"{count} tx / {format_cents(cents) if cents >= 0 else cents}"


_ELEMENT_IN_MESSAGE = re.compile(r"Element '(?:\{[^}]*\})?([^']+)'")


def schema_error(exc: etree.XMLSyntaxError, ns: str) -> errors.SchemaViolation:
    message = (exc.msg or str(exc)).replace(ns, "")
    found = _ELEMENT_IN_MESSAGE.search(message)
    element = found.group(1) if found else "document"
    rule = _ELEMENT_IN_MESSAGE.sub("", message, count=1).strip(" :") or message
    return errors.SchemaViolation(element, None, f"breaks the XSD: {rule}")


# --- in a child process ------------------------------------------------------------------

_SEND_AT = 256 * 1024
_QUEUE = 1024 * 1024
_ACK = b"+"


def _serve(conn: Connection, version_name: str, profile: BankProfile | None, part: bool = False) -> None:
    helper_processes.in_child()
    failure: dict[str, object] | None = None
    try:
        check: InProcessReadBack | None = InProcessReadBack(version(version_name), profile, part=part)
    except errors.SepaEngineError as exc:
        check, failure = None, exc.to_dict()
    while True:
        data = conn.recv_bytes()
        if not data:
            break
        if check is not None:
            try:
                check.feed(data)
            except errors.SepaEngineError as exc:
                # Keep reading until the end marker so the writer never blocks on a full pipe.
                check, failure = None, exc.to_dict()
        if part:
            # The writer gives a piece to this process only while it keeps up (SplitReadBack).
            conn.send_bytes(_ACK)
    if check is not None:
        try:
            check.close()
        except errors.SepaEngineError as exc:
            failure = exc.to_dict()
    conn.send((failure, check.tally if part and check is not None and failure is None else None))
    conn.close()


class ReadBackProcess:
    def __init__(self, pain008: Pain008Version, profile: BankProfile | None = None, *, part: bool = False) -> None:
        self._conn, self._process = helper_processes.spawn(_serve, pain008.name, profile, part, duplex=True)
        # Room for several pieces in the socket pair, so the writer's sends do not wait on
        # the child (the kernel caps this at net.core.wmem_max; `queue` says what was granted).
        with socket.socket(fileno=os.dup(self._conn.fileno())) as end:
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _QUEUE)
            self.queue = end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 2
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._part = part
        # A part is sent piece by piece, each acknowledged once read, so the writer knows
        # how far behind the child is (SplitReadBack); a whole file goes in larger messages.
        self._send_at = 1 if part else _SEND_AT
        self._unanswered: collections.deque[int] = collections.deque()  # sizes of pieces not acknowledged
        self._behind = 0
        self.tally: Tally | None = None

    def feed(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self._send_at:
            self._send()

    @property
    def behind(self) -> int:
        """Bytes sent that the child has not finished reading (part mode only)."""
        try:
            while self._unanswered and self._conn.poll():
                self._conn.recv_bytes()
                self._behind -= self._unanswered.popleft()
        except (EOFError, OSError) as exc:
            raise helper_processes.stopped("validator", exc, self._process) from None
        return self._behind + self._pending_size

    def _send(self) -> None:
        if self._pending:
            self._conn.send_bytes(b"".join(self._pending))
            if self._part:
                self._unanswered.append(self._pending_size)
                self._behind += self._pending_size
            self._pending, self._pending_size = [], 0

    def close(self) -> None:
        try:
            self._send()
            self._conn.send_bytes(b"")
            while True:
                answer = self._conn.recv_bytes()
                if answer != _ACK:
                    break
            failure, self.tally = pickle.loads(answer)
        except (EOFError, OSError) as exc:
            raise helper_processes.stopped("validator", exc, self._process) from None
        finally:
            self._conn.close()
            self._process.join(timeout=30)
        if failure is not None:
            raise errors.from_dict(failure)

    def abandon(self) -> None:
        self._conn.close()
        self._process.kill()
        self._process.join(timeout=5)


def start(
    pain008: Pain008Version, in_child: bool, profile: BankProfile | None = None
) -> InProcessReadBack | ReadBackProcess:
    return ReadBackProcess(pain008, profile) if in_child else InProcessReadBack(pain008, profile)


# --- one document checked on both cores ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tally:
    """What one part of a split document declared and read: the group header's NbOfTxs and
    CtrlSum, and per block its PmtInfId, declared count and cents, read count and cents."""

    declared: tuple[int, int] | None
    blocks: tuple[tuple[str, int, int, int, int], ...]


class Whole:
    """The writer's parts of a document fed to one read-back, in order: the whole file."""

    def __init__(self, check: InProcessReadBack | ReadBackProcess) -> None:
        self.check = check

    def document_start(self, data: bytes) -> None:
        self.check.feed(data)

    def block_start(self, data: bytes) -> None:
        self.check.feed(data)

    def transactions(self, data: bytes) -> None:
        self.check.feed(data)

    def block_end(self, data: bytes) -> None:
        self.check.feed(data)

    def document_end(self, data: bytes) -> None:
        self.check.feed(data)

    def close(self) -> None:
        self.check.close()

    def abandon(self) -> None:
        if isinstance(self.check, ReadBackProcess):
            self.check.abandon()


class SplitReadBack:
    """One document's read-back shared between a child process and this one.

    lxml holds the GIL while it parses, and parsing with the XSD costs more than rendering
    (1.7 s against 1.0 s of CPU for 100,000 transactions): a child alone leaves this process
    waiting on it. So each piece of transactions goes to the child while it keeps up, and is
    checked here when the child is behind. Each side reads a well-formed document made of the
    file's own bytes: the group header, then for each block it has transactions of, that
    block's start, its transactions and its end. The pain.008 XSDs have no identity
    constraints and an unbounded sequence of transactions, so the file is valid exactly when
    both documents are; every NbOfTxs and CtrlSum is compared with the sum of both sides'
    reads once both are done. The writer gives only whole transactions in each piece.
    """

    # Bytes the child may have queued before this process checks a piece itself, at least:
    # less than a socket pair's default buffer (about 230 KB on Linux), so sending does not
    # wait on the child, and more than one piece, so the child does not wait on this process.
    # Where the kernel grants the larger buffer asked for (_QUEUE), two thirds of it.
    _BEHIND = 160 * 1024

    def __init__(self, pain008: Pain008Version, child: ReadBackProcess | None = None) -> None:
        self._version = pain008
        self._child = child if child is not None else ReadBackProcess(pain008, part=True)
        self._here: InProcessReadBack | None = None
        self._start = b""
        self._block_start = b""
        self._block = 0  # number of the current block, from 1
        self._open = {"child": 0, "here": 0}  # number of the block open on each side, 0 if none
        # Numbers of the blocks each side read, in its order: its tally's blocks, numbered.
        self._numbers: dict[str, list[int]] = {"child": [], "here": []}

    def document_start(self, data: bytes) -> None:
        self._start = data
        self._child.feed(data)

    def block_start(self, data: bytes) -> None:
        self._block += 1
        self._block_start = data

    def transactions(self, data: bytes) -> None:
        check: InProcessReadBack | ReadBackProcess
        if not self._here_takes(data):
            side, check = "child", self._child
        else:
            if self._here is None:
                self._here = InProcessReadBack(self._version, part=True)
                self._here.feed(self._start)
            side, check = "here", self._here
        if self._open[side] != self._block:
            check.feed(self._block_start)
            self._open[side] = self._block
            self._numbers[side].append(self._block)
        check.feed(data)

    def block_end(self, data: bytes) -> None:
        for side, check in self._sides():
            if self._open[side]:
                check.feed(data)
                self._open[side] = 0

    def document_end(self, data: bytes) -> None:
        for _side, check in self._sides():
            check.feed(data)

    def close(self) -> None:
        if self._here is not None:
            self._here.close()
        self._child.close()
        tallies = [("child", self._child.tally)]
        if self._here is not None:
            tallies.append(("here", self._here.tally))
        self._compare(tallies)

    def abandon(self) -> None:
        self._child.abandon()

    def _here_takes(self, data: bytes) -> bool:
        return self._child.behind + len(data) > max(self._BEHIND, self._child.queue * 2 // 3)

    def _sides(self) -> list[tuple[str, InProcessReadBack | ReadBackProcess]]:
        return [("child", self._child)] + ([("here", self._here)] if self._here is not None else [])

    def _compare(self, tallies: list[tuple[str, Tally | None]]) -> None:
        declared_blocks: dict[int, tuple[int, int]] = {}
        read: dict[int, tuple[int, int]] = {}
        group: tuple[int, int] | None = None
        for side, tally in tallies:
            if tally is None or len(tally.blocks) != len(self._numbers[side]):
                raise errors.CollectionError("validator", side, "did not read back every block it was given")
            group = tally.declared
            for number, (_id, count, cents, read_count, read_cents_) in zip(self._numbers[side], tally.blocks, strict=True):
                declared_blocks[number] = (count, cents)
                before = read.get(number, (0, 0))
                read[number] = (before[0] + read_count, before[1] + read_cents_)
        if sorted(declared_blocks) != list(range(1, self._block + 1)):
            # A block with no transactions to read would have had its start read by no side.
            raise errors.CollectionError("validator", None, "was not given every block's transactions")
        # In file order, so the block named is the first one a single read-back would name.
        for number in sorted(declared_blocks):
            declared, actual = declared_blocks[number], read[number]
            if declared != actual:
                raise errors.ControlSumMismatch(
                    f"PmtInf[{number}]/CtrlSum", totals_text(declared), f"does not match its transactions ({totals_text(actual)})"
                )
        actual = (sum(c for c, _ in read.values()), sum(c for _, c in read.values()))
        if group != actual:
            raise errors.ControlSumMismatch(
                "GrpHdr/CtrlSum", totals_text(group), f"does not match the transactions read back ({totals_text(actual)})"
            )
