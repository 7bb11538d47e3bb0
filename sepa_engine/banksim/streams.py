"""Spools and the validating sink: how the answers are written in constant memory.

Both answers carry totals before the details they add up (the pain.002 group status
before its blocks, a camt.054 booking's amount before its transactions), so details are
first spooled to unnamed temporary files, per block as byte ranges, and the documents
are assembled afterwards: header, then each block's header followed by a copy of its
range. Only per-block totals stay in memory.

Every byte of an answer also goes through lxml's validating pull parser when the caller
has the official XSDs, as our pain.008 writer does with its read-back: the parser's tree
is pruned as it grows, so validation costs no memory either. The XSDs are not shipped
with the project (they are not ours to copy), so the caller names the folder holding them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from sepa_engine import errors
from sepa_engine.iso20022 import xsd_schemas
from sepa_engine.iso20022.readback import schema_error

# The status report's XSD depends on the pain.008 answered (pain002.for_pain008).
PAIN002_XSD = "pain.002.001.03.xsd"
PAIN002_2019_XSD = "pain.002.001.10.xsd"
CAMT054_XSD = "camt.054.001.02.xsd"

_FLUSH_AT = 256 * 1024
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Segment:
    """A byte range of a spool."""

    start: int
    end: int


class Spool:
    """An unnamed temporary file (gone when closed, owner-only while it exists)."""

    def __init__(self, folder: str | os.PathLike[str] | None) -> None:
        # Closed by close(): the spool outlives any one with-block of its creator.
        self._file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115
        self._pending: list[str] = []
        self._pending_size = 0

    def write(self, text: str) -> None:
        self._pending.append(text)
        self._pending_size += len(text)
        if self._pending_size >= _FLUSH_AT:
            self._flush()

    def offset(self) -> int:
        # Flushed first, so that a block boundary is an exact byte offset.
        self._flush()
        return self._file.tell()

    def copy(self, segment: Segment, sink: ValidatingSink) -> None:
        self._flush()
        end_of_data = self._file.tell()
        self._file.seek(segment.start)
        remaining = segment.end - segment.start
        while remaining:
            chunk = self._file.read(min(_COPY_CHUNK, remaining))
            if not chunk:
                raise errors.CollectionError("spool", None, "ended before its block was complete")
            remaining -= len(chunk)
            sink.emit(chunk)
        self._file.seek(end_of_data)

    def close(self) -> None:
        self._file.close()

    def _flush(self) -> None:
        if self._pending:
            self._file.write("".join(self._pending).encode("utf-8"))
            self._pending, self._pending_size = [], 0


@dataclass(frozen=True, slots=True)
class AnswerSchemas:
    # By XSD file name: pain.002.001.03.xsd and, when the folder has it, pain.002.001.10.xsd.
    pain002_by_name: dict[str, etree.XMLSchema]
    camt054: etree.XMLSchema
    folder: Path

    @property
    def pain002(self) -> etree.XMLSchema:
        """The pain.002.001.03 schema (the DK subset), the one every folder must hold."""
        return self.pain002_by_name[PAIN002_XSD]

    def status_report(self, xsd: str) -> etree.XMLSchema:
        schema = self.pain002_by_name.get(xsd)
        if schema is None:
            raise errors.ConfigurationError("xsd_dir", str(self.folder), f"has no {xsd}")
        return schema


def load_schemas(folder: str | os.PathLike[str]) -> AnswerSchemas:
    """The official pain.002.001.03 and camt.054.001.02 XSDs from ``folder``, and the
    pain.002.001.10 XSD when it is there (needed to answer pain.008.001.08 files)."""
    where = Path(folder)
    pain002 = {PAIN002_XSD: xsd_schemas.from_folder(where, PAIN002_XSD)}
    if (where / PAIN002_2019_XSD).is_file():
        pain002[PAIN002_2019_XSD] = xsd_schemas.from_folder(where, PAIN002_2019_XSD)
    return AnswerSchemas(pain002, xsd_schemas.from_folder(where, CAMT054_XSD), where)


class ValidatingSink:
    """Bytes to the output file and, with a schema, through a validating pull parser.

    ``pruned`` are the repeated elements (transactions, bookings) cut from the parser's
    tree once they have ended; libxml2 validates the parse events, not the tree.
    """

    def __init__(self, out: BinaryIO, schema: etree.XMLSchema | None, namespace: str, pruned: tuple[str, ...]) -> None:
        self._out = out
        self._namespace = "{" + namespace + "}"
        self._parser = (
            etree.XMLPullParser(
                events=("end",),
                tag=tuple(self._namespace + name for name in pruned),
                schema=schema,
                resolve_entities=False,
                no_network=True,
                collect_ids=False,
            )
            if schema is not None
            else None
        )
        self.size = 0

    def emit(self, data: bytes) -> None:
        self._out.write(data)
        self.size += len(data)
        if self._parser is not None:
            try:
                self._parser.feed(data)
            except etree.XMLSyntaxError as exc:
                raise schema_error(exc, self._namespace) from None
            self._prune()

    def text(self, text: str) -> None:
        self.emit(text.encode("utf-8"))

    def close(self) -> None:
        if self._parser is None:
            return
        try:
            self._parser.close()
        except etree.XMLSyntaxError as exc:
            raise schema_error(exc, self._namespace) from None

    def _prune(self) -> None:
        assert self._parser is not None
        for _event, element in self._parser.read_events():
            element.clear()
            parent = element.getparent()
            if parent is not None:
                while element.getprevious() is not None:
                    del parent[0]
