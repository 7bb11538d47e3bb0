"""The SEPA Core scheme's rules for a pain.008 file WE are about to send, record by record.

RULES.md sections 2, 3 and 6: stricter than what we accept in incoming status or return
files. For instance a collection date on a TARGET closing day is an error here, while
incoming files carrying one must still be read. ``Checker`` is fed the reader's records
in document order and collects every finding (it never stops at the first).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sepa_engine import errors
from sepa_engine.domain import calendar, charset, identifiers, money
from sepa_engine.iso20022 import pain008_reader as reader
from sepa_engine.iso20022.pain008_findings import Code, Finding, Severity, message
from sepa_engine.iso20022.pain008_reader import (
    BlockEnd,
    GroupHeader,
    PaymentBlock,
    PostalAddress,
    Transaction,
    parse_date,
)
from sepa_engine.iso20022.versions import Pain008Version, version

SEQUENCE_TYPES = frozenset({"FRST", "RCUR", "OOFF", "FNAL"})
LOCAL_INSTRUMENTS = frozenset({"CORE", "B2B"})
CURRENCY = "EUR"
MAX_ADDRESS_LINES = 2

# Built from charset.SEPA_CHARACTERS (the one definition): a regex tests a name in a
# fraction of the time of a per-character loop, and a file has millions of them.
_SEPA_CLASS = "".join(re.escape(c) for c in sorted(charset.SEPA_CHARACTERS))
_SEPA_TEXT = re.compile(f"[{_SEPA_CLASS}]*")
_EDGE_CLASS = "".join(re.escape(c) for c in sorted(charset.SEPA_CHARACTERS - {" ", "/"}))
_NO_SPACE_CLASS = "".join(re.escape(c) for c in sorted(charset.SEPA_CHARACTERS - {" "}))
# Fast paths for the two references every transaction carries: a value they accept is
# one identifiers.validate_reference / validate_mandate_id accept (the test suite checks
# the two agree); anything else goes to the validator, which says what is wrong.
_PLAIN_REFERENCE = re.compile(
    f"(?!.*//)[{_EDGE_CLASS}](?:[{_SEPA_CLASS}]{{0,{charset.REFERENCE_MAX - 2}}}[{_EDGE_CLASS}])?"
)
_PLAIN_MANDATE_ID = re.compile(
    f"(?!.*//)[{_EDGE_CLASS}](?:[{_NO_SPACE_CLASS}]{{0,{charset.REFERENCE_MAX - 2}}}[{_EDGE_CLASS}])?"
)
_DIGITS = re.compile("[0-9]{1,15}")
_NOT_A_DATE = "is not a date (YYYY-MM-DD)"
_SCHEME_ID = "Id/PrvtId/Othr/Id"


def check_records(source: Path, pain008: Pain008Version, *, check_ibans: bool = True) -> Checker:
    checker = Checker(pain008, check_ibans=check_ibans)
    for record in reader.read_records(source, pain008):
        checker.feed(record)
    checker.finish()
    return checker



@functools.lru_cache(maxsize=1 << 14)
def identifier_problem(kind: str, value: str, field_name: str) -> errors.SepaEngineError | None:
    # Cached: creditor IBANs, BICs and identifiers repeat in every block, debtor banks in
    # most transactions, and schwifty takes about 10 microseconds per IBAN.
    try:
        _VALIDATORS[kind](value, field_name)
    except errors.SepaEngineError as exc:
        return exc
    return None


_VALIDATORS: dict[str, Callable[[str, str], str]] = {
    "iban": identifiers.validate_iban,
    "bic": identifiers.validate_bic,
    "creditor_id": identifiers.validate_creditor_id,
    "reference": identifiers.validate_reference,
    "mandate_id": identifiers.validate_mandate_id,
}


@functools.lru_cache(maxsize=4096)
def _target_day_problem(day: dt.date) -> tuple[Code, str] | None:
    try:
        if calendar.is_target_day(day):
            return None
    except errors.CalendarError as exc:
        return Code.OUTSIDE_CALENDAR, exc.rule
    return Code.NOT_TARGET_DAY, f"is not a TARGET business day ({day.strftime('%A')})"


def lenient_cents(text: str | None) -> int | None:
    """Cents of an amount whatever its size (control sums exceed one debit's maximum);
    None when it cannot be read, which the caller reports."""
    try:
        return money.read_cents(text)
    except errors.InvalidAmount:
        return None


@dataclass(slots=True)
class _Scope:
    """Declared and counted totals of the group or of one payment block."""

    declared_count: int | None = None
    declared_cents: int | None = None
    count: int = 0
    cents: int = 0
    # An amount we could not read makes the control sum impossible to compare.
    unreadable_amount: bool = False

    def add(self, cents: int | None) -> None:
        self.count += 1
        if cents is None:
            self.unreadable_amount = True
        else:
            self.cents += cents


@dataclass(slots=True)
class Checker:
    pain008: Pain008Version
    # False when a child process checks the IBANs while streaming (large files).
    check_ibans: bool = True
    findings: list[Finding] = field(default_factory=list)
    total_count: int = 0
    total_cents: int = 0
    _group: GroupHeader | None = None
    _group_scope: _Scope = field(default_factory=_Scope)
    _block: PaymentBlock | None = None
    _block_scope: _Scope = field(default_factory=_Scope)
    _block_date: dt.date | None = None
    _created: dt.date | None = None
    _blocks: int = 0
    _payment_info_ids: set[str] = field(default_factory=set)
    _end_to_end_ids: set[str] = field(default_factory=set)

    # -- plumbing ------------------------------------------------------------------------
    def feed(self, record: reader.Record) -> None:
        if type(record) is Transaction:
            self._transaction(record)
        elif type(record) is PaymentBlock:
            self._block_start(record)
        elif type(record) is BlockEnd:
            self._block_end(record)
        elif type(record) is GroupHeader:
            self._group_header(record)

    def _add(self, severity: Severity, code: str, location: str, field_name: str, message: str) -> None:
        self.findings.append(Finding(severity, code, location, field_name, message))

    def _error(self, code: str, base: str, field_name: str, value: object, problem: str) -> None:
        self._add(Severity.ERROR, code, f"{base}/{field_name}", field_name, message(field_name, value, problem))

    def _warning(self, code: str, base: str, field_name: str, value: object, problem: str) -> None:
        self._add(Severity.WARNING, code, f"{base}/{field_name}", field_name, message(field_name, value, problem))

    def _reported(self, problem: errors.SepaEngineError | None, base: str, field_name: str) -> None:
        """A validator's error as a finding: its code, its (already masked) message."""
        if problem is not None:
            self._add(Severity.ERROR, problem.code, f"{base}/{field_name}", field_name, str(problem))

    def _identifier(self, kind: str, value: str | None, base: str, field_name: str) -> None:
        if value is None or (kind == "iban" and not self.check_ibans):
            return
        self._reported(identifier_problem(kind, value, field_name), base, field_name)

    def _required(self, value: str | None, base: str, field_name: str) -> bool:
        if value:
            return True
        self._error(Code.MISSING_FIELD, base, field_name, None, "is missing")
        return False

    def _text(self, value: str | None, base: str, field_name: str, max_length: int) -> None:
        if value is None:
            return
        for code, problem in _text_problems(value, max_length):
            self._error(code, base, field_name, value, problem)

    def _address(self, address: PostalAddress | None, base: str, prefix: str) -> None:
        if address is None:
            return
        for severity, code, suffix, value, problem in _address_problems(address, self.pain008.name):
            field_name = prefix + suffix
            self._add(severity, code, f"{base}/{field_name}", field_name, message(field_name, value, problem))

    def _date(self, text: str | None, base: str, field_name: str) -> dt.date | None:
        if text is None:
            return None
        day = parse_date(text)
        if day is None:
            self._error(Code.INVALID_DATE, base, field_name, text, _NOT_A_DATE)
        return day

    def _count(self, text: str | None, base: str) -> int | None:
        if text is None:
            return None
        if _DIGITS.fullmatch(text.strip()) is None:
            self._error(Code.INVALID_NUMBER, base, "NbOfTxs", text, "is not a number of transactions")
            return None
        return int(text)

    def _control_sum(self, text: str | None, base: str) -> int | None:
        if text is None:
            self._warning(
                Code.CONTROL_SUM_MISSING, base, "CtrlSum", None,
                "is absent: the bank cannot cross-check the amounts",
            )  # fmt: skip
            return None
        cents = lenient_cents(text)
        if cents is None:
            self._error(Code.INVALID_AMOUNT, base, "CtrlSum", text, "is not an amount with at most two decimals")
        return cents

    def _compare(self, scope: _Scope, base: str, what: str) -> None:
        if scope.declared_count is not None and scope.declared_count != scope.count:
            self._error(
                Code.TRANSACTION_COUNT_MISMATCH, base, "NbOfTxs", str(scope.declared_count),
                f"does not match the {scope.count} transactions of the {what}",
            )  # fmt: skip
        if scope.declared_cents is not None and not scope.unreadable_amount and scope.declared_cents != scope.cents:
            self._error(
                Code.CONTROL_SUM_MISMATCH, base, "CtrlSum", money.format_cents(scope.declared_cents),
                f"does not match the sum of the {what}'s transactions ({money.format_cents(scope.cents)})",
            )  # fmt: skip

    # -- records -------------------------------------------------------------------------
    def _group_header(self, header: GroupHeader) -> None:
        self._group = header
        base = header.location
        if self._required(header.message_id, base, "MsgId"):
            self._identifier("reference", header.message_id, base, "MsgId")
        if self._required(header.created, base, "CreDtTm"):
            self._created = self._date(header.created, base, "CreDtTm")
        self._group_scope.declared_count = self._count(header.number_of_transactions, base)
        self._group_scope.declared_cents = self._control_sum(header.control_sum, base)
        self._text(header.initiating_party_name, base, "InitgPty/Nm", charset.NAME_MAX)

    def _block_start(self, block: PaymentBlock) -> None:
        self._block = block
        self._blocks += 1
        scope = self._block_scope = _Scope()
        base = block.location
        pid = block.payment_info_id
        if self._required(pid, base, "PmtInfId"):
            self._identifier("reference", pid, base, "PmtInfId")
            if pid in self._payment_info_ids:
                problem = "is used by another payment block of the file"
                self._error(Code.DUPLICATE_PAYMENT_INFO_ID, base, "PmtInfId", pid, problem)
            self._payment_info_ids.add(pid)  # type: ignore[arg-type]
        scope.declared_count = self._count(block.number_of_transactions, base)
        scope.declared_cents = self._control_sum(block.control_sum, base)
        self._block_type(block, base)
        self._block_date = self._collection_date(block, base)
        if self._required(block.creditor_name, base, "Cdtr/Nm"):
            self._text(block.creditor_name, base, "Cdtr/Nm", charset.NAME_MAX)
        self._address(block.creditor_address, base, "Cdtr/PstlAdr")
        if self._required(block.creditor_iban, base, "CdtrAcct/Id/IBAN"):
            self._identifier("iban", block.creditor_iban, base, "CdtrAcct/Id/IBAN")
        self._identifier("bic", block.creditor_bic, base, f"CdtrAgt/FinInstnId/{self.pain008.bic_tag}")
        self._identifier("creditor_id", block.creditor_id, base, f"CdtrSchmeId/{_SCHEME_ID}")
        self._text(block.ultimate_creditor_name, base, "UltmtCdtr/Nm", charset.NAME_MAX)

    def _block_type(self, block: PaymentBlock, base: str) -> None:
        if block.service_level != "SEPA":
            self._error(Code.NOT_SEPA_SERVICE_LEVEL, base, "PmtTpInf/SvcLvl/Cd", block.service_level, "must be SEPA")
        if block.local_instrument not in LOCAL_INSTRUMENTS:
            self._error(
                Code.UNSUPPORTED_LOCAL_INSTRUMENT, base, "PmtTpInf/LclInstrm/Cd", block.local_instrument,
                "must be CORE or B2B",
            )  # fmt: skip
        if block.sequence_type not in SEQUENCE_TYPES:
            self._error(
                Code.INVALID_SEQUENCE_TYPE, base, "PmtTpInf/SeqTp", block.sequence_type,
                "must be one of FRST, RCUR, OOFF, FNAL",
            )  # fmt: skip

    def _collection_date(self, block: PaymentBlock, base: str) -> dt.date | None:
        if not self._required(block.collection_date, base, "ReqdColltnDt"):
            return None
        day = self._date(block.collection_date, base, "ReqdColltnDt")
        if day is None:
            return None
        problem = _target_day_problem(day)
        if problem is not None:
            code, rule = problem
            add = self._warning if code is Code.OUTSIDE_CALENDAR else self._error
            add(code, base, "ReqdColltnDt", day.isoformat(), rule)
        if self._created is not None and day < self._created:
            self._error(
                Code.COLLECTION_BEFORE_CREATION, base, "ReqdColltnDt", day.isoformat(),
                f"is before the file's creation date {self._created.isoformat()}",
            )  # fmt: skip
        return day

    def _transaction(self, tx: Transaction) -> None:
        # tx.location is built only when a finding is made: most transactions have none.
        self._block_scope.add(self._amount(tx))
        self._references(tx)
        self._mandate(tx)
        self._debtor(tx)
        self._remittance(tx)
        if tx.creditor_id is not None:
            self._identifier("creditor_id", tx.creditor_id, tx.location, f"DrctDbtTx/CdtrSchmeId/{_SCHEME_ID}")
        elif self._block is not None and self._block.creditor_id is None:
            self._error(
                Code.MISSING_CREDITOR_ID, tx.location, "DrctDbtTx/CdtrSchmeId", None,
                "is missing on the transaction and on its payment block",
            )  # fmt: skip

    def _amount(self, tx: Transaction) -> int | None:
        text = tx.amount
        if text is None:
            self._error(Code.MISSING_FIELD, tx.location, "InstdAmt", None, "is missing")
            return None
        if tx.currency != CURRENCY:
            self._error(Code.CURRENCY_NOT_EUR, tx.location, "InstdAmt/@Ccy", tx.currency, "must be EUR")
        try:
            return money.parse_amount(text, "InstdAmt")
        except errors.InvalidAmount as exc:
            self._add(Severity.ERROR, Code.INVALID_AMOUNT, f"{tx.location}/InstdAmt", "InstdAmt", str(exc))
            return lenient_cents(text)

    def _references(self, tx: Transaction) -> None:
        e2e = tx.end_to_end_id
        if e2e is None:
            self._error(Code.MISSING_FIELD, tx.location, "PmtId/EndToEndId", None, "is missing")
        else:
            if _PLAIN_REFERENCE.fullmatch(e2e) is None:
                field_name = "PmtId/EndToEndId"
                self._reported(_uncached_problem("reference", e2e, field_name), tx.location, field_name)
            seen = self._end_to_end_ids
            size = len(seen)
            seen.add(e2e)
            if len(seen) == size:
                self._error(
                    Code.DUPLICATE_END_TO_END_ID, tx.location, "PmtId/EndToEndId", e2e,
                    "is used by another transaction of the file",
                )  # fmt: skip
        if tx.instruction_id is not None:
            problem = _uncached_problem("reference", tx.instruction_id, "PmtId/InstrId")
            self._reported(problem, tx.location, "PmtId/InstrId")

    def _mandate(self, tx: Transaction) -> None:
        prefix = "DrctDbtTx/MndtRltdInf/"
        if tx.mandate_id is None:
            self._error(Code.MISSING_FIELD, tx.location, prefix + "MndtId", None, "is missing")
        elif _PLAIN_MANDATE_ID.fullmatch(tx.mandate_id) is None:
            problem = _uncached_problem("mandate_id", tx.mandate_id, prefix + "MndtId")
            self._reported(problem, tx.location, prefix + "MndtId")
        if tx.signature_date is None:
            self._error(Code.MISSING_FIELD, tx.location, prefix + "DtOfSgntr", None, "is missing")
        else:
            signed = _cached_date(tx.signature_date)
            if signed is None:
                self._error(Code.INVALID_DATE, tx.location, prefix + "DtOfSgntr", tx.signature_date, _NOT_A_DATE)
            elif self._block_date is not None and signed > self._block_date:
                self._error(
                    Code.SIGNED_AFTER_COLLECTION, tx.location, prefix + "DtOfSgntr", signed.isoformat(),
                    f"is after the collection date {self._block_date.isoformat()}",
                )  # fmt: skip
        if tx.amended and tx.amendment is None:
            self._error(
                Code.AMENDMENT_DETAILS_MISSING, tx.location, prefix + "AmdmntInd", tx.amendment_indicator,
                "says the mandate was amended but AmdmntInfDtls is missing",
            )  # fmt: skip
        elif tx.amendment is not None:
            self._amendment(tx, prefix + "AmdmntInfDtls/")

    def _amendment(self, tx: Transaction, prefix: str) -> None:
        amendment = tx.amendment
        assert amendment is not None
        base = tx.location
        if not tx.amended:
            self._warning(
                Code.AMENDMENT_WITHOUT_INDICATOR, base, prefix.rstrip("/"), None,
                "is given but AmdmntInd is not true, so the bank ignores it",
            )  # fmt: skip
        if amendment.original_mandate_id is not None:
            self._identifier("mandate_id", amendment.original_mandate_id, base, prefix + "OrgnlMndtId")
        bic = self.pain008.bic_tag
        self._text(amendment.original_creditor_name, base, prefix + "OrgnlCdtrSchmeId/Nm", charset.NAME_MAX)
        self._identifier("creditor_id", amendment.original_creditor_id, base, f"{prefix}OrgnlCdtrSchmeId/{_SCHEME_ID}")
        self._identifier("iban", amendment.original_debtor_iban, base, prefix + "OrgnlDbtrAcct/Id/IBAN")
        self._identifier("bic", amendment.original_debtor_bic, base, f"{prefix}OrgnlDbtrAgt/FinInstnId/{bic}")

    def _debtor(self, tx: Transaction) -> None:
        base = tx.location
        if tx.debtor_name is None:
            self._error(Code.MISSING_FIELD, base, "Dbtr/Nm", None, "is missing")
        else:
            self._name(tx.debtor_name, base, "Dbtr/Nm")
        self._address(tx.debtor_address, base, "Dbtr/PstlAdr")
        if tx.debtor_iban is None:
            self._error(Code.MISSING_FIELD, base, "DbtrAcct/Id/IBAN", None, "is missing")
        else:
            self._identifier("iban", tx.debtor_iban, base, "DbtrAcct/Id/IBAN")
        self._identifier("bic", tx.debtor_bic, base, f"DbtrAgt/FinInstnId/{self.pain008.bic_tag}")
        if tx.ultimate_debtor_name is not None:
            self._name(tx.ultimate_debtor_name, base, "UltmtDbtr/Nm")
        if tx.ultimate_creditor_name is not None:
            self._name(tx.ultimate_creditor_name, base, "UltmtCdtr/Nm")

    def _name(self, value: str, base: str, field_name: str) -> None:
        # Fast path for the common case; _text reports what is wrong.
        if len(value) > charset.NAME_MAX or _SEPA_TEXT.fullmatch(value) is None:
            self._text(value, base, field_name, charset.NAME_MAX)

    def _remittance(self, tx: Transaction) -> None:
        lines = tx.remittance
        if len(lines) + tx.structured_remittance_count > 1:
            self._error(
                Code.MULTIPLE_REMITTANCE, tx.location, "RmtInf", len(lines) + tx.structured_remittance_count,
                "remittance blocks: SEPA allows one Ustrd or one Strd",
            )  # fmt: skip
        for number, line in enumerate(lines, start=1):
            field_name = "RmtInf/Ustrd" if len(lines) == 1 else f"RmtInf/Ustrd[{number}]"
            if len(line) > charset.REMITTANCE_MAX or _SEPA_TEXT.fullmatch(line) is None:
                self._text(line, tx.location, field_name, charset.REMITTANCE_MAX)

    def _block_end(self, end: BlockEnd) -> None:
        scope = self._block_scope
        base = end.block.location
        if scope.count == 0:
            problem = "is missing: the payment block has no transaction"
            self._error(Code.NO_TRANSACTIONS, base, "DrctDbtTxInf", None, problem)
        self._compare(scope, base, "payment block")
        group = self._group_scope
        group.count += scope.count
        group.cents += scope.cents
        group.unreadable_amount |= scope.unreadable_amount
        self._block = None
        self._block_date = None

    def finish(self) -> None:
        group = self._group_scope
        self.total_count, self.total_cents = group.count, group.cents
        if self._group is None:
            self._add(
                Severity.ERROR, Code.MISSING_GROUP_HEADER, reader.GROUP_HEADER_PATH, "GrpHdr",
                message("GrpHdr", None, "is missing"),
            )  # fmt: skip
            return
        if self._blocks == 0:
            problem = "is missing: the file has no payment block"
            self._error(Code.NO_TRANSACTIONS, reader.DOCUMENT_PATH, "PmtInf", None, problem)
        self._compare(group, reader.GROUP_HEADER_PATH, "file")


# End-to-end ids and mandate references are unique per transaction: caching them would
# only evict the entries that do repeat.
_uncached_problem = identifier_problem.__wrapped__


@functools.lru_cache(maxsize=4096)
def _cached_date(text: str) -> dt.date | None:
    return parse_date(text)


_AddressProblem = tuple[Severity, str, str, object, str]


@functools.lru_cache(maxsize=4096)
def _address_problems(address: PostalAddress, version_name: str) -> tuple[_AddressProblem, ...]:
    """What is wrong with an address, field names relative to PstlAdr.

    Cached on the address value: debtors share towns and buildings, and the reader hands
    out one object per distinct address.
    """
    found: list[_AddressProblem] = []
    texts = [
        (address.street, "StrtNm", charset.STREET_MAX),
        (address.building_number, "BldgNb", charset.BUILDING_NUMBER_MAX),
        (address.postcode, "PstCd", charset.POSTCODE_MAX),
        (address.town, "TwnNm", charset.TOWN_MAX),
    ]
    texts += [(line, f"AdrLine[{n}]", charset.ADDRESS_LINE_MAX) for n, line in enumerate(address.lines, start=1)]
    for value, name, max_length in texts:
        if value is not None:
            problems = _text_problems(value, max_length)
            found += [(Severity.ERROR, code, f"/{name}", value, problem) for code, problem in problems]
    if len(address.lines) > MAX_ADDRESS_LINES:
        found.append((
            Severity.ERROR, Code.TOO_MANY_ADDRESS_LINES, "/AdrLine", len(address.lines),
            f"lines: SEPA allows at most {MAX_ADDRESS_LINES}",
        ))  # fmt: skip
    if address.is_unstructured:
        found.append(_unstructured(address, version(version_name)))
    return tuple(found)


def _unstructured(address: PostalAddress, pain008: Pain008Version) -> _AddressProblem:
    problem = "is unstructured (AdrLine without TwnNm and Ctry): refused since November 2026"
    if pain008.structured_address:
        return Severity.ERROR, Code.UNSTRUCTURED_ADDRESS, "", address.one_line(), problem
    # The version table does not require structured addresses for the 2009 versions
    # (the scheme's rule targets the 2019 messages): a warning, so the file still goes.
    return (
        Severity.WARNING, Code.UNSTRUCTURED_ADDRESS, "", address.one_line(),
        f"{problem} (a warning in {pain008.name})",
    )  # fmt: skip


def _text_problems(value: str, max_length: int) -> list[tuple[str, str]]:
    """SEPA length and character set of a free text (Nm is 70 under SEPA, not the XSD's 140)."""
    found: list[tuple[str, str]] = []
    if len(value) > max_length:
        found.append((Code.INVALID_LENGTH, f"is longer than {max_length} characters (SEPA)"))
    if _SEPA_TEXT.fullmatch(value) is None:
        bad = charset.invalid_characters(value)
        listed = ", ".join(f"{char!r} at position {position + 1}" for position, char in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        found.append((Code.INVALID_CHARACTERS, f"has characters outside the SEPA character set: {listed}{more}"))
    return found
