"""What the pain.002 and camt readers share: the message table, the XSD check, the
hardened stream, flattening an element into paths, and reading amounts and dates.

Messages are recognised from the root namespace only, through one table; an unknown
message or version is refused with its name.

XSDs: the ISO schemas live in ``../shared/iso20022/xsd`` next to the repository and are
not copied into it (their licences differ). When that folder holds the message's XSD the
file is checked against it, as a tree up to ``safe_xml.TREE_VALIDATION_MAX_BYTES`` (each deviation
then has its line) and while streaming above (no line: libxml2 validates the parser's
events). When it does not, a warning says the XSD was not checked. Deviations are
warnings; ``strict`` turns them into a refusal.

Parsing goes through ``safe_xml.iterparse``, the one hardened streaming loop (size cap,
DOCTYPE and entity refusal, hardened parser options, lxml's C-level ``tag=`` filter).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lxml import etree

from sepa_engine import errors
from sepa_engine.domain import money
from sepa_engine.iso20022 import safe_xml, xsd_schemas
from sepa_engine.iso20022.returns import FindingCode, ReadResult, ReturnRecord

ISO_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
# Swiss Payment Standards 2009-2018 publish their variants under SIX's own namespace.
SIX_PREFIX = "http://www.six-interbank-clearing.com/de/"


NOT_PROVIDED = "NOTPROVIDED"


@dataclass(frozen=True, slots=True)
class MessageType:
    name: str  # "camt.053.001.02", "pain.002.001.03.ch.02"
    family: str  # "pain.002", "camt.052", "camt.053", "camt.054"
    namespace: str

    @property
    def xsd_name(self) -> str:
        return f"{self.name}.xsd"


def _message_table() -> dict[str, MessageType]:
    found: list[MessageType] = []
    # .001.03 (ISO 2009, the EPC and most banks), .002.03 (the German DK variant of 2009,
    # same element names), .001.10 (ISO 2019).
    for version in ("001.03", "002.03", "001.10"):
        name = f"pain.002.{version}"
        found.append(MessageType(name, "pain.002", ISO_PREFIX + name))
    found.append(
        MessageType("pain.002.001.03.ch.02", "pain.002", SIX_PREFIX + "pain.002.001.03.ch.02.xsd")
    )
    for family in ("camt.052", "camt.053", "camt.054"):
        for minor in range(2, 9):
            name = f"{family}.001.{minor:02d}"
            found.append(MessageType(name, family, ISO_PREFIX + name))
    return {message.namespace: message for message in found}


MESSAGES: dict[str, MessageType] = _message_table()
SUPPORTED = "pain.002 (.001.03, .002.03, .001.10, .001.03.ch.02), camt.052/053/054 (.001.02 to .001.08)"


def message_for_namespace(namespace: str | None) -> MessageType:
    found = MESSAGES.get(namespace or "")
    if found is not None:
        return found
    raise errors.UnknownMessage("message", _message_name(namespace), f"is not a message we read (we read {SUPPORTED})")


def _message_name(namespace: str | None) -> str:
    if not namespace:
        return "(no namespace)"
    tail = re.split(r"[:/]", namespace.rstrip("/"))[-1]
    return tail.removesuffix(".xsd") or namespace


def detect(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> MessageType:
    """The message of a file from its root namespace, reading no further than the root tag."""
    try:
        namespace = safe_xml.root_namespace(path, max_bytes=max_bytes or safe_xml.DEFAULT_MAX_BYTES)
    except OSError as exc:
        raise errors.UnreadableFile("file", str(path), f"cannot be read: {exc.strerror or exc}") from None
    return message_for_namespace(namespace)


def expect_family(message: MessageType, families: tuple[str, ...]) -> None:
    if message.family not in families:
        raise errors.UnknownMessage("message", message.name, f"is not a {' or '.join(families)} message")


# --- the XSD --------------------------------------------------------------------------------


def default_xsd_dir() -> Path:
    """``../shared/iso20022/xsd`` seen from the repository root."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "iso20022" / "xsd"


