"""Reader for bank-to-customer booking reports: camt.052 (intraday), camt.053 (statement)
and camt.054 (debit/credit notification), .001.02 to .001.08, chosen from the namespace.

One code path serves every version: records are built from local element names relative
to their booking entry (Ntry) or transaction (TxDtls), and where a version moved a field
both places are read (entry status ``Sts`` became ``Sts/Cd`` in .06; a transaction's
amount is ``AmtDtls/InstdAmt``, ``AmtDtls/TxAmt`` or, from .03, ``Amt``; charges are
``Chrgs/Amt`` in .02 and ``Chrgs/Rcrd/Amt`` from .03; parties gained ``Pty`` in .08).

What is a direct debit, and which R-transaction (see ``classify``): decided from the
bank transaction code's family and sub-family (the transaction's, else its entry's,
else the original code in RtrInf), the presence of return information and the
mandate reference, never from ``RvslInd``: banks disagree on it (RULES.md section 4).
Only direct-debit records are yielded; everything else is counted in
``ReadResult.skipped_by_reason``, one per transaction (or per entry without details).

Decisions:
  * An entry without TxDtls becomes one ``Scope.ENTRY`` record (a lump sum whose
    details come in another file), never split by guessing.
  * Entries whose status is not BOOK (INFO, PDNG, FUTR) are still yielded, with
    ``booked=False`` and one ``not_booked`` warning per entry: the Finnish camt.054
    reports failed collections that way, and the reconciliation must know of them
    even though no money moved; it must not book them.
  * The transaction amount is AmtDtls/InstdAmt (what we collected), else TxAmt, else
    the transaction's Amt; charges are reported apart (``fees_cents``), never netted.
    A lone transaction without any amount takes its entry's, with a warning.
  * A direct debit whose R-type cannot be told (a debit of an issued direct debit with
    no return information, a reversed credit without a reason) becomes a
    ``Kind.UNKNOWN`` record with an ``unclassified`` warning, for a person.

Streaming: lxml filters the end events of GrpHdr, TxDtls, Ntry and the statement
containers in C. An entry's own fields (amount, status, dates, code) stand before its
details, so they are complete when its first TxDtls ends. Each TxDtls is released once
read, and so is each Ntry, so memory stays flat whatever the number of transactions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass

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

CREDIT_TRANSFER_FAMILIES = frozenset({"ICDT", "RCDT", "ICCN", "RCCN", "IRCT", "RRCT"})
# Issued (creditor side) and received (debtor side) direct debits; Finnish and Swiss banks
# book the creditor's collections as RDDT too, so both count and the booking direction decides.
DIRECT_DEBIT_FAMILIES = frozenset({"IDDT", "RDDT"})
# Sub-families that name the R-transaction themselves.
R_SUB_FAMILIES = {
    "UPDD": Kind.RETURNED,  # reversal due to return / unpaid direct debit
    "PRDD": Kind.REFUNDED,  # reversal due to payment reversal: how banks book refunds (RULES.md 4)
    "RCDD": Kind.REVERSED,  # reversal due to a payment cancellation request
}
# Bank fees, commissions and taxes about direct debits: not a direct debit themselves.
CHARGE_SUB_FAMILIES = frozenset({"CHRG", "COMM", "FEES", "TAXE", "INTR"})
# Only ever a refund, whatever the sub-family says.
REFUND_REASONS = frozenset({"MD06"})
BOOKED = "BOOK"

_STATEMENT_CONTAINERS = ("Stmt", "Ntfctn", "Rpt")
_TX_AMOUNTS = ("AmtDtls/InstdAmt/Amt", "AmtDtls/TxAmt/Amt", "Amt")
_ENTRY_AMOUNTS = ("AmtDtls/InstdAmt/Amt", "AmtDtls/TxAmt/Amt", "Amt")
_CHARGES = ("Chrgs/Amt", "Chrgs/Rcrd/Amt")
_CHARGES_TOTAL = ("Chrgs/TtlChrgsAndTaxAmt",)
# An entry's part still streaming when its first transaction ends.
_STREAMING = frozenset({"NtryDtls"})


def read(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    xsd_dir: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
    message: MessageType | None = None,
) -> ReadResult:
    """Read a camt.052, camt.053 or camt.054; see ``returns.ReadResult`` for the streaming."""
    found = message or support.detect(path, max_bytes=max_bytes)
    support.expect_family(found, ("camt.052", "camt.053", "camt.054"))
    return support.open_result(
        path, found, lambda result: _Reader(found, result), strict=strict, xsd_dir=xsd_dir, max_bytes=max_bytes
    )


# --- classification -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BankCode:
    domain: str | None = None
    family: str | None = None
    sub_family: str | None = None
    proprietary: str | None = None

    @property
    def text(self) -> str | None:
        if not (self.domain or self.family):
            return None
        return "/".join(part or "" for part in (self.domain, self.family, self.sub_family))


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind | None = None
    skip: SkipReason | None = None
    # Why the kind could not be told (Kind.UNKNOWN) or a return was not recognised.
    note: str | None = None


_NO_CODE = BankCode()
# The outcomes without a note, made once: classify runs for every transaction.
_SKIP_CREDIT_TRANSFER = Decision(skip=SkipReason.CREDIT_TRANSFER)
_SKIP_NOT_DIRECT_DEBIT = Decision(skip=SkipReason.NOT_DIRECT_DEBIT)
_SKIP_PAID = Decision(skip=SkipReason.DIRECT_DEBIT_PAID)
_DECIDED = {kind: Decision(kind=kind) for kind in Kind}


def classify(
    code: BankCode,
    *,
    credit_debit: str | None,
    reversal: bool | None,
    has_return_info: bool,
    has_mandate: bool,
    reason_code: str | None,
) -> Decision:
    """Direct debit or not, and which kind, from the code, the direction and the content."""
    family = (code.family or "").upper() or None
    sub_family = (code.sub_family or "").upper() or None
    if family in CREDIT_TRANSFER_FAMILIES:
        return _SKIP_CREDIT_TRANSFER
    # Without any code (the German camt.052 Ruecklastschrift) the mandate says direct debit.
    if family not in DIRECT_DEBIT_FAMILIES and (family is not None or not has_mandate):
        if family is None and has_return_info:
            return Decision(
                skip=SkipReason.NOT_DIRECT_DEBIT,
                note="return information without a bank transaction code or mandate reference: "
                "not recognisable as a direct debit",
            )
        return _SKIP_NOT_DIRECT_DEBIT
    if sub_family in CHARGE_SUB_FAMILIES:
        return _SKIP_NOT_DIRECT_DEBIT
    if reason_code is not None and reason_code.upper() in REFUND_REASONS:
        return _DECIDED[Kind.REFUNDED]
    named = R_SUB_FAMILIES.get(sub_family or "")
    if named is not None:
        return _DECIDED[named]
    if has_return_info:
        return _DECIDED[Kind.RETURNED]
    direction = (credit_debit or "").upper()
    if direction == "CRDT" and not reversal:
        return _DECIDED[Kind.SETTLED]
    if direction == "DBIT" and not reversal and family != "IDDT":
        # Somebody else's collection debited from this account: we are the debtor there.
        return _SKIP_PAID
    booked_as = f"{direction or 'undirected'}{' reversal' if reversal else ''}"
    return Decision(
        kind=Kind.UNKNOWN,
        note=f"a {booked_as} booking of a direct debit ({code.text or 'no code'}) without return information: "
        "its R-type cannot be told, kept for manual review",
    )


# --- reading --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Statement:
    index: int
    path: str
    account_iban: str | None


@dataclass(slots=True)
class _Entry:
    index: int
    path: str
    amount_cents: int | None
    currency: str | None
    credit_debit: str | None
    reversal: bool | None
    status: str | None
    booking_date: dt.date | None
    value_date: dt.date | None
    reference: str | None
    code: BankCode
    fees_cents: int | None
    transactions: int = 0
    details: int = 0
    warned_not_booked: bool = False

    @property
    def booked(self) -> bool:
        return (self.status or "").upper() == BOOKED


@dataclass(slots=True)
class _Batch:
    message_id: str | None
    payment_info_id: str | None


class _Reader:
    def __init__(self, message: MessageType, result: ReadResult) -> None:
        ns = "{" + message.namespace + "}"
        self._cut = len(ns)
        self._header_tag = ns + "GrpHdr"
        self._entry_tag = ns + "Ntry"
        self._transaction_tag = ns + "TxDtls"
        self._batch_tag = ns + "Btch"
        self._containers = frozenset(ns + name for name in _STATEMENT_CONTAINERS)
        self.tags = (self._header_tag, self._transaction_tag, self._entry_tag, *sorted(self._containers))
        self._result = result
        self._fields = FieldReader(result)
        self._shapes = support.ShapeCache(self._cut)
        self._statements = 0
        self._entries = 0  # in the current statement
        self._statement: _Statement | None = None
        self._statement_element: etree._Element | None = None
        self._entry: _Entry | None = None
        self._entry_element: etree._Element | None = None
        self._details_element: etree._Element | None = None
        self._batch = _Batch(None, None)
        self._transactions = 0  # in the current NtryDtls
        # A transaction without any amount, held until we know whether its entry has others.
        self._held: ReturnRecord | None = None

    def handle(self, element: etree._Element) -> Iterable[ReturnRecord]:
        tag = element.tag
        records: list[ReturnRecord] = []
        if tag == self._transaction_tag:
            self._transaction(element, records)
            support.release(element)
        elif tag == self._entry_tag:
            self._end_entry(element, records)
            support.release(element)
        elif tag in self._containers:
            self._statement = self._statement_element = None
            support.release(element)
        elif tag == self._header_tag:
            values = flatten(element, self._cut)
            self._result.message_id = values.get("MsgId")
            self._result.created = values.get("CreDtTm")
            support.release(element)
        return records

    def finish(self) -> Iterable[ReturnRecord]:
        return ()

    # --- levels ---------------------------------------------------------------------------

    def _enter_statement(self, statement: etree._Element | None) -> _Statement:
        if self._statement is not None and statement is self._statement_element:
            return self._statement
        self._statements += 1
        container = document = "?"
        values = Values()
        if statement is not None:
            container = statement.tag[self._cut :]
            parent = statement.getparent()
            document = parent.tag[self._cut :] if parent is not None else "?"
            values = flatten(statement, self._cut, frozenset({"Ntry"}))
        self._statement = _Statement(
            self._statements,
            f"/Document/{document}/{container}[{self._statements}]",
            values.get("Acct/Id/IBAN", "Acct/Id/Othr/Id"),
        )
        self._statement_element = statement
        self._entries = 0
        return self._statement

    def _enter_entry(self, entry: etree._Element, *, complete: bool) -> tuple[_Entry, Values]:
        statement = self._enter_statement(entry.getparent())
        self._entries += 1
        path = f"{statement.path}/Ntry[{self._entries}]"
        # Before its end only the entry's own fields are complete; its details are streaming.
        values = self._shapes.flatten(entry, frozenset() if complete else _STREAMING)
        fields = self._fields
        amount_path = "Amt"
        self._entry = _Entry(
            index=self._entries,
            path=path,
            amount_cents=fields.cents(values, amount_path, path),
            currency=values.get(amount_path + "@Ccy"),
            credit_debit=values.get("CdtDbtInd"),
            reversal=support.is_true(values.get("RvslInd")),
            status=values.get("Sts/Cd", "Sts/Prtry", "Sts"),
            booking_date=fields.day(values, ("BookgDt/Dt", "BookgDt/DtTm"), path),
            value_date=fields.day(values, ("ValDt/Dt", "ValDt/DtTm"), path),
            reference=values.get("AcctSvcrRef", "NtryRef"),
            code=_bank_code(values, "BkTxCd/"),
            fees_cents=_charges(fields, values, path),
        )
        if self._entry.status is None:
            self._result.warn(FindingCode.MISSING_FIELD, "Sts is missing: read as not booked", path)
        self._entry_element = entry
        self._details_element = None
        return self._entry, values

    def _transaction(self, element: etree._Element, records: list[ReturnRecord]) -> None:
        details = element.getparent()
        entry_element = details.getparent() if details is not None else None
        if entry_element is None:
            return  # TxDtls outside an entry: the XSD check reports it
        if self._entry is None or entry_element is not self._entry_element:
            self._enter_entry(entry_element, complete=False)
        entry = self._entry
        assert entry is not None
        if details is not self._details_element:
            entry.details += 1
            self._details_element = details
            self._transactions = 0
            batch = details.find(self._batch_tag)
            batch_values = flatten(batch, self._cut) if batch is not None else Values()
            self._batch = _Batch(batch_values.get("MsgId"), clean_id(batch_values.get("PmtInfId")))
        self._transactions += 1
        entry.transactions += 1
        if self._held is not None:
            records.append(self._without_amount(self._held))
            self._held = None
        location = f"{entry.path}/NtryDtls[{entry.details}]/TxDtls[{self._transactions}]"
        record = self._transaction_record(self._shapes.flatten(element), entry, location)
        if record is None:
            return
        if record.amount_cents is None:
            self._held = record
        else:
            records.append(record)

    def _end_entry(self, element: etree._Element, records: list[ReturnRecord]) -> None:
        if self._entry is not None and element is self._entry_element:
            if self._held is not None:
                held, self._held = self._held, None
                records.append(self._amount_from_entry(held) if self._entry.transactions == 1 else self._without_amount(held))
        else:
            entry, values = self._enter_entry(element, complete=True)
            record = self._entry_record(values, entry)
            if record is not None:
                records.append(record)
        self._entry = self._entry_element = self._details_element = None

    # --- records --------------------------------------------------------------------------

    def _transaction_record(self, values: Values, entry: _Entry, location: str) -> ReturnRecord | None:
        own = _bank_code(values, "BkTxCd/") if values.has("BkTxCd/") else _NO_CODE
        code = own if own.family else entry.code
        if not code.family and values.has("RtrInf/OrgnlBkTxCd/"):
            original = _bank_code(values, "RtrInf/OrgnlBkTxCd/")
            if original.family:
                code = original
        proprietary = own.proprietary or entry.code.proprietary
        reason = values.get("RtrInf/Rsn/Cd")
        mandate = values.get("Refs/MndtId")
        credit_debit = values.get("CdtDbtInd") or entry.credit_debit
        has_return_info = values.has("RtrInf/")
        decision = classify(
            code,
            credit_debit=credit_debit,
            reversal=entry.reversal,
            has_return_info=has_return_info,
            has_mandate=mandate is not None or _sepa_creditor(values),
            reason_code=reason,
        )
        if decision.skip is not None:
            self._result.skip(decision.skip)
            if decision.note:
                self._result.warn(FindingCode.UNCLASSIFIED, decision.note, location)
            return None
        assert decision.kind is not None
        self._note(decision, entry, location)
        amount_path = _first_present(values, _TX_AMOUNTS)
        additional = joined(values, "RtrInf/AddtlInf") or joined(values, "AddtlTxInf")
        return ReturnRecord(
            scope=Scope.TRANSACTION,
            kind=decision.kind,
            location=location,
            status=entry.status,
            booked=entry.booked,
            original_message_id=values.get("Refs/MsgId") or self._batch.message_id,
            payment_info_id=clean_id(values.get("Refs/PmtInfId")) or self._batch.payment_info_id,
            instruction_id=clean_id(values.get("Refs/InstrId")),
            end_to_end_id=clean_id(values.get("Refs/EndToEndId")),
            mandate_reference=mandate,
            creditor_id=values.get("RltdPties/Cdtr/Id/PrvtId/Othr/Id", "RltdPties/Cdtr/Pty/Id/PrvtId/Othr/Id"),
            amount_cents=self._fields.cents(values, amount_path, location),
            currency=values.get(amount_path + "@Ccy"),
            booking_date=entry.booking_date,
            value_date=entry.value_date,
            settlement_date=self._fields.day(values, ("RltdDts/IntrBkSttlmDt",), location),
            reason_code=reason,
            proprietary_reason=values.get("RtrInf/Rsn/Prtry"),
            additional_info=additional,
            fees_cents=_charges(self._fields, values, location),
            entry_fees_cents=entry.fees_cents,
            entry_amount_cents=entry.amount_cents,
            credit_debit=credit_debit,
            reversal_indicator=entry.reversal,
            entry_reference=entry.reference,
            bank_reference=values.get("Refs/AcctSvcrRef", "Refs/TxId"),
            bank_transaction_code=code.text,
            proprietary_bank_code=proprietary,
            account_iban=self._statement.account_iban if self._statement else None,
            debtor_name=values.get("RltdPties/Dbtr/Nm", "RltdPties/Dbtr/Pty/Nm"),
        )

    def _entry_record(self, values: Values, entry: _Entry) -> ReturnRecord | None:
        decision = classify(
            entry.code,
            credit_debit=entry.credit_debit,
            reversal=entry.reversal,
            has_return_info=False,
            has_mandate=False,
            reason_code=None,
        )
        if decision.skip is not None:
            self._result.skip(decision.skip)
            return None
        assert decision.kind is not None
        self._note(decision, entry, entry.path)
        amount_path = _first_present(values, _ENTRY_AMOUNTS)
        batch = "NtryDtls/Btch/"
        return ReturnRecord(
            scope=Scope.ENTRY,
            kind=decision.kind,
            location=entry.path,
            status=entry.status,
            booked=entry.booked,
            original_message_id=values.get(batch + "MsgId"),
            payment_info_id=clean_id(values.get(batch + "PmtInfId")),
            number_of_transactions=support.parse_count(values.get(batch + "NbOfTxs")),
            amount_cents=entry.amount_cents if amount_path == "Amt" else self._fields.cents(values, amount_path, entry.path),
            currency=values.get(amount_path + "@Ccy"),
            booking_date=entry.booking_date,
            value_date=entry.value_date,
            additional_info=joined(values, "AddtlNtryInf"),
            fees_cents=entry.fees_cents,
            entry_fees_cents=entry.fees_cents,
            entry_amount_cents=entry.amount_cents,
            credit_debit=entry.credit_debit,
            reversal_indicator=entry.reversal,
            entry_reference=entry.reference,
            bank_transaction_code=entry.code.text,
            proprietary_bank_code=entry.code.proprietary,
            account_iban=self._statement.account_iban if self._statement else None,
        )

    def _note(self, decision: Decision, entry: _Entry, location: str) -> None:
        if decision.note:
            self._result.warn(FindingCode.UNCLASSIFIED, decision.note, location)
        if not entry.booked and not entry.warned_not_booked:
            entry.warned_not_booked = True
            self._result.warn(
                FindingCode.NOT_BOOKED,
                f"entry status {entry.status or '(missing)'}: not booked, its records are information only (booked=false)",
                entry.path,
            )

    def _amount_from_entry(self, record: ReturnRecord) -> ReturnRecord:
        entry = self._entry
        if entry is None or entry.amount_cents is None:
            return self._without_amount(record)
        self._result.warn(
            FindingCode.AMOUNT_FROM_ENTRY,
            "the transaction gives no amount: its entry's booked amount is used (it may include charges)",
            record.location,
        )
        return dataclasses.replace(record, amount_cents=entry.amount_cents, currency=entry.currency)

    def _without_amount(self, record: ReturnRecord) -> ReturnRecord:
        self._result.warn(
            FindingCode.MISSING_FIELD,
            "the transaction gives no amount and its entry holds several: the entry's total is not split",
            record.location,
        )
        return record


def _first_present(values: Values, paths: tuple[str, ...]) -> str:
    for path in paths:
        if values.get(path) is not None:
            return path
    return paths[-1]


def _bank_code(values: Values, prefix: str) -> BankCode:
    return BankCode(
        domain=values.get(prefix + "Domn/Cd"),
        family=values.get(prefix + "Domn/Fmly/Cd"),
        sub_family=values.get(prefix + "Domn/Fmly/SubFmlyCd"),
        proprietary=values.get(prefix + "Prtry/Cd"),
    )


def _charges(fields: FieldReader, values: Values, location: str) -> int | None:
    found = fields.total(values, _CHARGES, location)
    return found if found is not None else fields.total(values, _CHARGES_TOTAL, location)


def _sepa_creditor(values: Values) -> bool:
    # The SEPA creditor identifier only stands in direct debits.
    for prefix in ("RltdPties/Cdtr/Id/PrvtId/Othr/", "RltdPties/Cdtr/Pty/Id/PrvtId/Othr/"):
        if (values.get(prefix + "SchmeNm/Prtry") or "").upper() == "SEPA":
            return True
    return False
