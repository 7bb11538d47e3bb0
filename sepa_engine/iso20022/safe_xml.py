"""Parsing files that come from outside without trusting them.

Bank files and operator-supplied files are read through here only. We refuse any document
type declaration outright (no legitimate ISO 20022 file has one, and it is what entity
expansion and external-entity attacks need), never touch the network, keep libxml2's
limits on node size and depth (no ``huge_tree``), and cap the file size. Every failure
becomes ``UnreadableFile`` with the location libxml2 reports, never a traceback.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from sepa_engine import errors

# Large enough for a 1,000,000-transaction pain.008 (about 1 GB); configurable per call.
DEFAULT_MAX_BYTES = 2 * 1024**3
# Up to this size a file is validated against its XSD as a whole tree, so that each
# violation has its line (and element); above, it is validated while streaming, in flat
# memory but without lines. An lxml tree of a pain.008 or camt file takes about 6.6 times
# the file's size (measured 2026-12-04: 71 MB for 10.7 MB, 212 MB for 32 MB), so 16 MiB
# bounds a check at about 110 MB, while every pain.008 up to ~10,000 transactions and
# any return file a bank ordinarily sends still gets lines. (Was 50 MB for verify, 200+ MB
# of tree, and 8 MB for return files; one threshold now serves both.)
TREE_VALIDATION_MAX_BYTES = 16 * 1024**2
# A file broken in every transaction would otherwise list a million violations.
MAX_SCHEMA_FINDINGS = 100
_PROLOG_SCAN = 64 * 1024
# Comments before the root element are legal; megabytes of them are not a bank file.
_PROLOG_MAX = 4 * 1024 * 1024


def parser_options() -> dict[str, object]:
    """The hardened options every parse of outside XML uses."""
    return {
        "resolve_entities": False,
        "no_network": True,
        "load_dtd": False,
        "huge_tree": False,
        "remove_comments": True,
        "remove_pis": True,
    }


def _check_size(path: Path, max_bytes: int) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise errors.UnreadableFile("file", str(path), f"cannot be opened: {exc.strerror}") from None
    if size == 0:
        raise errors.UnreadableFile("file", str(path), "is empty")
    if size > max_bytes:
        raise errors.UnreadableFile("file", str(path), f"is larger than the {max_bytes} bytes allowed")


_DTD_REFUSED = "declares a DOCTYPE or entities, which are refused"


def _prolog_text(head: bytes) -> str:
    # ISO 20022 files are UTF-8, but a UTF-16 file with a BOM must not slip a DOCTYPE past
    # a byte-level scan.
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="replace")
    return head.decode("utf-8", errors="replace")


def _refuse_doctype(path: Path) -> None:
    """Scan the whole prolog (declaration, comments, processing instructions) up to the root
    element, however long, without parsing it: a DOCTYPE can only stand there."""
    with path.open("rb") as fh:
        head = fh.read(_PROLOG_SCAN)
        text = _prolog_text(head)
        position = 0
        while True:
            start = text.find("<", position)
            if start == -1 or start + 4 > len(text):
                more = fh.read(_PROLOG_SCAN)
                if not more:
                    return  # no root element: the parser reports the file as truncated
                if len(text) > _PROLOG_MAX:
                    raise errors.UnreadableFile("file", str(path), f"has a prolog longer than {_PROLOG_MAX} characters")
                head += more
                text = _prolog_text(head)
                continue
            following = text[start + 1 : start + 4]
            if following.startswith("?"):
                end = text.find("?>", start)
                closer = 2
            elif following.startswith("!--"):
                end = text.find("-->", start)
                closer = 3
            elif following.startswith("!"):
                raise errors.UnreadableFile("file", str(path), _DTD_REFUSED)
            else:
                return  # the root element starts here
            if end == -1:
                more = fh.read(_PROLOG_SCAN)
                if not more:
                    return
                if len(text) > _PROLOG_MAX:
                    raise errors.UnreadableFile("file", str(path), f"has a prolog longer than {_PROLOG_MAX} characters")
                head += more
                text = _prolog_text(head)
                continue
            position = end + closer


def refuse_declared_dtd(tree: etree._ElementTree, source: str | os.PathLike[str]) -> None:
    """After a parse: a document type the prolog scan could not see (defence in depth)."""
    docinfo = tree.docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise errors.UnreadableFile("file", str(source), _DTD_REFUSED)


def check_source(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    p = Path(path)
    _check_size(p, max_bytes)
    _refuse_doctype(p)
    return p


def iterparse(
    path: str | os.PathLike[str],
    events: tuple[str, ...] = ("end",),
    *,
    tag: str | tuple[str, ...] | None = None,
    schema: etree.XMLSchema | None = None,
    schema_messages: list[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[tuple[str, etree._Element]]:
    """Stream events from a file; the caller clears elements it has finished with.

    The one hardened streaming loop: the gate (``check_source``), the parser options, a
    DTD refused on the first event and at the end (defence in depth behind the prolog
    scan), and every failure mapped to ``UnreadableFile`` or ``SchemaViolation``.

    ``tag`` is lxml's C-level filter: without it Python receives every element and a
    million-transaction file takes about twice as long. With ``schema``, libxml2
    validates while parsing and keeps going after a violation; lxml raises once the
    document has ended, so every element has been yielded by then. With
    ``schema_messages`` too, the violations (one line each, namespaces dropped, no line
    numbers: libxml2 validates the parser's events, not a tree) are appended there and
    the iteration ends normally; without, ``SchemaViolation`` is raised.
    """
    source = check_source(path, max_bytes)
    kwargs = parser_options()
    if tag is not None:
        kwargs["tag"] = tag
    if schema is not None:
        kwargs["schema"] = schema
        # lxml's per-thread error log keeps earlier files' violations: start clean.
        etree.clear_error_log()
    try:
        context = etree.iterparse(str(source), events=events, **kwargs)
        first = True
        for event, element in context:
            if first:
                refuse_declared_dtd(element.getroottree(), source)
                first = False
            yield event, element
        if context.root is not None:
            refuse_declared_dtd(context.root.getroottree(), source)
    except (etree.XMLSchemaError, etree.XMLSyntaxError) as exc:
        entry = exc.error_log.last_error if exc.error_log else None
        is_schema = isinstance(exc, etree.XMLSchemaError) or (entry is not None and entry.domain_name in _SCHEMA_DOMAINS)
        if not is_schema:
            raise unreadable(exc, source) from None
        if schema_messages is None:
            raise errors.SchemaViolation("file", str(source), schema_text(entry.message if entry else str(exc))) from None
        schema_messages.extend(schema_text(e.message) for e in exc.error_log if e.domain_name in _SCHEMA_DOMAINS)
    except OSError as exc:
        raise errors.UnreadableFile("file", str(source), f"cannot be read: {exc.strerror or exc}") from None


_SCHEMA_DOMAINS = ("SCHEMASV", "SCHEMASP")
_NAMESPACE_IN_NAME = re.compile(r"\{(?:urn|https?):[^}]*\}")


def schema_text(message: str) -> str:
    """A libxml2 schema message on one line: ``{urn:iso:...:camt.052.001.02}BIC`` says no
    more than ``BIC`` to a person."""
    return one_line(_NAMESPACE_IN_NAME.sub("", message))


def one_line(text: str) -> str:
    return " ".join(text.split()) or "is not well-formed XML"


def unreadable(exc: etree.Error, source: str | os.PathLike[str]) -> errors.UnreadableFile:
    """A parse failure as ``UnreadableFile``, with libxml2's line and column where known."""
    entry = exc.error_log.last_error if exc.error_log else None
    message = one_line(entry.message if entry is not None else str(exc))
    where = f" (line {entry.line}, column {entry.column})" if entry is not None and entry.line else ""
    return errors.UnreadableFile("file", str(source), f"is not well-formed XML: {message}{where}")


def fits_in_tree(source: Path) -> bool:
    """Whether ``validate_tree`` is used for this file (else ``iterparse(schema=...)``)."""
    return source.stat().st_size <= TREE_VALIDATION_MAX_BYTES


def validate_tree(source: str | os.PathLike[str], schema: etree.XMLSchema) -> tuple[etree._ElementTree, list[etree._LogEntry]]:
    """The file parsed whole (same refusals as ``iterparse``) and its XSD violations,
    each with its line and XPath; empty when valid. Callers check ``fits_in_tree`` first."""
    source = Path(source)
    try:
        tree = etree.parse(str(source), etree.XMLParser(**parser_options()))
    except etree.XMLSyntaxError as exc:
        raise unreadable(exc, source) from None
    refuse_declared_dtd(tree, source)
    try:
        if schema.validate(tree):
            return tree, []
    except etree.Error as exc:
        raise errors.UnreadableFile("file", str(source), f"cannot be validated: {exc}") from None
    return tree, list(schema.error_log)


def root_namespace(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> str | None:
    """Namespace of the root element, reading no further than its start tag."""
    for _event, element in iterparse(path, ("start",), max_bytes=max_bytes):
        # Read from the tag text, not etree.QName: a namespace holding "}" (well-formed XML)
        # made QName raise ValueError, a traceback instead of "unknown message"
        # (tests/testdata/crashers/returns/pain.002-brace-in-namespace.xml).
        tag = element.tag
        if not isinstance(tag, str) or not tag.startswith("{"):
            return None
        return tag[1:].rpartition("}")[0]
    return None


def parse_bytes(data: bytes) -> etree._Element:
    """Small in-memory documents (tests, configuration); same refusals as files."""
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(**parser_options()))
    except etree.XMLSyntaxError as exc:
        raise errors.UnreadableFile("document", None, str(exc).strip() or "is not well-formed XML") from None
    # Entities were neither loaded nor expanded; a declared DTD is still refused.
    refuse_declared_dtd(root.getroottree(), "document")
    return root
