"""Parsing files that come from outside without trusting them.

Bank files and operator-supplied files are read through here only. We refuse any document
type declaration outright (no legitimate ISO 20022 file has one, and it is what entity
expansion and external-entity attacks need), never touch the network, keep libxml2's
limits on node size and depth (no ``huge_tree``), and cap the file size. Every failure
becomes ``UnreadableFile`` with the location libxml2 reports, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from lxml import etree

from sepa_engine import errors

# Large enough for a 1,000,000-transaction pain.008 (about 1 GB); configurable per call.
DEFAULT_MAX_BYTES = 2 * 1024**3
_PROLOG_SCAN = 64 * 1024


def _parser_options() -> dict[str, object]:
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


def _refuse_doctype(path: Path) -> None:
    # A DOCTYPE can only stand before the root element, so the head of the file is enough.
    # Reading it raw (not through libxml2) means a hostile DTD is never parsed at all.
    with path.open("rb") as fh:
        head = fh.read(_PROLOG_SCAN)
    if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in head.upper():
        raise errors.UnreadableFile("file", str(path), "declares a DOCTYPE or entities, which are refused")


def check_source(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    p = Path(path)
    _check_size(p, max_bytes)
    _refuse_doctype(p)
    return p


def iterparse(
    path: str | os.PathLike[str],
    events: tuple[str, ...] = ("end",),
    *,
    schema: etree.XMLSchema | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[tuple[str, etree._Element]]:
    """Stream events from a file; the caller clears elements it has finished with."""
    p = check_source(path, max_bytes)
    kwargs = _parser_options()
    if schema is not None:
        kwargs["schema"] = schema
    try:
        context = etree.iterparse(str(p), events=events, **kwargs)
        yield from context
    except etree.XMLSchemaError as exc:
        raise errors.SchemaViolation("file", str(p), _describe(exc)) from None
    except etree.XMLSyntaxError as exc:
        if _is_schema_message(exc):
            raise errors.SchemaViolation("file", str(p), _describe(exc)) from None
        raise errors.UnreadableFile("file", str(p), _describe(exc)) from None


def _is_schema_message(exc: etree.XMLSyntaxError) -> bool:
    entry = exc.error_log.last_error if exc.error_log else None
    return bool(entry is not None and entry.domain_name in ("SCHEMASV", "SCHEMASP"))


def _describe(exc: etree.Error) -> str:
    msg = str(exc).strip() or "is not well-formed XML"
    return msg


def root_namespace(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> str | None:
    """Namespace of the root element, reading no further than its start tag."""
    for _event, element in iterparse(path, ("start",), max_bytes=max_bytes):
        return etree.QName(element).namespace
    return None


def parse_bytes(data: bytes) -> etree._Element:
    """Small in-memory documents (tests, configuration); same refusals as files."""
    if b"<!DOCTYPE" in data[:_PROLOG_SCAN].upper() or b"<!ENTITY" in data[:_PROLOG_SCAN].upper():
        raise errors.UnreadableFile("document", None, "declares a DOCTYPE or entities, which are refused")
    try:
        return etree.fromstring(data, parser=etree.XMLParser(**_parser_options()))
    except etree.XMLSyntaxError as exc:
        raise errors.UnreadableFile("document", None, _describe(exc)) from None
