"""Streaming reader for pain.008 files of any version in ``versions.VERSIONS``.

The versions differ in names we look up in the version table (BIC vs BICFI) and in
elements we do not read, so one code path serves them all: records are built from local
element names relative to their transaction or payment block.

Memory stays flat on a 1,000,000-transaction file (about 1 GB): each ``DrctDbtTxInf`` is
cleared and its earlier siblings deleted as soon as its record is built, and so is each
``PmtInf``. The tree holds the element being read and what the parser has read ahead of
it (one input buffer), never what was already read.

Speed: lxml filters the events in C (``tag=``), so Python only sees the end of the group
header, of each payment block and of each transaction, never the ~25 elements inside a
transaction one by one (that alone would cost about 20 s per million transactions).
XPath strings are not built while reading: records keep their block and transaction
numbers and build their ``location`` only when someone reports on them.

Headers: the payment block's own fields (PmtInfId, NbOfTxs, CtrlSum...) stand before its
transactions, so they are all parsed when the first transaction ends; the block record is
yielded then, before that transaction (or at the block's end when it has none).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from lxml import etree

from sepa_engine import errors
from sepa_engine.iso20022 import safe_xml
from sepa_engine.iso20022.versions import Pain008Version, version_for_namespace

DOCUMENT_PATH = "/Document/CstmrDrctDbtInitn"
GROUP_HEADER_PATH = f"{DOCUMENT_PATH}/GrpHdr"

# Keys of the flattened element dictionaries are paths of local names; repeatable
# elements we report on collect every occurrence in a tuple.
_REPEATABLE = frozenset({"AdrLine", "Ustrd"})
# Repeatable subtrees we only count (SEPA allows one structured remittance block).
_COUNTED = frozenset({"Strd"})
_SKIP_IN_BLOCK = "DrctDbtTxInf"
_T = TypeVar("_T")


def block_path(block: int) -> str:
    return f"{DOCUMENT_PATH}/PmtInf[{block}]"


def transaction_path(block: int, index: int) -> str:
    return f"{block_path(block)}/DrctDbtTxInf[{index}]"


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostalAddress:
    country: str | None = None
    town: str | None = None
    street: str | None = None
    building_number: str | None = None
    postcode: str | None = None
    lines: tuple[str, ...] = ()

    @property
    def is_unstructured(self) -> bool:
        """AdrLine only: what SEPA refuses from November 2026 (town and country missing)."""
        return bool(self.lines) and not (self.town and self.country)

    def one_line(self) -> str:
        parts = [self.street, self.building_number, self.postcode, self.town, *self.lines, self.country]
        return ", ".join(part for part in parts if part)


@dataclass(frozen=True, slots=True)
class GroupHeader:
    message_id: str | None
    created: str | None
    number_of_transactions: str | None
    control_sum: str | None
    initiating_party_name: str | None
    initiating_party_id: str | None

    @property
    def location(self) -> str:
        return GROUP_HEADER_PATH


@dataclass(frozen=True, slots=True)
class PaymentBlock:
    index: int
    payment_info_id: str | None
    payment_method: str | None
    number_of_transactions: str | None
    control_sum: str | None
    service_level: str | None
    local_instrument: str | None
    sequence_type: str | None
    collection_date: str | None
    creditor_name: str | None
    creditor_address: PostalAddress | None
    creditor_iban: str | None
    creditor_bic: str | None
    # FinInstnId/Othr/Id, e.g. NOTPROVIDED when the creditor agent has no BIC.
    creditor_agent_other: str | None
    creditor_id: str | None
    ultimate_creditor_name: str | None

    @property
    def location(self) -> str:
        return block_path(self.index)


@dataclass(frozen=True, slots=True)
class Amendment:
    original_mandate_id: str | None
    original_creditor_name: str | None
    original_creditor_id: str | None
    original_debtor_iban: str | None
    # Othr/Id of the original debtor account or agent: "SMNDA" when the debtor changed bank.
    original_debtor_account_other: str | None
    original_debtor_bic: str | None
    original_debtor_agent_other: str | None


@dataclass(frozen=True)
class Transaction:
    """One DrctDbtTxInf. Not slotted: the reader builds it through ``_frozen`` (see there)."""

    block: int
    index: int
    instruction_id: str | None
    end_to_end_id: str | None
    amount: str | None
    currency: str | None
    mandate_id: str | None
    signature_date: str | None
    amendment_indicator: str | None
    amendment: Amendment | None
    # CdtrSchmeId given on the transaction rather than on its payment block (ABN AMRO does).
    creditor_id: str | None
    debtor_name: str | None
    debtor_address: PostalAddress | None
    debtor_iban: str | None
    debtor_bic: str | None
    debtor_agent_other: str | None
    ultimate_debtor_name: str | None
    ultimate_creditor_name: str | None
    remittance: tuple[str, ...]
    structured_remittance_count: int

    @property
    def location(self) -> str:
        return transaction_path(self.block, self.index)

    @property
    def amended(self) -> bool:
        # xs:boolean: "true" or "1", surrounding whitespace collapsed.
        return (self.amendment_indicator or "").strip() in ("true", "1")


@dataclass(frozen=True, slots=True)
class BlockEnd:
    """The payment block is complete; ``transactions`` is how many the file really holds."""

    block: PaymentBlock
    transactions: int


Record = GroupHeader | PaymentBlock | Transaction | BlockEnd


# --- public entry points -------------------------------------------------------------------


def detect_version(path: str | os.PathLike[str]) -> Pain008Version:
    """The pain.008 version of a file from its root namespace; raises UnknownMessage."""
    return version_for_namespace(safe_xml.root_namespace(path))


def readable_source(path: str | os.PathLike[str]) -> Path:
    """safe_xml's gate, plus the plain file-system failures it lets through as OSError."""
    candidate = Path(path)
    if candidate.exists() and not candidate.is_file():
        raise errors.UnreadableFile("file", str(candidate), "is not a regular file")
    try:
        return safe_xml.check_source(candidate)
    except OSError as exc:
        raise unreadable(candidate, exc) from None


