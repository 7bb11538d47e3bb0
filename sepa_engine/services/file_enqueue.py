"""Debit requests from a file (JSON Lines or CSV), for upstream systems that prefer files
to HTTP: ``sepa-engine enqueue FILE``.

* One request per line (JSONL) or row (CSV, with a header naming the columns), with the
  fields of ``schemas/debit-request.schema.json``, checked by its model
  (``inputs.DebitRequestRecord``). ``creditor`` may be left out when the
  command names one (``--creditor``); a line naming another creditor is bad.
* Every line carries its ``idempotency_key`` (the schema requires it). It is the request's
  key in the ledger, so re-running the same file changes nothing, and a line edited
  without a new key is refused as a conflict instead of collecting twice. No key is
  derived from positions or file contents: a file re-cut or re-ordered upstream would
  otherwise enqueue again.
* Every bad line is reported with its number, field and rule: the model's problems, then
  the engine's (unknown mandate, key reused with other content...). By default nothing
  is applied when any line is bad; with ``skip_bad`` the good lines are applied and the
  bad ones are returned for a rejects file.

Lines are applied per creditor in chunks through ``batch_enqueue`` (a few round trips per
thousand). A chunk the engine refuses is replayed line by line in savepoints, to name
each bad line and keep the good ones. The caller owns the transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from sepa_engine import errors, json_input
from sepa_engine.clock import Clock
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.domain import text as text_rules
from sepa_engine.services import batch_enqueue, input_errors, registry
from sepa_engine.services.batch_enqueue import EnqueueItem
from sepa_engine.services.inputs import DebitRequestInput, DebitRequestRecord, split_record

FORMATS = ("jsonl", "csv")
CHUNK = 1_000
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    field: str
    rule: str
    code: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.rule}"

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, "field": self.field, "rule": self.rule, "code": self.code}


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    raw: str
    record: dict[str, Any] | None


@dataclass(slots=True)
class FileReport:
    format: str
    lines: int = 0
    created: int = 0
    unchanged: int = 0
    bad: list[BadLine] = field(default_factory=list)
    # Lines stored although the collection run will refuse them (registry's problems).
    problems: list[dict[str, object]] = field(default_factory=list)
    rejected: list[Line] = field(default_factory=list)
    header: str | None = None

    @property
    def applied(self) -> int:
        return self.created + self.unchanged

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format, "lines": self.lines, "created": self.created, "unchanged": self.unchanged,
            "bad_lines": len({b.line for b in self.bad}), "errors": [b.to_dict() for b in self.bad],
            "problems": self.problems,
        }

    def rejects_text(self) -> str:
        """The bad lines as they were; CSV cells that a spreadsheet would run as a formula
        (``=...``) are made inert (``domain/text.csv_cell``), since a person opens this file."""
        if self.format != "csv":
            return "".join(line.raw if line.raw.endswith("\n") else line.raw + "\n" for line in self.rejected)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for raw in [self.header or "", *(line.raw for line in self.rejected)]:
            for row in csv.reader(io.StringIO(raw, newline="")):
                writer.writerow([text_rules.csv_cell(cell) for cell in row])
        return out.getvalue()


class FileRejected(errors.SepaEngineError):
    code = "file_rejected"
    problem = "has bad lines: nothing was enqueued"
    report: FileReport


def detect_format(path: Path, chosen: str | None) -> str:
    if chosen is not None:
        if chosen not in FORMATS:
            raise errors.InvalidFormat("--format", chosen, "must be jsonl or csv")
        return chosen
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise errors.InvalidFormat("--format", None, f"is required: {path.name} is neither .jsonl nor .csv")


def read_lines(text: str, fmt: str) -> tuple[list[Line], list[BadLine], str | None]:
    if fmt == "jsonl":
        return _jsonl(text), [], None
    return _csv(text)


def _physical_lines(text: str) -> list[str]:
    """The file's lines as an editor and the csv module count them (LF, CR LF or CR).

    ``str.splitlines`` also breaks at U+2028, U+0085, form feed and others, which may stand
    inside a JSON string or a CSV cell: line numbers in reports and the rejects file then
    no longer matched the file."""
    return io.StringIO(text, newline="").readlines()


def _jsonl(text: str) -> list[Line]:
    lines: list[Line] = []
    for number, raw in enumerate(_physical_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            record = json_input.loads(raw, "line")
        except errors.InvalidFormat as exc:
            lines.append(Line(number, raw, {"__error__": exc.rule}))
            continue
        lines.append(Line(number, raw, record if isinstance(record, dict) else {"__error__": "must be a JSON object"}))
    return lines


def _csv(text: str) -> tuple[list[Line], list[BadLine], str | None]:
    physical = _physical_lines(text)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = _rows(reader)
    header = next(rows, None)
    if header is None:
        return [], [], None
    names = [name.strip() for name in header]
    header_text = "".join(physical[: reader.line_num])
    bad: list[BadLine] = []
    lines: list[Line] = []
    start = reader.line_num
    for row in rows:
        number = start + 1
        raw = "".join(physical[start: reader.line_num])
        start = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            bad.append(BadLine(number, "row", f"has {len(row)} cells for {len(names)} columns", "invalid_format"))
            lines.append(Line(number, raw, None))
            continue
        record: dict[str, Any] = {}
        for name, cell in zip(names, row, strict=True):
            if cell == "":
                continue  # an empty cell is an absent field
            if name in ("final", "on_account"):
                record[name] = _BOOLEANS.get(cell.strip().lower(), cell)
            elif name == "invoices":
                # A cell holds a list as numbers separated by ";" (README, "Requests that pay invoices").
                record[name] = [number.strip() for number in cell.split(";")]
            else:
                record[name] = cell
        lines.append(Line(number, raw, record))
    return lines, bad, header_text


def _rows(reader: Any) -> Iterator[list[str]]:
    """The reader's rows; a row it cannot read (a cell over the csv module's size limit) stops
    the whole file, since every row after it may be a part of that cell."""
    start = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = start + 1
            if "field larger than field limit" in str(exc):
                rule = f"has a cell longer than {csv.field_size_limit():,} characters, the most a CSV cell may hold"
            else:
                rule = f"is not readable CSV: {exc}"
            raise errors.InvalidFormat("file", None, f"line {line}: {rule}; nothing was enqueued") from None
        start = reader.line_num
        yield row


def enqueue_file(
    session: Session, path: str | Path, *, fmt: str | None = None, creditor: str | None = None,
    skip_bad: bool = False, clock: Clock,
) -> FileReport:
    """Apply the file's lines; raise ``FileRejected`` (after trying every line) when a line
    is bad and ``skip_bad`` is false: the caller's transaction must then roll back."""
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except OSError as exc:
        raise errors.NotFound("file", str(file), f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise errors.InvalidFormat("file", str(file), "is not UTF-8 text") from None
    chosen = detect_format(file, fmt)
    lines, bad, header = read_lines(text, chosen)
    report = FileReport(chosen, lines=len(lines), bad=bad, header=header)
    by_creditor: dict[str, list[tuple[Line, EnqueueItem]]] = {}
    for line in lines:
        if line.record is None:
            continue
        if "__error__" in line.record:
            report.bad.append(BadLine(line.number, "line", str(line.record["__error__"]), "invalid_format"))
            continue
        record = dict(line.record)
        if creditor is not None:
            named = record.setdefault("creditor", creditor)
            if isinstance(named, str) and text_rules.problem(named) is None and named != creditor:
                report.bad.append(BadLine(line.number, "creditor", f"{named!r} is not the creditor given ({creditor})", "invalid_format"))
                continue
        try:
            checked = DebitRequestRecord.model_validate(record)
        except ValidationError as exc:
            report.bad.extend(
                BadLine(line.number, "line" if p.field == "document" else p.field, p.sentence(), p.code)
                for p in input_errors.problems(exc)
            )
            continue
        outside, data = split_record(checked, DebitRequestInput)
        key, code = outside["idempotency_key"], outside["creditor"]
        by_creditor.setdefault(code, []).append((line, EnqueueItem(key, data)))
    for code, items in by_creditor.items():
        for chunk in _chunks(items, CHUNK):
            _apply_chunk(session, code, chunk, report, clock)
    report.bad.sort(key=lambda b: (b.line, b.field))
    bad_numbers = {b.line for b in report.bad}
    report.rejected = [line for line in lines if line.number in bad_numbers]
    if report.bad and not skip_bad:
        failure = FileRejected(
            "file", str(file), f"has {len(bad_numbers)} bad line(s) of {report.lines}: nothing was enqueued"
        )
        failure.report = report
        raise failure
    return report


def _apply_chunk(
    session: Session, code: str, chunk: list[tuple[Line, EnqueueItem]], report: FileReport, clock: Clock
) -> None:
    keys = [item.idempotency_key for _, item in chunk]
    try:
        with session.begin_nested():
            creditor_id = registry._creditor(session, code).id
            existing = set(registry_repo.requests_by_idempotency_keys(session, creditor_id, keys))
            result = batch_enqueue.enqueue_requests(session, code, [item for _, item in chunk], clock=clock)
    except errors.SepaEngineError:
        # Name every bad line of the chunk: replay it line by line, each in a savepoint.
        for line, item in chunk:
            try:
                with session.begin_nested():
                    single = registry.enqueue_request(session, code, item.data, idempotency_key=item.idempotency_key, clock=clock)
            except errors.SepaEngineError as exc:
                report.bad.append(_engine_bad(line.number, exc))
                continue
            _count(report, line, single)
        return
    # batch_enqueue answers in line order: every line whose key was already stored, and the
    # first line of each new key; a line repeating an earlier new one is written once.
    results = iter(result.results)
    firsts: set[str] = set()
    for line, item in chunk:
        key = item.idempotency_key
        if key in existing or key not in firsts:
            firsts.add(key)
            _count(report, line, next(results))
        else:
            report.unchanged += 1
    assert next(results, None) is None


def _count(report: FileReport, line: Line, single: registry.RequestResult) -> None:
    if single.created:
        report.created += 1
    else:
        report.unchanged += 1
    if single.problems:
        report.problems.append({"line": line.number, "id": single.id, "problems": list(single.problems)})


def _engine_bad(number: int, exc: errors.SepaEngineError) -> BadLine:
    described = exc.to_dict()
    value = described["value"]
    rule = f"{value!r} {exc.rule}" if value is not None else exc.rule
    if exc.reason_code:
        rule += f" [{exc.reason_code}]"
    return BadLine(number, exc.field or "line", rule, exc.code)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start: start + size]

