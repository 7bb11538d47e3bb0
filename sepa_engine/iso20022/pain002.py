"""Reader for pain.002 customer payment status reports: rejects before settlement and
acknowledgements of our pain.008 files.

Versions: .001.03 (ISO 2009, EPC), .002.03 (German DK 2009), .001.10 (ISO 2019) and
SIX's .001.03.ch.02, recognised from the namespace. They share the element names we
read; where a later version moved something (Dbtr/Pty/Nm in .001.10) both paths are read.

A status can stand at three levels and each becomes a record of that scope:
  * OrgnlGrpInfAndSts/GrpSts: the whole file (``Scope.GROUP``), e.g. RJCT AM10 for a
    wrong control sum, or ACTC/ACCP when the bank accepted it;
  * OrgnlPmtInfAndSts/PmtInfSts: one payment block (``Scope.PAYMENT_BLOCK``);
  * TxInfAndSts/TxSts: one transaction (``Scope.TRANSACTION``); a transaction without a
    status of its own takes its block's (else the file's).
Group and block records apply to every transaction they cover: the reconciliation
expands them. PART, PDNG and PATC say nothing by themselves (the transactions'
statuses follow, or a later report) and make no record. A report about one of our files that
states no status at any level (no GrpSts, no PmtInfSts, no TxInfAndSts) becomes one group
record of kind ACCEPTED without a status: the German DK subset of pain.002.001.03
(DFÜ-Abkommen Anlage 3 v3.0, 2016, TransactionGroupStatusCodeSEPA = RJCT only) cannot say
ACCP, so a bank answering a file in it with nothing rejected has accepted the file. A status outside the ISO list
(the Verification Of Payee scheme adds some) becomes a ``Kind.UNKNOWN`` record for a
person, with a warning.

A report about something other than our direct debits (OrgnlMsgNmId not pain.008,
e.g. a pain.001 credit-transfer file) yields no record: ``ReadResult.not_ours`` says
why and each status it holds is counted as skipped. The name is compared case-blind
(BOI writes ``PAIN.008.001.02``, PostFinance ``pain.008.001.02.ch.03``).

Streaming: lxml filters the end events of the group header, the group status, the
payment blocks and the transactions in C; a block's own fields stand before its
transactions, so they are complete when its first transaction ends. Each transaction
and block is released once read, so memory stays flat.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from lxml import etree

from sepa_engine.iso20022 import return_support as support
from sepa_engine.iso20022.return_support import (
    FieldReader,
    MessageType,
    Values,
    clean_id,
    flatten,
    joined,
)
from sepa_engine.iso20022.returns import (
    FindingCode,
    Kind,
    ReadResult,
    ReturnRecord,
    Scope,
    SkipReason,
)

DOCUMENT_PATH = "/Document/CstmrPmtStsRpt"
GROUP_PATH = f"{DOCUMENT_PATH}/OrgnlGrpInfAndSts"

REJECTED = frozenset({"RJCT"})
# Received, technically or fully accepted, settled (ISO ExternalPaymentGroupStatus1Code /
# ExternalPaymentTransactionStatus1Code).
ACCEPTED = frozenset({"ACCP", "ACSC", "ACSP", "ACTC", "ACWC", "ACWP", "ACCC", "ACFC", "ACIS", "ACCR", "RCVD"})
# Say nothing by themselves: the transactions' statuses follow, or a later report does.
NO_RECORD = frozenset({"PART", "PDNG", "PATC"})


def block_path(block: int) -> str:
    return f"{DOCUMENT_PATH}/OrgnlPmtInfAndSts[{block}]"


def transaction_path(block: int, index: int) -> str:
    return f"{block_path(block)}/TxInfAndSts[{index}]"


def read(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    xsd_dir: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
    message: MessageType | None = None,
) -> ReadResult:
    """Read a pain.002; see ``returns.ReadResult`` for how the records stream."""
    found = message or support.detect(path, max_bytes=max_bytes)
    support.expect_family(found, ("pain.002",))
    return support.open_result(
        path, found, lambda result: _Reader(found, result), strict=strict, xsd_dir=xsd_dir, max_bytes=max_bytes
    )


def is_direct_debit_message(name: str | None) -> bool:
    return name is not None and name.strip().lower().startswith("pain.008")


class _Group:
    __slots__ = ("message_id", "message_name", "ours", "status")

    def __init__(self, message_id: str | None, message_name: str | None, status: str | None, ours: bool) -> None:
        self.message_id = message_id
        self.message_name = message_name
        self.status = status
        self.ours = ours


class _Block:
    __slots__ = ("index", "payment_info_id", "status")

    def __init__(self, index: int, payment_info_id: str | None, status: str | None) -> None:
        self.index = index
        self.payment_info_id = payment_info_id
        self.status = status


class _Reader:
    def __init__(self, message: MessageType, result: ReadResult) -> None:
        ns = "{" + message.namespace + "}"
        self._cut = len(ns)
        self._header_tag = ns + "GrpHdr"
        self._group_tag = ns + "OrgnlGrpInfAndSts"
        self._block_tag = ns + "OrgnlPmtInfAndSts"
        self._transaction_tag = ns + "TxInfAndSts"
        self.tags: tuple[str, ...] = (self._header_tag, self._group_tag, self._block_tag, self._transaction_tag)
        self._result = result
        self._fields = FieldReader(result)
        self._shapes = support.ShapeCache(self._cut)
        self._group: _Group | None = None
        self._block: _Block | None = None
        self._blocks = 0
        self._transactions = 0
        # Whether any block or transaction spoke: a report that says nothing at all about our
        # file accepted it (see the module docstring).
        self._spoke = False

    def handle(self, element: etree._Element) -> Iterable[ReturnRecord]:
        tag = element.tag
        records: list[ReturnRecord] = []
        if tag == self._transaction_tag:
            if self._block is None:
                self._start_block(element.getparent(), records)
            self._transactions += 1
            self._transaction(element, records)
            support.release(element)
        elif tag == self._block_tag:
            if self._block is None:
                self._start_block(element, records)
            self._block, self._transactions = None, 0
            support.release(element)
        elif tag == self._group_tag:
            self._read_group(element, records)
            support.release(element)
        elif tag == self._header_tag:
            values = flatten(element, self._cut)
            self._result.message_id = values.get("MsgId")
            self._result.created = values.get("CreDtTm")
            support.release(element)
        return records

    def finish(self) -> Iterable[ReturnRecord]:
        group = self._group
        if group is None:
            self._result.warn(
                FindingCode.MISSING_FIELD, "OrgnlGrpInfAndSts is missing: the original file is unknown", DOCUMENT_PATH
            )
            return ()
        if group.status is None and not self._spoke and group.ours and group.message_id:
            return (
                ReturnRecord(
                    scope=Scope.GROUP, kind=Kind.ACCEPTED, location=GROUP_PATH,
                    original_message_id=group.message_id, original_message_name=group.message_name,
                    additional_info="no status at any level and nothing rejected: the file is accepted",
                ),
            )
        return ()

    # --- levels ---------------------------------------------------------------------------

    def _read_group(self, element: etree._Element, records: list[ReturnRecord]) -> None:
        values = flatten(element, self._cut)
        name = values.get("OrgnlMsgNmId")
        message_id = values.get("OrgnlMsgId")
        ours = True
        if name is None:
            self._result.warn(
                FindingCode.MISSING_FIELD,
                "OrgnlMsgNmId is missing: cannot tell which file this reports on; read as ours",
                GROUP_PATH,
            )
        elif not is_direct_debit_message(name):
            ours = False
            why = (
                f"this status report answers a {name} message (OrgnlMsgId {message_id or 'not given'}), "
                "not one of our pain.008 direct-debit files: no record is read from it"
            )
            self._result.not_ours = why
            self._result.warn(FindingCode.NOT_OURS, why, f"{GROUP_PATH}/OrgnlMsgNmId")
        status = values.get("GrpSts")
        self._group = _Group(message_id, name, status, ours)
        kind = self._kind(status, f"{GROUP_PATH}/GrpSts")
        if kind is None:
            return
        if not ours:
            self._result.skip(SkipReason.NOT_OURS)
            return
        records.append(
            self._record(
                values,
                scope=Scope.GROUP,
                kind=kind,
                status=status,
                location=GROUP_PATH,
                amount_cents=self._fields.cents(values, "OrgnlCtrlSum", GROUP_PATH),
                number_of_transactions=support.parse_count(values.get("OrgnlNbOfTxs")),
            )
        )

    def _start_block(self, element: etree._Element | None, records: list[ReturnRecord]) -> None:
        self._blocks += 1
        location = block_path(self._blocks)
        values = flatten(element, self._cut, frozenset({"TxInfAndSts"})) if element is not None else Values()
        status = values.get("PmtInfSts")
        payment_info_id = clean_id(values.get("OrgnlPmtInfId"))
        self._block = _Block(self._blocks, payment_info_id, status)
        self._spoke = self._spoke or status is not None
        kind = self._kind(status, f"{location}/PmtInfSts")
        if kind is None:
            return
        if not self._ours():
            self._result.skip(SkipReason.NOT_OURS)
            return
        records.append(
            self._record(
                values,
                scope=Scope.PAYMENT_BLOCK,
                kind=kind,
                status=status,
                location=location,
                payment_info_id=payment_info_id,
                amount_cents=self._fields.cents(values, "OrgnlCtrlSum", location),
                number_of_transactions=support.parse_count(values.get("OrgnlNbOfTxs")),
            )
        )

    def _transaction(self, element: etree._Element, records: list[ReturnRecord]) -> None:
        block = self._block
        assert block is not None  # started by handle()
        self._spoke = True
        location = transaction_path(block.index, self._transactions)
        values = self._shapes.flatten(element)
        status = values.get("TxSts")
        if status is None:
            # ISO: a transaction without a status of its own shares its block's (or file's).
            status = block.status if block.status not in (None, *NO_RECORD) else None
            if status is None and self._group is not None and self._group.status not in NO_RECORD:
                status = self._group.status
            if status is None:
                self._result.warn(FindingCode.MISSING_FIELD, "TxSts is missing and nothing to inherit it from", location)
        kind = self._kind(status, f"{location}/TxSts") if status is not None else Kind.UNKNOWN
        if kind is None:
            return
        if not self._ours():
            self._result.skip(SkipReason.NOT_OURS)
            return
        reference = "OrgnlTxRef/"
        records.append(
            self._record(
                values,
                scope=Scope.TRANSACTION,
                kind=kind,
                status=status,
                location=location,
                payment_info_id=block.payment_info_id,
                instruction_id=clean_id(values.get("OrgnlInstrId")),
                end_to_end_id=clean_id(values.get("OrgnlEndToEndId")),
                mandate_reference=values.get(reference + "MndtRltdInf/MndtId"),
                creditor_id=values.get(reference + "CdtrSchmeId/Id/PrvtId/Othr/Id"),
                amount_cents=self._fields.cents(values, _amount_path(values), location),
                currency=values.get(_amount_path(values) + "@Ccy"),
                settlement_date=self._fields.day(values, (reference + "IntrBkSttlmDt",), location),
                requested_collection_date=self._fields.day(
                    values, (reference + "ReqdColltnDt", reference + "ReqdColltnDt/Dt"), location
                ),
                fees_cents=self._fields.total(values, ("ChrgsInf/Amt",), location),
                bank_reference=values.get("StsId", "AcctSvcrRef"),
                debtor_name=values.get(reference + "Dbtr/Nm", reference + "Dbtr/Pty/Nm"),
            )
        )

    # --- helpers --------------------------------------------------------------------------

    def _ours(self) -> bool:
        return self._group is None or self._group.ours

    def _kind(self, status: str | None, location: str) -> Kind | None:
        if status is None:
            return None
        code = status.upper()
        if code in REJECTED:
            return Kind.REJECTED
        if code in ACCEPTED:
            return Kind.ACCEPTED
        if code in NO_RECORD:
            return None
        if self._ours():
            self._result.warn(
                FindingCode.UNKNOWN_STATUS, f"status {status!r} is not an ISO status we know: kept for manual review", location
            )
        return Kind.UNKNOWN

    def _record(self, values: Values, **fields: object) -> ReturnRecord:
        group = self._group
        return ReturnRecord(
            original_message_id=group.message_id if group else None,
            original_message_name=group.message_name if group else None,
            reason_code=values.get("StsRsnInf/Rsn/Cd"),
            proprietary_reason=values.get("StsRsnInf/Rsn/Prtry"),
            additional_info=joined(values, "StsRsnInf/AddtlInf"),
            **fields,  # type: ignore[arg-type]
        )


def _amount_path(values: Values) -> str:
    # OrgnlTxRef/Amt is a choice: InstdAmt (direct debits) or EqvtAmt/Amt.
    for path in ("OrgnlTxRef/Amt/InstdAmt", "OrgnlTxRef/IntrBkSttlmAmt", "OrgnlTxRef/Amt/EqvtAmt/Amt"):
        if values.get(path) is not None:
            return path
    return "OrgnlTxRef/Amt/InstdAmt"