def unreadable(source: Path, exc: OSError) -> errors.UnreadableFile:
    """A file that went away or became unreadable while being read."""
    return errors.UnreadableFile("file", str(source), f"cannot be read: {exc.strerror or exc}")


def read_records(path: str | os.PathLike[str], version: Pain008Version | None = None) -> Iterator[Record]:
    """Yield the group header, then per block its header, its transactions and its end.

    Only well-formedness is checked here (the XSD: ``stream_leaves``/``check_schema``).
    Not well-formed or hostile files raise ``UnreadableFile``, possibly after the records
    read before the fault.
    """
    found = version or detect_version(path)
    return _Reader(found).read(path)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One element picked by name while streaming: where it is and its text."""

    block: int
    # 0 for an element of the payment block's header, else the transaction's number.
    transaction: int
    field: str
    text: str | None

    @property
    def location(self) -> str:
        base = transaction_path(self.block, self.transaction) if self.transaction else block_path(self.block)
        return f"{base}/{self.field}"


def stream_leaves(
    path: str | os.PathLike[str],
    version: Pain008Version,
    names: frozenset[str],
    *,
    schema: etree.XMLSchema | None = None,
    schema_messages: list[str] | None = None,
) -> Iterator[Leaf]:
    """Elements with the given local names inside payment blocks, without building records.

    With ``schema`` the file is validated on the way: libxml2 keeps validating after a
    violation and lxml raises once the document has ended, so every leaf has been yielded
    by then; the messages (without line numbers: libxml2 validates the parser's events,
    not a tree) go to ``schema_messages``. Memory stays flat; ``UnreadableFile`` raises.
    """
    ns = "{" + version.namespace + "}"
    block_tag, transaction_tag = ns + "PmtInf", ns + "DrctDbtTxInf"
    tags = (block_tag, transaction_tag, *(ns + name for name in sorted(names)))
    cut = len(ns)
    block = transaction = 0
    for _event, element in safe_xml.iterparse(path, tag=tags, schema=schema, schema_messages=schema_messages):
        tag = element.tag
        if tag == transaction_tag:
            transaction += 1
            _release(element)
        elif tag == block_tag:
            block, transaction = block + 1, 0
            _release(element)
        else:
            # Ended before its transaction or block did: those are the next ones.
            field, in_transaction = _field_path(element, cut, block_tag, transaction_tag)
            if field is not None:
                yield Leaf(block + 1, transaction + 1 if in_transaction else 0, field, element.text)


def _field_path(element: etree._Element, cut: int, block_tag: str, transaction_tag: str) -> tuple[str | None, bool]:
    steps = [element.tag[cut:]]
    node = element.getparent()
    while node is not None:
        if node.tag == transaction_tag:
            return "/".join(reversed(steps)), True
        if node.tag == block_tag:
            return "/".join(reversed(steps)), False
        steps.append(node.tag[cut:])
        node = node.getparent()
    return None, False  # outside any payment block (group header)


def check_schema(path: str | os.PathLike[str], version: Pain008Version, schema: etree.XMLSchema) -> list[str]:
    """Stream the file through ``schema`` without building records; its violations."""
    messages: list[str] = []
    for _leaf in stream_leaves(path, version, frozenset(), schema=schema, schema_messages=messages):
        pass
    return messages


# --- implementation ------------------------------------------------------------------------


def _flatten(element: etree._Element, cut: int, skip: str | None = None) -> dict[str, Any]:
    """Texts of ``element``'s descendants keyed by their path of local names.

    ``{"Dbtr/Nm": "Jeanne", "Dbtr/PstlAdr/": ..., "Dbtr/PstlAdr/TwnNm": "Lyon", ...}``:
    containers are keyed with a trailing "/" (so presence can be tested and they never
    shadow a leaf of the same name), leaves map to their text, repeatable
    leaves (AdrLine, Ustrd) to a tuple, counted subtrees (Strd) to ``"RmtInf/Strd#": n``.
    Used for the group and block headers; transactions go through ``_ShapeCache``, which
    gives the same dictionary faster. The parent's path is looked up by proxy identity:
    lxml hands back the same proxy for a node while a reference to it is alive.
    """
    out: dict[str, Any] = {}
    prefixes: dict[etree._Element, str] = {element: ""}
    for node in element.iterdescendants():
        parent = node.getparent()
        prefix = prefixes.get(parent)
        if prefix is None:  # inside a skipped or counted subtree
            continue
        name = node.tag[cut:]
        path = prefix + name
        if name in _COUNTED:
            out[path + "#"] = int(out.get(path + "#", 0)) + 1
        elif len(node):
            if name != skip or parent is not element:
                prefixes[node] = path + "/"
                out[path + "/"] = None
        elif name in _REPEATABLE:
            out[path] = (*out.get(path, ()), node.text or "")
        else:
            out[path] = node.text
            if name == "InstdAmt":
                out["InstdAmt@Ccy"] = node.get("Ccy")
    return out


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to turn a transaction of one shape into the ``_flatten`` dictionary.

    ``paths[i]`` names descendant ``i``: leaves by their path, containers by their path
    with a trailing "/", later occurrences of a repeated leaf with "#2", "#3"... so that
    one ``dict(zip(paths, texts))`` does most of the work.
    """

    paths: tuple[str, ...]
    repeats: tuple[tuple[str, tuple[str, ...]], ...]
    counts: tuple[tuple[str, int], ...]
    currency_index: int | None


