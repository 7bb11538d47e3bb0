"""Enqueueing many debit requests at once, for upstream systems that send them in bulk
(a monthly rent run, a billing export).

The same contract as ``registry.enqueue_request``, request by request: the same
idempotency key with the same content is a replay, with other content a conflict;
malformed input raises naming the field (and, here, the item's index); business-rule
problems are stored and reported. What changes is the cost: per chunk of requests, one
query finds the keys already used, one finds (and share-locks) the mandates, one multi-row
INSERT writes the new rows, with ids reserved beforehand so that each carries its final
end-to-end id. ``enqueue_parts`` does the same for several creditors' items in one pass (the
HTTP batcher's groups), the gate and the INSERTs once for them all. The whole call runs in the
caller's transaction: applied whole or not at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock, business_today
from sepa_engine.db import bulk
from sepa_engine.db.models import Creditor, DebitRequest, LedgerEntry, Mandate
from sepa_engine.db.repositories import registry as repo
from sepa_engine.db.session import key_check_plans_kept_when_large
from sepa_engine.domain import calendar
from sepa_engine.domain.debit_gate import Admitted, Origin
from sepa_engine.domain.masking import mask_reference
from sepa_engine.domain.money import parse_amount
from sepa_engine.domain.statuses import RequestStatus
from sepa_engine.services import debit_gate, idempotency, problems
from sepa_engine.services import registry as single
from sepa_engine.services.inputs import DebitRequestInput

CHUNK = 1_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EnqueueItem:
    idempotency_key: str
    data: DebitRequestInput


@dataclass(frozen=True, slots=True)
class BatchResult:
    created: int
    replayed: int
    # In the items' order; an item repeating an earlier new key of the call (same key and
    # content) is written once and answered once, at its first place.
    results: tuple[single.RequestResult, ...]


@dataclass(frozen=True, slots=True)
class _Prepared:
    index: int
    key: str
    reference: str
    cents: int
    remittance: str | None
    requested_date: dt.date | None
    final: bool
    digest: str
    data: DebitRequestInput
    asking: debit_gate.Asking
    ultimate: dict[str, object] = dataclasses.field(default_factory=dict)


def enqueue_requests(
    session: Session,
    creditor_code: str,
    items: Iterable[EnqueueItem],
    *,
    clock: Clock,
    chunk_size: int = CHUNK,
    origin: Origin = Origin.UPSTREAM,
) -> BatchResult:
    """Enqueue ``items`` for one creditor; an input error names its item (``items[3]``)."""
    return enqueue(session, creditor_code, items, clock=clock, chunk_size=chunk_size, origin=origin, locate=True)


def enqueue(
    session: Session,
    creditor_code: str,
    items: Iterable[EnqueueItem],
    *,
    clock: Clock,
    chunk_size: int,
    origin: Origin,
    locate: bool,
    admitted: Mapping[str, Admitted] | None = None,
) -> BatchResult:
    """The one enqueue core, behind ``enqueue_requests`` and ``registry.enqueue_request`` (a
    batch of one): the same checks, gate, writer and answers for one request and a million.
    ``locate`` names the item (``items[3]``) in errors; ``admitted`` gives the gate's verdicts
    beforehand, by idempotency key: a retry's (``debit_gate.admit_retries``), the schedule's
    (decided on the facts it read under its accounts' locks)."""
    return enqueue_parts(
        session, [Part(creditor_code, items, admitted)], clock=clock, chunk_size=chunk_size, origin=origin, locate=locate
    )[0]


@dataclass(frozen=True, slots=True)
class Part:
    """One creditor's items in an ``enqueue_parts`` call (a creditor given two parts gets what
    two calls would: a key in both is new in the first and a replay in the second)."""

    creditor_code: str
    items: Iterable[EnqueueItem]
    admitted: Mapping[str, Admitted] | None = None


def enqueue_parts(
    session: Session, parts: Sequence[Part], *, clock: Clock, chunk_size: int = CHUNK, origin: Origin = Origin.UPSTREAM,
    locate: bool = True, settle_races: bool = True,
) -> list[BatchResult]:
    """``enqueue`` for several creditors' items in one pass, a result per part: the HTTP
    batcher's group holds calls for several creditors, and its statements (the gate's reads,
    the reserved ids, the INSERTs) are sent once for them all instead of once per creditor,
    and so are the keyed lookups (creditor codes, idempotency keys, mandate references,
    invoice numbers), which search (creditor, key) pairs since each key is unique within its
    creditor only. An error's location (``items[3]``) is the item's index within its part.

    ``settle_races``: a key another writer stored after the lookup makes the chunk's INSERT
    fail on the unique constraint; each of the chunk's requests then settles its race alone,
    under a savepoint. A caller that settles it itself (the HTTP batcher runs every call of
    its group alone in a new transaction) passes False: no savepoint (two round trips a group
    on PostgreSQL), and the ``IntegrityError`` reaches it."""
    states = [
        _PartState.of(part, creditor, clock)
        for part, creditor in zip(parts, single._creditors(session, [part.creditor_code for part in parts]), strict=True)
    ]
    share_lock = session.get_bind().dialect.name == "postgresql"
    items = ((state, index, item) for state in states for index, item in enumerate(state.part.items))
    for chunk in _chunks(items, chunk_size):
        by_state: dict[int, list[_Prepared]] = {}
        for state, index, item in chunk:
            by_state.setdefault(id(state), []).append(_prepare(index, item, state.seen, locate))
        asking = [(state, by_state[id(state)]) for state in states if id(state) in by_state]
        # The keys and references of every creditor of the chunk, each kind in one statement.
        keys: dict[int, set[str]] = {}
        references: dict[int, set[str]] = {}
        for state, prepared in asking:
            keys.setdefault(state.creditor.id, set()).update(p.key for p in prepared)
            references.setdefault(state.creditor.id, set()).update(p.reference for p in prepared)
        existing = repo.requests_by_creditor_keys(session, keys)
        in_force = _mandates(session, {state.creditor.id: state.creditor for state, _ in asking}, references, share_lock)
        writes: list[tuple[_PartState, _Writer, list[_Prepared]]] = []
        for state, prepared in asking:
            creditor = state.creditor
            mandates = in_force[creditor.id]
            cache: dict[tuple[int, dt.date], problems.Problems] = {}
            fresh: list[_Prepared] = []
            fresh_keys: set[str] = set()
            for p in prepared:
                row = existing.get((creditor.id, p.key))
                if row is not None:
                    state.answers.append((p.index, _replay(session, creditor.code, p, row, mandates, cache)))
                    state.replayed += 1
                elif p.key not in fresh_keys:  # the same item twice in one call is written once
                    fresh.append(p)
                    fresh_keys.add(p.key)
            write = _Writer(session, creditor, mandates, state.default_date, clock, origin, locate, state.part.admitted, cache)
            writes.append((state, write, fresh))
        try:
            written: list[list[single.RequestResult]] = [[] for _ in writes]
            fresh_all = [p for _, _, fresh in writes for p in fresh]
            if fresh_all:
                with session.begin_nested() if settle_races else nullcontext(), _key_checks(session, fresh_all):
                    written = _together(session, clock, [(write, fresh) for _, write, fresh in writes])
        except IntegrityError:
            if not settle_races:
                raise
            # Another process wrote one of these keys meanwhile (PostgreSQL): the chunk's
            # statements are rolled back, gate included, and each request settles its race
            # on the unique constraint alone.
            written = [[write.alone(p) for p in fresh] for _, write, fresh in writes]
        for (state, _write, fresh), results in zip(writes, written, strict=True):
            for p, result in zip(fresh, results, strict=True):
                state.answers.append((p.index, result))
                state.created += result.created
                state.replayed += not result.created
            state.answered()
    return [state.result() for state in states]


@dataclass
class _PartState:
    part: Part
    creditor: Creditor
    default_date: dt.date
    seen: dict[str, str] = dataclasses.field(default_factory=dict)
    # The chunk's answers (item index, result), then every answer in the items' order.
    answers: list[tuple[int, single.RequestResult]] = dataclasses.field(default_factory=list)
    results: list[single.RequestResult] = dataclasses.field(default_factory=list)
    created: int = 0
    replayed: int = 0

    @classmethod
    def of(cls, part: Part, creditor: Creditor, clock: Clock) -> _PartState:
        return cls(part, creditor, calendar.add_target_days(business_today(clock, creditor.timezone), 1))

    def answered(self) -> None:
        """The chunk's answers in their items' order (a chunk's items follow the last's)."""
        self.answers.sort(key=lambda answer: answer[0])
        self.results.extend(result for _, result in self.answers)
        self.answers.clear()

    def result(self) -> BatchResult:
        return BatchResult(self.created, self.replayed, tuple(self.results))


def _together(
    session: Session, clock: Clock, writes: Sequence[tuple[_Writer, list[_Prepared]]]
) -> list[list[single.RequestResult]]:
    """The new requests of several creditors' writers: the account gate, one multi-row
    INSERT with ids reserved beforehand (so each row carries its final end-to-end id), and
    the invoices each pays, each in one statement for them all."""
    now = clock.now()  # one instant per chunk: the rows of one round trip share it
    # Parts whose verdicts were given beforehand (the schedule's) skip the gate; the others
    # go through it together (a part with nothing new gets an empty list, at no cost).
    asked = [(write, fresh) for write, fresh in writes if write.admitted is None]
    verdicts = iter(debit_gate.admit_parts(
        session, [(write.creditor, write.debits(fresh)) for write, fresh in asked], origin=asked[0][0].origin, now=now
    ) if asked else [])
    gates = [
        [write.admitted[p.key] for p in fresh] if write.admitted is not None else next(verdicts)
        for write, fresh in writes
    ]
    ids = iter(repo.reserve_request_ids(session, sum(len(fresh) for _, fresh in writes)))
    rows = [
        [write.row(next(ids), p, gate, now) for p, gate in zip(fresh, part_gates, strict=True)]
        for (write, fresh), part_gates in zip(writes, gates, strict=True)
    ]
    repo.insert_requests(session, [row for part_rows in rows for row in part_rows])
    debit_gate.record_parts(session, [
        (write.creditor.id, [(row["id"], gate) for row, gate in zip(part_rows, part_gates, strict=True)])  # type: ignore[misc]
        for (write, _fresh), part_rows, part_gates in zip(writes, rows, gates, strict=True)
    ])
    return [
        [write.created(p, row) for p, row in zip(fresh, part_rows, strict=True)]
        for (write, fresh), part_rows in zip(writes, rows, strict=True)
    ]


# What a chunk fills that its own foreign-key checks look up: the selections reference the
# chunk's requests and the invoices they carry.
_FILLED = (DebitRequest.__tablename__, LedgerEntry.__tablename__)


def _key_checks(session: Session, fresh: list[_Prepared]) -> AbstractContextManager[bool | None]:
    """The chunk's key checks keep their plans once the ledger is established (PostgreSQL,
    60,000 requests carrying their invoices into a ledger of as many requests and twice as
    many invoices: 13.4-15.2 s against 17.9-19.5 s planned per row; BENCHMARKS.md). A chunk of
    fewer than ``bulk.UNNEST_FROM`` rows (the API's groups, mostly) does not pay its two round
    trips."""
    return key_check_plans_kept_when_large(session, _FILLED) if len(fresh) >= bulk.UNNEST_FROM else nullcontext()


class _Writer:
    """One creditor's writer of new requests (``_together`` writes several at once)."""

    def __init__(self, session: Session, creditor: Creditor, mandates: dict[str, repo.MandateView],
                 default_date: dt.date, clock: Clock, origin: Origin, locate: bool, admitted: Mapping[str, Admitted] | None,
                 cache: dict[tuple[int, dt.date], problems.Problems]) -> None:
        self.session, self.creditor, self.mandates = session, creditor, mandates
        self.default_date, self.clock, self.origin = default_date, clock, origin
        self.locate, self.admitted, self.cache = locate, admitted, cache

    def alone(self, p: _Prepared) -> single.RequestResult:
        found = repo.request_by_idempotency_key(self.session, self.creditor.id, p.key)
        if found is None:
            try:
                with self.session.begin_nested():
                    return _together(self.session, self.clock, [(self, [p])])[0][0]
            except IntegrityError:
                found = repo.request_by_idempotency_key(self.session, self.creditor.id, p.key)
                if found is None:
                    raise errors.DuplicateIdentifier("end_to_end_id", None, "collided with another request; try again") from None
        return _replay(self.session, self.creditor.code, p, found, self.mandates, self.cache)

    def debits(self, fresh: list[_Prepared]) -> list[debit_gate.Debit]:
        return [
            debit_gate.Debit(
                self.mandates[p.reference].id, p.cents, p.asking, p.remittance, _where(p.index, self.locate),
                self.mandates[p.reference].debtor_account_id,
            )
            for p in fresh
        ]

    def row(self, request_id: int, p: _Prepared, admitted: Admitted, now: dt.datetime) -> dict[str, object]:
        return {
            "id": request_id,
            "creditor_id": self.creditor.id,
            "mandate_id": self.mandates[p.reference].id,
            "idempotency_key": p.key,
            "content_hash": p.digest,
            "end_to_end_id": single.end_to_end_id(self.creditor.code, request_id),
            "amount_cents": p.cents,
            "remittance": p.remittance,
            # The date as sent stays in the digest (None included), so that a replay on
            # another day is still a replay; the row gets the default.
            "requested_date": p.requested_date or self.default_date,
            "final": p.final,
            "status": RequestStatus.PENDING.value,
            "status_changed_at": now,
            "attempt": 1,
            "created_at": now,
            "amend_new_debtor_agent": False,
            "ultimate_creditor_name": p.ultimate.get("ultimate_creditor_name"),
            "ultimate_creditor_id": p.ultimate.get("ultimate_creditor_id"),
            "pays": admitted.pays.value,
        }

    def created(self, p: _Prepared, row: dict[str, object]) -> single.RequestResult:
        return _result(self.creditor.code, self.mandates[p.reference], row["id"], row["end_to_end_id"],  # type: ignore[arg-type]
                       p.cents, row["requested_date"], RequestStatus.PENDING.value, True, self.cache)  # type: ignore[arg-type]


def _replay(session: Session, creditor_code: str, p: _Prepared, row: DebitRequest,
            mandates: dict[str, repo.MandateView], cache: dict[tuple[int, dt.date], problems.Problems]) -> single.RequestResult:
    """The first answer again. It names the request's own mandate, which is not the one now
    in force under the reference when the mandate was superseded since."""
    idempotency.ensure_same(row, p.digest, p.key)
    mandate = mandates[p.reference]
    if mandate.id != row.mandate_id:
        mandate = repo.mandate_view(repo.mandate(session, row.mandate_id))
    return _result(creditor_code, mandate, row.id, row.end_to_end_id, row.amount_cents, row.requested_date,
                   row.status, False, cache)


def _where(index: int, locate: bool) -> str | None:
    return f"items[{index}]" if locate else None


def _chunks(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _prepare(index: int, item: EnqueueItem, seen: dict[str, str], locate: bool) -> _Prepared:
    """The input checks of one request (malformed input raises naming the field) and the
    digest its idempotency key is compared by."""
    try:
        if not isinstance(item, EnqueueItem):
            raise errors.InvalidFormat("item", f"<{type(item).__name__}>", "must be an EnqueueItem")
        key = idempotency.check_key(item.idempotency_key)
        data = item.data
        single._check_input(data, DebitRequestInput)
        reference = single._fit("mandate", data.mandate, Mandate.reference, shown=mask_reference(data.mandate))
        cents = parse_amount(data.amount, sepa_range=False)
        remittance = single._fit("remittance", data.remittance, DebitRequest.remittance) if data.remittance else None
        ultimate = single.request_ultimate_creditor(data)
        pays = debit_gate.asking(data)
    except errors.SepaEngineError as exc:
        exc.location = _where(index, locate)
        raise
    digest = idempotency.content_hash(
        {"mandate": reference, "amount_cents": cents, "remittance": remittance,
         "requested_date": data.requested_date, "final": data.final, **ultimate, **pays.digest_fields()}
    )
    if seen.setdefault(key, digest) != digest:
        raise errors.IdempotencyConflict("idempotency_key", key, "is used twice in this call with different content",
                                         location=_where(index, locate))
    return _Prepared(index, key, reference, cents, remittance, data.requested_date, data.final, digest, data, pays,
                     ultimate)


def _mandates(
    session: Session, creditors: Mapping[int, Creditor], references: Mapping[int, set[str]], share_lock: bool
) -> dict[int, dict[str, repo.MandateView]]:
    """Each creditor's mandates in force by reference (creditor id -> reference -> view)."""
    found = repo.mandates_in_force_of(session, references, share_lock=share_lock)
    by_creditor: dict[int, dict[str, repo.MandateView]] = {creditor_id: {} for creditor_id in references}
    for (creditor_id, reference), view in found.items():
        by_creditor[creditor_id][reference] = view
    for creditor_id, wanted in references.items():
        for reference in sorted(wanted - by_creditor[creditor_id].keys()):
            # A reference known only from superseded mandates: follow it to its successor.
            current = single._current_mandate(session, creditors[creditor_id], reference, field="mandate", shared=True)
            by_creditor[creditor_id][reference] = repo.mandate_view(current)
    return by_creditor


def _result(creditor_code: str, mandate: repo.MandateView, request_id: int, end_to_end_id: str, cents: int,
            requested_date: dt.date, status: str, created: bool,
            cache: dict[tuple[int, dt.date], problems.Problems]) -> single.RequestResult:
    found: problems.Problems = []
    if RequestStatus(status) is RequestStatus.PENDING:
        # A mandate's problems are the same for all its requests on one date: computed once.
        key = (mandate.id, requested_date)
        if key not in cache:
            # The views carry every attribute the checks read from the rows (duck-typed, not a subtype).
            cache[key] = problems.dated_problems(mandate, mandate.debtor_account, requested_date)  # type: ignore[arg-type]
        found = problems.amount_problems(cents) + cache[key]
    return single.RequestResult(request_id, creditor_code, end_to_end_id, mandate.id, mandate.reference, cents,
                                requested_date, status, created, problems.as_dicts(found))
