"""Load a directory of JSON records into the registry, all or nothing.

The directory holds up to four files, each a JSON array of records (any may be absent),
loaded in this order so that a record can name one stored before it::

    creditors.json         creditor.schema.json
    debtor-accounts.json   debtor-account.schema.json   (records carry "creditor")
    mandates.json          mandate.schema.json          (records carry "creditor")
    requests.json          debit-request.schema.json    (records carry "creditor")

Every record is checked by its input model (``inputs.CreditorRecord``...; the JSON Schemas
above are generated from them), then given to the registry service; every
bad record is reported with its location (``mandates.json[3].iban: <rule>``), not only the
first. When anything is bad, ``LoadFailed`` is raised after all records were tried, and
the caller's transaction rolls everything back: a directory loads completely or not at all.
Every record carries an idempotency key, so loading the same directory again changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from sepa_engine import errors, json_input
from sepa_engine.clock import Clock
from sepa_engine.progress import SILENT, Progress
from sepa_engine.services import input_errors, registry
from sepa_engine.services.inputs import (
    CreditorInput,
    CreditorRecord,
    DebitRequestInput,
    DebitRequestRecord,
    DebtorAccountInput,
    DebtorAccountRecord,
    InputModel,
    MandateInput,
    MandateRecord,
    split_record,
)


class LoadFailed(errors.SepaEngineError):
    """Raised after every record was tried; ``load_errors`` lists what was wrong."""

    code = "load_failed"
    problem = "has bad records: nothing was loaded"
    load_errors: tuple[LoadError, ...] = ()


@dataclass(frozen=True, slots=True)
class LoadError:
    """One thing wrong with one record (``index`` None: with the file as a whole)."""

    file: str
    index: int | None
    path: str
    rule: str
    code: str

    @property
    def location(self) -> str:
        where = self.file if self.index is None else f"{self.file}[{self.index}]"
        return f"{where}.{self.path}" if self.path else where

    def __str__(self) -> str:
        return f"{self.location}: {self.rule}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "index": self.index, "path": self.path, "rule": self.rule,
                "code": self.code, "location": self.location, "message": str(self)}


@dataclass(frozen=True, slots=True)
class StoredProblem:
    """A record that was stored although the collection run will refuse it (see registry)."""

    file: str
    index: int
    id: int
    problems: tuple[dict[str, object], ...]
    # False when this load found the record already stored, unchanged: its problems were
    # reported by the load that stored it.
    created: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "index": self.index, "id": self.id, "problems": list(self.problems), "created": self.created}


@dataclass(slots=True)
class KindCount:
    created: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class LoadReport:
    counts: dict[str, KindCount]
    problems: tuple[StoredProblem, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "counts": {kind: {"created": c.created, "unchanged": c.unchanged} for kind, c in self.counts.items()},
            "problems": [p.to_dict() for p in self.problems],
        }


# (session, idempotency key, creditor code or None, the input, clock) -> the service's result
Apply = Callable[[Session, str, Any, Any, Clock], Any]


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    file: str
    schema: str  # its JSON Schema in schemas/, generated from ``record``
    record: type[InputModel]
    input: type[InputModel]
    apply: Apply = field(repr=False)


def _creditor(session: Session, key: str, creditor: Any, data: Any, clock: Clock) -> Any:
    return registry.register_creditor(session, data, idempotency_key=key, clock=clock)


def _debtor_account(session: Session, key: str, creditor: Any, data: Any, clock: Clock) -> Any:
    return registry.register_debtor_account(session, creditor, data, idempotency_key=key, clock=clock)


def _mandate(session: Session, key: str, creditor: Any, data: Any, clock: Clock) -> Any:
    return registry.register_mandate(session, creditor, data, idempotency_key=key, clock=clock)


def _request(session: Session, key: str, creditor: Any, data: Any, clock: Clock) -> Any:
    return registry.enqueue_request(session, creditor, data, idempotency_key=key, clock=clock)


KINDS: tuple[_Kind, ...] = (
    _Kind("creditors", "creditors.json", "creditor.schema.json", CreditorRecord, CreditorInput, _creditor),
    _Kind("debtor_accounts", "debtor-accounts.json", "debtor-account.schema.json", DebtorAccountRecord, DebtorAccountInput, _debtor_account),
    _Kind("mandates", "mandates.json", "mandate.schema.json", MandateRecord, MandateInput, _mandate),
    _Kind("requests", "requests.json", "debit-request.schema.json", DebitRequestRecord, DebitRequestInput, _request),
)


def load_directory(session: Session, directory: str | Path, *, clock: Clock, progress: Progress = SILENT) -> LoadReport:
    """Load every record of ``directory``; raise ``LoadFailed`` listing every bad record.

    ``progress`` hears the number of valid records, then one advance per record.

    Raising leaves the session with the good records written: the caller must roll back
    (``Database.transaction()`` does when the exception leaves its block).
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise errors.NotFound("directory", str(folder), "is not a directory")
    bad: list[LoadError] = []
    valid: dict[str, list[tuple[int, InputModel]]] = {}
    for kind in KINDS:
        valid[kind.name] = _valid_records(folder / kind.file, kind.record, bad)

    counts = {kind.name: KindCount() for kind in KINDS}
    stored_problems: list[StoredProblem] = []
    progress.total(sum(len(records) for records in valid.values()))
    for kind in KINDS:
        for index, record in valid[kind.name]:
            progress.advance()
            outside, data = split_record(record, kind.input)
            try:
                result = kind.apply(session, outside["idempotency_key"], outside.get("creditor"), data, clock)
            except errors.SepaEngineError as exc:
                bad.append(_engine_error(kind.file, index, exc))
                continue
            count = counts[kind.name]
            if result.created:
                count.created += 1
            else:
                count.unchanged += 1
            if getattr(result, "problems", ()):
                stored_problems.append(StoredProblem(kind.file, index, result.id, result.problems, bool(result.created)))
    if bad:
        order = {kind.file: position for position, kind in enumerate(KINDS)}
        bad.sort(key=lambda e: (order[e.file], -1 if e.index is None else e.index))
        records = len({(e.file, e.index) for e in bad})
        failure = LoadFailed(
            "directory", str(folder), f"has {len(bad)} error(s) in {records} record(s) or file(s): nothing was loaded"
        )
        failure.load_errors = tuple(bad)
        raise failure
    return LoadReport(counts, tuple(stored_problems))


