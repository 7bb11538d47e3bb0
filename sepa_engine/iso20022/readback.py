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
start-up per file, and safe in a threaded daemon, unlike a plain fork).
"""

from __future__ import annotations

import multiprocessing
import re
from multiprocessing.connection import Connection
from typing import Protocol

from lxml import etree

from sepa_engine import errors
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

    def __init__(self, pain008: Pain008Version, profile: BankProfile | None = None) -> None:
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

    def _block_end(self, element: etree._Element) -> None:
        self._blocks += 1
        declared = (int(element[3].text), read_cents(element[4].text, "PmtInf/CtrlSum"))
        actual = (self._block_count, self._block_cents)
        if declared != actual:
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

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload([__name__])
_SEND_AT = 256 * 1024


def _serve(conn: Connection, version_name: str, profile: BankProfile | None) -> None:
    failure: dict[str, object] | None = None
    try:
        check: InProcessReadBack | None = InProcessReadBack(version(version_name), profile)
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
    if check is not None:
        try:
            check.close()
        except errors.SepaEngineError as exc:
            failure = exc.to_dict()
    conn.send(failure)
    conn.close()


class ReadBackProcess:
    def __init__(self, pain008: Pain008Version, profile: BankProfile | None = None) -> None:
        self._conn, child = _context.Pipe(duplex=True)
        self._process = _context.Process(target=_serve, args=(child, pain008.name, profile), daemon=True)
        self._process.start()
        child.close()
        self._pending: list[bytes] = []
        self._pending_size = 0

    def feed(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= _SEND_AT:
            self._send()

    def _send(self) -> None:
        if self._pending:
            self._conn.send_bytes(b"".join(self._pending))
            self._pending, self._pending_size = [], 0

    def close(self) -> None:
        try:
            self._send()
            self._conn.send_bytes(b"")
            failure = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise errors.CollectionError("validator", None, f"stopped before answering: {exc}") from None
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