class _ShapeCache:
    """Flattens transactions through a plan computed once per shape.

    A file's transactions come in a handful of shapes (same elements in the same order),
    so the paths are worked out once per shape, keyed by the tags and child counts of the
    descendants: exact, since the pair determines the tree. This halves the reader's
    Python work per transaction compared with walking parents for every element.
    """

    _MAX_SHAPES = 4096

    def __init__(self, cut: int) -> None:
        self._cut = cut
        self._plans: dict[tuple[tuple[str, ...], tuple[int, ...]], _Plan] = {}

    def flatten(self, element: etree._Element) -> dict[str, Any]:
        nodes = list(element.iterdescendants())
        key = (tuple([node.tag for node in nodes]), tuple([len(node) for node in nodes]))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= self._MAX_SHAPES:
                self._plans.clear()  # a file of ever-new shapes still works, only slower
            plan = self._plans[key] = _plan(element, nodes, self._cut)
        values = dict(zip(plan.paths, [node.text for node in nodes], strict=True))
        for base, keys in plan.repeats:
            values[base] = tuple([values[k] or "" for k in keys])
        for count_key, count in plan.counts:
            values[count_key] = count
        if plan.currency_index is not None:
            values["InstdAmt@Ccy"] = nodes[plan.currency_index].get("Ccy")
        return values


