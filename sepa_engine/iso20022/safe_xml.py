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
from collections.abc import Iterator
from pathlib import Path
from lxml import etree

from sepa_engine import errors

# Large enough for a 1,000,000-transaction pain.008 (about 1 GB); configurable per call.
DEFAULT_MAX_BYTES = 2 * 1024**3
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
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[tuple[str, etree._Element]]:
    """Stream events from a file; the caller clears elements it has finished with."""
    p = check_source(path, max_bytes)
    kwargs = parser_options()
    if tag is not None:
        kwargs["tag"] = tag
    if schema is not None:
        kwargs["schema"] = schema
        # lxml's per-thread error log keeps earlier files' violations: start clean.
        etree.clear_error_log()
    try:
        context = etree.iterparse(str(p), events=events, **kwargs)
        yield from context
        if context.root is not None:
            refuse_declared_dtd(context.root.getroottree(), p)
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
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(**parser_options()))
    except etree.XMLSyntaxError as exc:
        raise errors.UnreadableFile("document", None, _describe(exc)) from None
    # Entities were neither loaded nor expanded; a declared DTD is still refused.
    refuse_declared_dtd(root.getroottree(), "document")
    return root
