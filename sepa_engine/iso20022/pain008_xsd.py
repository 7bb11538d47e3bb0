"""The XSD side of checking a pain.008 file: violations as findings with their location.

Up to ``safe_xml.TREE_VALIDATION_MAX_BYTES`` the file is parsed into a tree, so that each violation
comes with its element path and line. Above, a child process on the other core streams
the file through the XSD and checks the IBANs (schwifty's share of the work) while the
parent reads and checks the records: lxml holds the GIL while it parses, so a thread
would not help. Streamed violations name their element but have no path or line.
"""

from __future__ import annotations

import re
from multiprocessing.connection import Connection
from pathlib import Path

from lxml import etree

from sepa_engine import errors, helper_processes
from sepa_engine.iso20022 import pain008_reader as reader
from sepa_engine.iso20022 import safe_xml
from sepa_engine.iso20022.pain008_findings import Code, Finding, Severity
from sepa_engine.iso20022.pain008_rules import identifier_problem
from sepa_engine.iso20022.versions import Pain008Version, load_schema, version

_CHECKED_IBANS = frozenset(
    {"CdtrAcct/Id/IBAN", "DbtrAcct/Id/IBAN", "DrctDbtTx/MndtRltdInf/AmdmntInfDtls/OrgnlDbtrAcct/Id/IBAN"}
)


def streaming_checks(path: str, version_name: str) -> tuple[list[str], list[Finding]]:
    """XSD violations and IBAN findings of a file, in one streaming pass (child side)."""
    pain008 = version(version_name)
    messages: list[str] = []
    findings: list[Finding] = []
    schema = load_schema(pain008.xsd_name) if pain008.xsd_name else None
    for leaf in reader.stream_leaves(path, pain008, frozenset({"IBAN"}), schema=schema, schema_messages=messages):
        if leaf.field in _CHECKED_IBANS and leaf.text is not None:
            problem = identifier_problem("iban", leaf.text, leaf.field)
            if problem is not None:
                findings.append(Finding(Severity.ERROR, problem.code, leaf.location, leaf.field, str(problem)))
    return capped(messages), findings


def _answer_streaming_checks(conn: Connection, path: str, version_name: str) -> None:
    """Child-process entry: sends ``streaming_checks``'s answer, or None if unreadable."""
    helper_processes.in_child()
    answer: tuple[list[str], list[Finding]] | None
    try:
        answer = streaming_checks(path, version_name)
    except errors.SepaEngineError:
        answer = None  # unreadable: the parent reads the same file and reports it itself
    conn.send(answer)
    conn.close()


# --- XSD -----------------------------------------------------------------------------------

_ELEMENT_NAME = re.compile(r"Element '(?:\{[^}]*\})?([^']+)'")
_NAMESPACE_IN_BRACES = re.compile(r"\{[^}]*\}")


def validate_tree(source: Path, schema: etree.XMLSchema) -> list[Finding]:
    tree, entries = safe_xml.validate_tree(source, schema)
    # Capped: locating each violation in a tree costs a walk over its siblings.
    limit = safe_xml.MAX_SCHEMA_FINDINGS
    findings = []
    for entry in entries[:limit]:
        element = _element_at(tree, entry.path)
        location = _readable_path(element) if element is not None else (entry.path or reader.DOCUMENT_PATH)
        findings.append(_schema_finding(entry.message, entry.line, location))
    if len(entries) > limit:
        findings.append(_more_violations(len(entries) - limit))
    return findings


def capped(messages: list[str]) -> list[str]:
    limit = safe_xml.MAX_SCHEMA_FINDINGS
    if len(messages) <= limit:
        return messages
    return [*messages[:limit], _MORE_VIOLATIONS.format(len(messages) - limit)]


_MORE_VIOLATIONS = "{} more violations not listed"


def _more_violations(count: int) -> Finding:
    return _schema_finding(_MORE_VIOLATIONS.format(count), None, reader.DOCUMENT_PATH)


def _element_at(tree: etree._ElementTree, path: str | None) -> etree._Element | None:
    if not path:
        return None
    try:
        found = tree.xpath(path)
    except etree.XPathError:
        return None
    return found[0] if isinstance(found, list) and found and isinstance(found[0], etree._Element) else None


def _readable_path(element: etree._Element) -> str:
    """``/Document/CstmrDrctDbtInitn/PmtInf[1]/DrctDbtTxInf[2]/InstdAmt`` for an element.

    libxml2 reports ``/*/*/*[2]/*[13]/*[2]``; this is the same place in local names, with
    an index where the element has same-named siblings (always for PmtInf and
    DrctDbtTxInf, to match the reader's locations).
    """
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is None:
            steps.append(name)
            break
        same = [sibling for sibling in parent if sibling.tag == node.tag]
        if len(same) > 1 or name in ("PmtInf", "DrctDbtTxInf"):
            name = f"{name}[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


def _schema_finding(message: str, line: int | None, location: str) -> Finding:
    found = _ELEMENT_NAME.search(message)
    element = found.group(1) if found else "Document"
    rule = _NAMESPACE_IN_BRACES.sub("", _ELEMENT_NAME.sub("", message, count=1)).strip(" :.")
    where = f" (line {line})" if line else ""
    return Finding(Severity.ERROR, Code.SCHEMA_VIOLATION, location, element, f"{element} breaks the XSD: {rule}{where}")


def streamed_violation(message: str) -> Finding:
    # libxml2 gives neither line nor path when it validates a stream, and the tree is
    # pruned as it is read: the element's name is in the message, the location is the file.
    return _schema_finding(message, None, reader.DOCUMENT_PATH)


class StreamingChecks:
    def __init__(self, source: Path, pain008: Pain008Version) -> None:
        self._conn, self._process = helper_processes.spawn(
            _answer_streaming_checks, str(source), pain008.name, duplex=False
        )

    def result(self) -> tuple[list[str], list[Finding]] | None:
        """The child's answer; None when it stopped without one or found the file unreadable."""
        try:
            answer: tuple[list[str], list[Finding]] | None = self._conn.recv()
        except (EOFError, OSError):
            answer = None
        finally:
            self._conn.close()
            self._process.join(timeout=30)
        return answer

    def abandon(self) -> None:
        self._conn.close()
        self._process.kill()
        self._process.join(timeout=5)