def _plan(element: etree._Element, nodes: list[etree._Element], cut: int) -> _Plan:
    prefixes: dict[etree._Element, str] = {element: ""}
    paths: list[str] = []
    repeats: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    currency_index = None
    for index, node in enumerate(nodes):
        parent_prefix = prefixes.get(node.getparent())
        name = node.tag[cut:]
        if parent_prefix is None:
            # Inside a counted subtree: never read, only needs a key that cannot collide.
            paths.append(f"\0{index}")
            continue
        path = parent_prefix + name
        if name in _COUNTED:
            counts[path + "#"] = counts.get(path + "#", 0) + 1
            paths.append(f"\0{index}")
        elif len(node):
            prefixes[node] = path + "/"
            paths.append(path + "/")
        elif name in _REPEATABLE:
            keys = repeats.setdefault(path, [])
            keys.append(path if not keys else f"{path}#{len(keys) + 1}")
            paths.append(keys[-1])
        else:
            paths.append(path)
            if name == "InstdAmt":
                currency_index = index
    return _Plan(
        paths=tuple(paths),
        repeats=tuple((base, tuple(keys)) for base, keys in repeats.items()),
        counts=tuple(counts.items()),
        currency_index=currency_index,
    )


class _AddressCache:
    """One PostalAddress object per distinct address of the file.

    Debtors share towns and often whole addresses (a creditor's tenants in one building),
    and the checks on an address can then be cached by the caller on equal objects.
    """

    _MAX = 65536

    def __init__(self) -> None:
        self._known: dict[tuple[object, ...], PostalAddress] = {}

    def get(self, values: dict[str, Any], prefix: str) -> PostalAddress | None:
        if prefix not in values:
            return None
        get = values.get
        key = (
            get(prefix + "Ctry"),
            get(prefix + "TwnNm"),
            get(prefix + "StrtNm"),
            get(prefix + "BldgNb"),
            get(prefix + "PstCd"),
            get(prefix + "AdrLine", ()),
        )
        address = self._known.get(key)
        if address is None:
            if len(self._known) >= self._MAX:
                self._known.clear()
            address = self._known[key] = PostalAddress(*key)
        return address


def _frozen(cls: type[_T], fields: dict[str, Any]) -> _T:
    """An instance of the frozen dataclass ``cls`` without running its ``__init__``.

    A frozen dataclass's generated ``__init__`` sets each field through
    ``object.__setattr__``: about 2.5 microseconds for a transaction, 2.5 s on a
    million-transaction file. Filling ``__dict__`` directly gives the same object (the
    test suite checks that every field is set). Only for non-slotted dataclasses whose
    fields are all given.
    """
    record = object.__new__(cls)
    record.__dict__.update(fields)
    return record


_SCHEME_ID = "Id/PrvtId/Othr/Id"


