"""Check a pain.008 file before it is sent, and describe what it would collect.

``verify`` collects every problem it finds (it never stops at the first), each as a
``Finding`` with a stable ``code``, the XPath of the element, the field and a message
written as "field value problem" with IBANs masked. ``describe`` lists what a person
reviewing the file wants to see: creditors, blocks, dates and transactions.

This module puts the parts together: the XSD plumbing is in pain008_xsd (a tree up to
``safe_xml.TREE_VALIDATION_MAX_BYTES``, else a stream in a child process), the scheme
rules in pain008_rules, ``describe`` in pain008_describe. Findings are sorted by block,
transaction and path, so both ways give the same report.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from sepa_engine import helper_processes
from sepa_engine.domain import money
from sepa_engine.domain.bank_profiles import BankProfile
from sepa_engine.iso20022 import pain008_reader as reader
from sepa_engine.iso20022 import pain008_xsd, safe_xml
from sepa_engine.iso20022.pain008_describe import (
    BlockSummary,
    CreditorSummary,
    Description,
    TransactionSummary,
    describe,
)
from sepa_engine.iso20022.pain008_findings import Code, Finding, Severity
from sepa_engine.iso20022.pain008_rules import Checker, check_records
from sepa_engine.iso20022.profile_rules import check_profile
from sepa_engine.iso20022.versions import Pain008Version, load_schema

__all__ = [
    "BlockSummary",
    "Code",
    "CreditorSummary",
    "Description",
    "Finding",
    "Severity",
    "TransactionSummary",
    "VerifyReport",
    "describe",
    "verify",
]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    path: str
    message: str
    transactions: int
    control_sum_cents: int
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def valid(self) -> bool:
        """No error; warnings do not make a file invalid."""
        return not any(f.severity is Severity.ERROR for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "message": self.message,
            "valid": self.valid,
            "transactions": self.transactions,
            "control_sum": money.format_cents(self.control_sum_cents),
            "findings": [f.to_dict() for f in self.findings],
        }


# --- verify --------------------------------------------------------------------------------


def verify(path: str | os.PathLike[str], profile: BankProfile | None = None) -> VerifyReport:
    """Every problem of a pain.008 file we are about to send.

    With ``profile``, the rules of that bank profile too (``profile_rules``), each finding
    naming the rule and its published source.

    Raises ``UnknownMessage`` when the namespace is not a pain.008 version we know and
    ``UnreadableFile`` when the file is not well-formed, hostile, empty or missing: in both
    cases nothing can be checked.
    """
    source = reader.readable_source(path)
    pain008 = reader.detect_version(source)
    try:
        report = _verify(source, str(path), pain008)
        if profile is None:
            return report
        findings = (*report.findings, *check_profile(source, profile))
        return dataclasses.replace(report, findings=tuple(sorted(findings, key=_position)))
    except OSError as exc:
        # The file went away or became unreadable while being read.
        raise reader.unreadable(source, exc) from None


def _verify(source: Path, path: str, pain008: Pain008Version) -> VerifyReport:
    schema = load_schema(pain008.xsd_name) if pain008.xsd_name else None
    findings: list[Finding] = []
    if schema is None:
        findings.append(
            Finding(
                Severity.WARNING,
                Code.SCHEMA_NOT_CHECKED,
                reader.DOCUMENT_PATH,
                "Document",
                f"no XSD shipped for {pain008.name}; schema not checked",
            )
        )
        checker = check_records(source, pain008)
    elif safe_xml.fits_in_tree(source):
        findings.extend(pain008_xsd.validate_tree(source, schema))
        checker = check_records(source, pain008)
    else:
        checker, streamed = _check_large(source, pain008, schema)
        findings.extend(streamed)
    findings.extend(checker.findings)
    return VerifyReport(
        path=path,
        message=pain008.name,
        transactions=checker.total_count,
        control_sum_cents=checker.total_cents,
        # By block, transaction and path: the same order whichever pass or process found them.
        findings=tuple(sorted(findings, key=_position)),
    )


_POSITION = re.compile(r"/PmtInf\[(\d+)\](?:/DrctDbtTxInf\[(\d+)\])?")


def _position(finding: Finding) -> tuple[int, int, str]:
    """(block, transaction, location); block 0 for the file and its group header."""
    found = _POSITION.search(finding.location)
    if found is None:
        return 0, 0, finding.location
    return int(found.group(1)), int(found.group(2) or 0), finding.location


def _check_large(source: Path, pain008: Pain008Version, schema: etree.XMLSchema) -> tuple[Checker, list[Finding]]:
    """Records here, XSD and IBANs in a child process on the other core.

    The halves are of a size on a million transactions (measured on two cores: about 20 s
    of CPU for the records, 16 s for the XSD pass with cached IBANs, 26 s when every IBAN
    is new, since schwifty takes ~10 microseconds per IBAN); the wall time is the larger.
    """
    if helper_processes.CONTEXT is None or (os.cpu_count() or 1) < 2:
        # Two passes in a row: validating inside the reading pass would stop the
        # records at the first violation and leave the rest of the file unchecked.
        messages = pain008_xsd.capped(reader.check_schema(source, pain008, schema))
        return check_records(source, pain008), [pain008_xsd.streamed_violation(message) for message in messages]
    child = pain008_xsd.StreamingChecks(source, pain008)
    try:
        checker = check_records(source, pain008, check_ibans=False)
    except BaseException:
        child.abandon()
        raise
    answer = child.result()
    if answer is None:
        # The child died or could not start (killed by the OOM killer, no forkserver in a
        # frozen app...): do its work here rather than report a file as checked.
        answer = pain008_xsd.streaming_checks(str(source), pain008.name)
    messages, iban_findings = answer
    return checker, [*(pain008_xsd.streamed_violation(message) for message in messages), *iban_findings]