def locate_schema(message: MessageType, xsd_dir: str | os.PathLike[str] | None) -> tuple[etree.XMLSchema | None, str]:
    """The parsed XSD (through the one loader), or None and why it could not be used."""
    folder = Path(xsd_dir) if xsd_dir is not None else default_xsd_dir()
    if not folder.is_dir():
        return None, f"the XSD was not checked: {folder} is not present"
    if not (folder / message.xsd_name).is_file():
        return None, f"the XSD was not checked: no {message.xsd_name} in {folder}"
    try:
        return xsd_schemas.from_folder(folder, message.xsd_name), ""
    except errors.ConfigurationError as exc:
        return None, f"the XSD was not checked: {folder / message.xsd_name} cannot be loaded ({exc.rule})"


def _tree_violations(source: Path, schema: etree.XMLSchema) -> list[tuple[int | None, str]]:
    _tree, entries = safe_xml.validate_tree(source, schema)
    return [(entry.line or None, safe_xml.schema_text(entry.message)) for entry in entries]


# --- streaming ------------------------------------------------------------------------------


def release(element: etree._Element) -> None:
    """Free what was read: the element's content and its earlier siblings."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


class Reader(Protocol):
    tags: tuple[str, ...]

    def handle(self, element: etree._Element) -> Iterable[ReturnRecord]: ...

    def finish(self) -> Iterable[ReturnRecord]: ...


def open_result(
    path: str | os.PathLike[str],
    message: MessageType,
    make_reader: Callable[[ReadResult], Reader],
    *,
    strict: bool,
    xsd_dir: str | os.PathLike[str] | None,
    max_bytes: int | None,
) -> ReadResult:
    """A ``ReadResult`` whose records come from ``make_reader``'s reader while streaming.

    The file passes safe_xml's gate here, before anything is returned, so a file too
    large or declaring a DOCTYPE is refused at once.
    """
    try:
        source = safe_xml.check_source(path, max_bytes or safe_xml.DEFAULT_MAX_BYTES)
    except OSError as exc:
        raise errors.UnreadableFile("file", str(path), f"cannot be read: {exc.strerror or exc}") from None
    result = ReadResult(source, message.name)
    records = _records(
        result, source, message, make_reader(result), strict=strict, xsd_dir=xsd_dir,
        max_bytes=max_bytes or safe_xml.DEFAULT_MAX_BYTES,
    )  # fmt: skip
    result.bind(records)
    return result


def _records(
    result: ReadResult,
    source: Path,
    message: MessageType,
    reader: Reader,
    *,
    strict: bool,
    xsd_dir: str | os.PathLike[str] | None,
    max_bytes: int,
) -> Iterator[ReturnRecord]:
    schema, why_not = locate_schema(message, xsd_dir)
    streamed_schema = None
    if schema is None:
        result.warn(FindingCode.SCHEMA_NOT_CHECKED, why_not)
    elif safe_xml.fits_in_tree(source):
        violations = _tree_violations(source, schema)
        _schema_findings(result, message, [(f"line {line}" if line else None, text) for line, text in violations])
        if strict:
            _refuse_deviations(result, source)
    else:
        streamed_schema = schema
    schema_messages: list[str] = []
    for _event, element in safe_xml.iterparse(
        source, tag=reader.tags, schema=streamed_schema, schema_messages=schema_messages, max_bytes=max_bytes
    ):
        for record in reader.handle(element):
            result.records_read += 1
            yield record
    for record in reader.finish():
        result.records_read += 1
        yield record
    _schema_findings(result, message, [(None, text) for text in schema_messages])
    result.done = True
    if strict:
        _refuse_deviations(result, source)


def _schema_findings(result: ReadResult, message: MessageType, found: list[tuple[str | None, str]]) -> None:
    limit = safe_xml.MAX_SCHEMA_FINDINGS
    for location, text in found[:limit]:
        result.warn(FindingCode.SCHEMA_VIOLATION, f"breaks the {message.name} XSD: {text}", location)
    if len(found) > limit:
        result.warn(
            FindingCode.SCHEMA_VIOLATION,
            f"and {len(found) - limit} more deviations from the {message.name} XSD",
        )


def _refuse_deviations(result: ReadResult, source: Path) -> None:
    deviations = result.deviations
    if not deviations:
        return
    shown = "; ".join(str(finding) for finding in deviations[:3])
    more = f"; and {len(deviations) - 3} more" if len(deviations) > 3 else ""
    raise errors.SchemaViolation(
        "file", str(source), f"is refused in strict mode: {len(deviations)} deviation(s): {shown}{more}"
    )


# --- element contents -----------------------------------------------------------------------


class Values:
    """Texts of an element's descendants keyed by their path of local names.

    ``{"Refs/EndToEndId": "E2E1", "RtrInf/": None, "Amt": "12.00", "Amt@Ccy": "EUR"}``:
    containers are keyed with a trailing "/" so that their presence can be tested;
    the ``Ccy`` attribute of amounts is kept as ``path@Ccy``. A path met more than once
    (repeated Chrgs, StsRsnInf, AddtlInf lines) keeps every occurrence for ``all``.
    """

    __slots__ = ("extra", "first")

    def __init__(self) -> None:
        self.first: dict[str, str | None] = {}
        self.extra: dict[str, list[str | None]] = {}

    def get(self, *paths: str) -> str | None:
        """The stripped text of the first of ``paths`` that has some."""
        for path in paths:
            text = self.first.get(path)
            if text is not None:
                text = text.strip()
                if text:
                    return text
        return None

    def has(self, path: str) -> bool:
        return path in self.first

    def all(self, path: str) -> list[str | None]:
        if path not in self.first:
            return []
        return [self.first[path], *self.extra.get(path, ())]

    def add(self, key: str, text: str | None) -> None:
        if key in self.first:
            self.extra.setdefault(key, []).append(text)
        else:
            self.first[key] = text


def flatten(element: etree._Element, cut: int, skip: frozenset[str] = frozenset()) -> Values:
    """``Values`` of ``element``'s descendants; children named in ``skip`` are left out
    with their subtree (the parts being streamed, which are not complete yet)."""
    values = Values()
    first, extra = values.first, values.extra
    # Parent paths looked up by proxy identity: lxml hands back the same proxy for a node
    # while a reference to it is alive, and this dict holds one.
    prefixes: dict[etree._Element, str] = {element: ""}
    for node in element.iterdescendants():
        parent = node.getparent()
        prefix = prefixes.get(parent)
        if prefix is None:
            continue
        name = node.tag[cut:]
        if parent is element and name in skip:
            continue
        path = prefix + name
        if len(node):
            key = prefixes[node] = path + "/"
            text = None
        else:
            key, text = path, node.text
        # Values.add inlined: this loop runs for every element of every transaction.
        if key in first:
            extra.setdefault(key, []).append(text)
        else:
            first[key] = text
        if name.endswith("Amt"):
            values.add(path + "@Ccy", node.get("Ccy"))
    return values


class ShapeCache:
    """``flatten`` for the many elements of one kind (transactions), faster.

    A file's transactions come in a handful of shapes (same elements in the same order),
    so their paths are worked out once per shape, keyed by the tags and child counts of
    the descendants (exact: the pair determines the tree), and each transaction then
    costs one ``dict(zip(...))``. About three times faster than ``flatten``, which
    matters on a 100,000-transaction file.
    """

    _MAX_SHAPES = 4096

    def __init__(self, cut: int) -> None:
        self._cut = cut
        self._plans: dict[tuple[tuple[object, ...], tuple[int, ...]], _Plan] = {}

    def flatten(self, element: etree._Element, skip: frozenset[str] = frozenset()) -> Values:
        """``flatten(element, cut, skip)``: children named in ``skip`` are left out with
        their subtree, which is then never walked (a camt entry's own fields are read
        while its details stream: walking the details too made the entry's ``flatten``
        the reader's costliest call, 12 of 51 s under cProfile for 100,000 returns)."""
        if skip:
            cut = self._cut
            nodes: list[etree._Element] = []
            for child in element:
                if child.tag[cut:] not in skip:
                    nodes.append(child)
                    nodes.extend(child.iterdescendants())
        else:
            nodes = list(element.iterdescendants())
        key = (tuple([node.tag for node in nodes]), tuple([len(node) for node in nodes]))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= self._MAX_SHAPES:
                self._plans.clear()  # a file of ever-new shapes still works, only slower
            plan = self._plans[key] = _plan(element, nodes, self._cut)
        texts = [node.text for node in nodes]
        values = Values()
        values.first = dict(zip(plan.keys, texts, strict=True))
        for path, indices in plan.repeats:
            values.extra[path] = [texts[i] for i in indices]
        for path, index in plan.currencies:
            values.add(path, nodes[index].get("Ccy"))
        return values


@dataclass(frozen=True, slots=True)
class _Plan:
    # One key per descendant; later occurrences of a path get a key nobody asks for
    # ("\0" + index) and are listed in ``repeats`` instead.
    keys: tuple[str, ...]
    repeats: tuple[tuple[str, tuple[int, ...]], ...]
    currencies: tuple[tuple[str, int], ...]


def _plan(element: etree._Element, nodes: list[etree._Element], cut: int) -> _Plan:
    prefixes: dict[etree._Element, str] = {element: ""}
    keys: list[str] = []
    seen: set[str] = set()
    repeats: dict[str, list[int]] = {}
    currencies: list[tuple[str, int]] = []
    for index, node in enumerate(nodes):
        name = node.tag[cut:]
        path = prefixes[node.getparent()] + name
        key = path
        if len(node):
            key = prefixes[node] = path + "/"
        if key in seen:
            repeats.setdefault(key, []).append(index)
            keys.append(f"\0{index}")
        else:
            seen.add(key)
            keys.append(key)
        if name.endswith("Amt"):
            currencies.append((path + "@Ccy", index))
    return _Plan(tuple(keys), tuple((k, tuple(v)) for k, v in repeats.items()), tuple(currencies))


def clean_id(text: str | None) -> str | None:
    """An identifier as we match on it: None for the EPC placeholder NOTPROVIDED."""
    if text is None or text.upper() == NOT_PROVIDED:
        return None
    return text


def parse_count(text: str | None) -> int | None:
    """Max15NumericText, zero padding allowed (CaixaBank sends 000000000000005)."""
    if text is None:
        return None
    stripped = text.strip()
    return int(stripped) if stripped.isascii() and stripped.isdigit() and len(stripped) <= 15 else None


def parse_day(text: str) -> dt.date:
    """ISODate, or the date part of an ISODateTime; ValueError otherwise."""
    return dt.date.fromisoformat(text.strip()[:10])


def is_true(text: str | None) -> bool | None:
    if text is None:
        return None
    return text.strip() in ("true", "1")


class FieldReader:
    """Reads amounts and dates of one element, reporting what cannot be read to the result."""

    __slots__ = ("result",)

    def __init__(self, result: ReadResult) -> None:
        self.result = result

    def cents(self, values: Values, path: str, location: str) -> int | None:
        text = values.get(path)
        if text is None:
            return None
        try:
            return money.read_cents(text, path)
        except errors.InvalidAmount as problem:
            self.result.warn(
                FindingCode.INVALID_AMOUNT, f"{path.rstrip('/')} {text!r} {problem.rule}", f"{location}/{path}"
            )
            return None

    def total(self, values: Values, paths: tuple[str, ...], location: str) -> int | None:
        """The sum of every occurrence of ``paths`` (repeated charges); None when none."""
        found = False
        total = 0
        for path in paths:
            for text in values.all(path):
                if text is None or not text.strip():
                    continue
                found = True
                try:
                    total += money.read_cents(text, path)
                except errors.InvalidAmount as problem:
                    self.result.warn(
                        FindingCode.INVALID_AMOUNT, f"{path} {text.strip()!r} {problem.rule}", f"{location}/{path}"
                    )
        return total if found else None

    def day(self, values: Values, paths: tuple[str, ...], location: str) -> dt.date | None:
        for path in paths:
            text = values.get(path)
            if text is None:
                continue
            try:
                return parse_day(text)
            except ValueError:
                self.result.warn(FindingCode.INVALID_DATE, f"{path} {text!r} is not a date", f"{location}/{path}")
                return None
        return None


def joined(values: Values, path: str) -> str | None:
    """Repeated free-text lines (AddtlInf) as one line."""
    if path not in values.first:
        return None
    lines = [" ".join(text.split()) for text in values.all(path) if text and text.strip()]
    return " ".join(lines) or None