class _Reader:
    def __init__(self, version: Pain008Version) -> None:
        self.version = version
        ns = "{" + version.namespace + "}"
        self._cut = len(ns)
        self._group_tag = ns + "GrpHdr"
        self._block_tag = ns + "PmtInf"
        self._transaction_tag = ns + "DrctDbtTxInf"
        self._bic = version.bic_tag
        self._shapes = _ShapeCache(self._cut)
        self._addresses = _AddressCache()
        self._debtor_bic = f"DbtrAgt/FinInstnId/{self._bic}"

    def read(self, path: str | os.PathLike[str]) -> Iterator[Record]:
        tags = (self._group_tag, self._block_tag, self._transaction_tag)
        block_index = 0
        block: PaymentBlock | None = None
        count = 0
        for _event, element in safe_xml.iterparse(path, tag=tags):
            tag = element.tag
            if tag == self._transaction_tag:
                if block is None:
                    block_index += 1
                    block, count = self._block(element.getparent(), block_index), 0
                    yield block
                count += 1
                yield self._transaction(element, block_index, count)
                _release(element)
            elif tag == self._block_tag:
                if block is None:
                    block_index += 1
                    block = self._block(element, block_index)
                    yield block
                yield BlockEnd(block, count)
                block, count = None, 0
                _release(element)
            elif tag == self._group_tag:
                yield self._group_header(element)
                _release(element)

    def _group_header(self, element: etree._Element) -> GroupHeader:
        get = _flatten(element, self._cut).get
        party_id = get("InitgPty/Id/OrgId/Othr/Id") or get("InitgPty/Id/PrvtId/Othr/Id")
        return GroupHeader(
            message_id=get("MsgId"),
            created=get("CreDtTm"),
            number_of_transactions=get("NbOfTxs"),
            control_sum=get("CtrlSum"),
            initiating_party_name=get("InitgPty/Nm"),
            initiating_party_id=party_id,
        )

    def _block(self, element: etree._Element | None, index: int) -> PaymentBlock:
        values = _flatten(element, self._cut, _SKIP_IN_BLOCK) if element is not None else {}
        get = values.get
        return PaymentBlock(
            index=index,
            payment_info_id=get("PmtInfId"),
            payment_method=get("PmtMtd"),
            number_of_transactions=get("NbOfTxs"),
            control_sum=get("CtrlSum"),
            service_level=get("PmtTpInf/SvcLvl/Cd"),
            local_instrument=get("PmtTpInf/LclInstrm/Cd"),
            sequence_type=get("PmtTpInf/SeqTp"),
            collection_date=_collection_date(values),
            creditor_name=get("Cdtr/Nm"),
            creditor_address=self._addresses.get(values, "Cdtr/PstlAdr/"),
            creditor_iban=get("CdtrAcct/Id/IBAN"),
            creditor_bic=get(f"CdtrAgt/FinInstnId/{self._bic}"),
            creditor_agent_other=get("CdtrAgt/FinInstnId/Othr/Id"),
            creditor_id=get(f"CdtrSchmeId/{_SCHEME_ID}"),
            ultimate_creditor_name=get("UltmtCdtr/Nm"),
        )

    def _transaction(self, element: etree._Element, block: int, index: int) -> Transaction:
        values = self._shapes.flatten(element)
        get = values.get
        mandate = "DrctDbtTx/MndtRltdInf/"
        return _frozen(
            Transaction,
            {
                "block": block,
                "index": index,
                "instruction_id": get("PmtId/InstrId"),
                "end_to_end_id": get("PmtId/EndToEndId"),
                "amount": get("InstdAmt"),
                "currency": get("InstdAmt@Ccy"),
                "mandate_id": get(mandate + "MndtId"),
                "signature_date": get(mandate + "DtOfSgntr"),
                "amendment_indicator": get(mandate + "AmdmntInd"),
                "amendment": self._amendment(values, mandate + "AmdmntInfDtls/"),
                "creditor_id": get(f"DrctDbtTx/CdtrSchmeId/{_SCHEME_ID}"),
                "debtor_name": get("Dbtr/Nm"),
                "debtor_address": self._addresses.get(values, "Dbtr/PstlAdr/"),
                "debtor_iban": get("DbtrAcct/Id/IBAN"),
                "debtor_bic": get(self._debtor_bic),
                "debtor_agent_other": get("DbtrAgt/FinInstnId/Othr/Id"),
                "ultimate_debtor_name": get("UltmtDbtr/Nm"),
                "ultimate_creditor_name": get("UltmtCdtr/Nm"),
                "remittance": get("RmtInf/Ustrd", ()),
                "structured_remittance_count": get("RmtInf/Strd#", 0),
            },
        )

    def _amendment(self, values: dict[str, Any], prefix: str) -> Amendment | None:
        if prefix not in values:
            return None
        get = values.get
        return Amendment(
            original_mandate_id=get(prefix + "OrgnlMndtId"),
            original_creditor_name=get(prefix + "OrgnlCdtrSchmeId/Nm"),
            original_creditor_id=get(prefix + f"OrgnlCdtrSchmeId/{_SCHEME_ID}"),
            original_debtor_iban=get(prefix + "OrgnlDbtrAcct/Id/IBAN"),
            original_debtor_account_other=get(prefix + "OrgnlDbtrAcct/Id/Othr/Id"),
            original_debtor_bic=get(prefix + f"OrgnlDbtrAgt/FinInstnId/{self._bic}"),
            original_debtor_agent_other=get(prefix + "OrgnlDbtrAgt/FinInstnId/Othr/Id"),
        )


def _collection_date(values: dict[str, Any]) -> str | None:
    # Later ISO versions may wrap the date in a choice (Dt / DtTm); read both shapes.
    return values.get("ReqdColltnDt") or values.get("ReqdColltnDt/Dt")


def _release(element: etree._Element) -> None:
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def refuse_doctype(tree: etree._ElementTree, source: Path | str) -> None:
    safe_xml.refuse_declared_dtd(tree, source)


def parse_date(text: str | None) -> dt.date | None:
    """ISODate (or the date part of an ISODateTime) -> date; None when absent or unreadable."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None