def _valid_records(path: Path, model: type[InputModel], bad: list[LoadError]) -> list[tuple[int, InputModel]]:
    if not path.exists():
        return []
    try:
        data = json_input.loads(path.read_bytes(), path.name)
    except errors.InvalidFormat as exc:
        bad.append(LoadError(path.name, None, "", exc.rule, exc.code))
        return []
    if not isinstance(data, list):
        bad.append(LoadError(path.name, None, "", "must be a JSON array of records", errors.InvalidFormat.code))
        return []
    records: list[tuple[int, InputModel]] = []
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            bad.append(LoadError(path.name, index, "", "must be a JSON object", errors.InvalidFormat.code))
            continue
        try:
            records.append((index, model.model_validate(record)))
        except ValidationError as exc:
            bad.extend(
                LoadError(path.name, index, "" if p.field == "document" else p.field, p.sentence(), p.code)
                for p in input_errors.problems(exc)
            )
    return records


def _engine_error(file: str, index: int, exc: errors.SepaEngineError) -> LoadError:
    described = exc.to_dict()
    value = described["value"]
    rule = f"{value!r} {exc.rule}" if value is not None else exc.rule
    if exc.reason_code:
        rule += f" [{exc.reason_code}]"
    return LoadError(file, index, exc.field or "", rule, exc.code)


