"""Load a directory of JSON records into the registry, all or nothing.

The directory holds up to four files, each a JSON array of records (any may be absent),
loaded in this order so that a record can name one stored before it::

    creditors.json         creditor.schema.json
    debtor-accounts.json   debtor-account.schema.json   (records carry "creditor")
    mandates.json          mandate.schema.json          (records carry "creditor")
    requests.json          debit-request.schema.json    (records carry "creditor")

Every record is checked against its JSON Schema, then given to the registry service; every
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

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from sqlalchemy.orm import Session

from sepa_engine import errors, json_input, json_schemas
from sepa_engine.clock import Clock
from sepa_engine.domain import text
from sepa_engine.progress import SILENT, Progress
from sepa_engine.services import registry, schema_words
from sepa_engine.services.inputs import CreditorInput, DebitRequestInput, DebtorAccountInput, MandateInput


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


Apply = Callable[[Session, str, dict[str, Any], Clock], Any]


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    file: str
    schema: str
    apply: Apply = field(repr=False)


def _creditor(session: Session, key: str, record: dict[str, Any], clock: Clock) -> Any:
    return registry.register_creditor(session, CreditorInput.from_mapping(record), idempotency_key=key, clock=clock)


def _debtor_account(session: Session, key: str, record: dict[str, Any], clock: Clock) -> Any:
    creditor = record.pop("creditor")
    data = DebtorAccountInput.from_mapping(record)
    return registry.register_debtor_account(session, creditor, data, idempotency_key=key, clock=clock)


def _mandate(session: Session, key: str, record: dict[str, Any], clock: Clock) -> Any:
    creditor = record.pop("creditor")
    data = MandateInput.from_mapping(record)
    return registry.register_mandate(session, creditor, data, idempotency_key=key, clock=clock)


def _request(session: Session, key: str, record: dict[str, Any], clock: Clock) -> Any:
    creditor = record.pop("creditor")
    data = DebitRequestInput.from_mapping(record)
    return registry.enqueue_request(session, creditor, data, idempotency_key=key, clock=clock)


KINDS: tuple[_Kind, ...] = (
    _Kind("creditors", "creditors.json", "creditor.schema.json", _creditor),
    _Kind("debtor_accounts", "debtor-accounts.json", "debtor-account.schema.json", _debtor_account),
    _Kind("mandates", "mandates.json", "mandate.schema.json", _mandate),
    _Kind("requests", "requests.json", "debit-request.schema.json", _request),
)


def load_directory(session: Session, directory: str | Path, *, clock: Clock, progress: Progress = SILENT) -> LoadReport:
    """Load every record of ``directory``; raise ``LoadFailed`` listing every bad record.

    ``progress`` hears the number of schema-valid records, then one advance per record.

    Raising leaves the session with the good records written: the caller must roll back
    (``Database.transaction()`` does when the exception leaves its block).
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise errors.NotFound("directory", str(folder), "is not a directory")
    bad: list[LoadError] = []
    valid: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for kind in KINDS:
        valid[kind.name] = _valid_records(folder / kind.file, json_schemas.validator(kind.schema), bad)

    counts = {kind.name: KindCount() for kind in KINDS}
    stored_problems: list[StoredProblem] = []
    progress.total(sum(len(records) for records in valid.values()))
    for kind in KINDS:
        for index, record in valid[kind.name]:
            progress.advance()
            key = record.pop("idempotency_key")
            try:
                result = kind.apply(session, key, record, clock)
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


def _valid_records(path: Path, validator: Draft202012Validator, bad: list[LoadError]) -> list[tuple[int, dict[str, Any]]]:
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
    records: list[tuple[int, dict[str, Any]]] = []
    for index, record in enumerate(data):
        # Text rules first: the schema's messages quote values, which may be unprintable.
        broken = text.problems_in(record)
        if broken:
            bad.extend(LoadError(path.name, index, where, rule, errors.InvalidCharacters.code) for where, rule in broken)
            continue
        found = sorted(validator.iter_errors(record), key=lambda e: (e.json_path, e.message))
        if found:
            bad.extend(_schema_error(path.name, index, error) for error in found)
        else:
            records.append((index, dict(record)))
    return records


def _schema_error(file: str, index: int, error: ValidationError) -> LoadError:
    path = error.json_path.removeprefix("$").removeprefix(".")
    value = schema_words.value_of(error)
    rule = schema_words.in_words(error)
    return LoadError(file, index, path, f"{value!r} {rule}" if value is not None else rule, f"schema.{error.validator}")


def _engine_error(file: str, index: int, exc: errors.SepaEngineError) -> LoadError:
    described = exc.to_dict()
    value = described["value"]
    rule = f"{value!r} {exc.rule}" if value is not None else exc.rule
    if exc.reason_code:
        rule += f" [{exc.reason_code}]"
    return LoadError(file, index, exc.field or "", rule, exc.code)


