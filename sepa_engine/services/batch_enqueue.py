"""Enqueueing many debit requests at once, for upstream systems that send them in bulk
(a monthly rent run, a billing export).

The same contract as ``registry.enqueue_request``, request by request: the same
idempotency key with the same content is a replay, with other content a conflict;
malformed input raises naming the field (and, here, the item's index); business-rule
problems are stored and reported. What changes is the cost: per chunk of requests, one
query finds the keys already used, one finds (and share-locks) the mandates, one multi-row
INSERT writes the new rows, with ids reserved beforehand so that each carries its final
end-to-end id. The whole call
runs in the caller's transaction: applied whole or not at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock, business_today
from sepa_engine.db.models import DebitRequest, Mandate
from sepa_engine.db.repositories import registry as repo
from sepa_engine.domain import calendar
from sepa_engine.domain.debit_gate import Admitted, Origin
from sepa_engine.domain.masking import mask_reference
from sepa_engine.domain.money import parse_amount
from sepa_engine.domain.statuses import RequestStatus
from sepa_engine.services import debit_gate, idempotency, problems
from sepa_engine.services import registry as single
from sepa_engine.services.inputs import DebitRequestInput

CHUNK = 1_000


@dataclass(frozen=True, slots=True)
class EnqueueItem:
    idempotency_key: str
    data: DebitRequestInput


@dataclass(frozen=True, slots=True)
class BatchResult:
    created: int
    replayed: int
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
    creditor = single._creditor(session, creditor_code)
    default_date = calendar.add_target_days(business_today(clock, creditor.timezone), 1)
    share_lock = session.get_bind().dialect.name == "postgresql"
    seen: dict[str, str] = {}
    results: list[single.RequestResult] = []
    created = replayed = 0
    for chunk in _chunks(enumerate(items), chunk_size):
        prepared = [_prepare(index, item, seen) for index, item in chunk]
        existing = repo.requests_by_idempotency_keys(session, creditor.id, [p.key for p in prepared])
        mandates = _mandates(session, creditor, {p.reference for p in prepared}, share_lock)
        cache: dict[tuple[int, dt.date], problems.Problems] = {}
        fresh: list[_Prepared] = []
        fresh_keys: set[str] = set()
        for p in prepared:
            row = existing.get(p.key)
            if row is not None:
                idempotency.ensure_same(row, p.digest, p.key)
                results.append(_result(creditor.code, mandates[p.reference], row.id, row.end_to_end_id,
                                       row.amount_cents, row.requested_date, row.status, False, cache))
                replayed += 1
            elif p.key not in fresh_keys:  # the same item twice in one call is written once
                fresh.append(p)
                fresh_keys.add(p.key)
        now = clock.now()  # one instant per chunk: the rows of one round trip share it
        admitted = debit_gate.admit_many(
            session, creditor,
            [debit_gate.Debit(mandates[p.reference].id, p.cents, p.asking, p.remittance, f"items[{p.index}]") for p in fresh],
            origin=origin, now=now,
        )
        ids = repo.reserve_request_ids(session, len(fresh))
        new_rows = [
            _row(creditor.id, creditor.code, request_id, p, mandates[p.reference], default_date, now, gate)
            for request_id, p, gate in zip(ids, fresh, admitted, strict=True)
        ]
        try:
            with session.begin_nested():
                repo.insert_requests(session, new_rows)
                debit_gate.record(session, creditor.id, list(zip(ids, admitted, strict=True)))
        except IntegrityError:
            # Another process wrote one of these keys meanwhile: fall back to the request-by-
            # request path, which settles each race on the unique constraint.
            for p in fresh:
                result = single.enqueue_request(session, creditor_code, p.data, idempotency_key=p.key, clock=clock,
                                                origin=origin)
                results.append(result)
                created += result.created
                replayed += not result.created
            continue
        for p, request_id, values in zip(fresh, ids, new_rows, strict=True):
            results.append(_result(creditor.code, mandates[p.reference], request_id,
                                   single.end_to_end_id(creditor.code, request_id), p.cents,
                                   values["requested_date"], RequestStatus.PENDING.value, True, cache))  # type: ignore[arg-type]
            created += 1
    return BatchResult(created, replayed, tuple(results))


def _chunks(iterable: Iterable[tuple[int, EnqueueItem]], size: int) -> Iterator[list[tuple[int, EnqueueItem]]]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _prepare(index: int, item: EnqueueItem, seen: dict[str, str]) -> _Prepared:
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
        exc.location = f"items[{index}]"
        raise
    digest = idempotency.content_hash(
        {"mandate": reference, "amount_cents": cents, "remittance": remittance,
         "requested_date": data.requested_date, "final": data.final, **ultimate, **pays.digest_fields()}
    )
    if seen.setdefault(key, digest) != digest:
        raise errors.IdempotencyConflict("idempotency_key", key, "is used twice in this call with different content",
                                         location=f"items[{index}]")
    return _Prepared(index, key, reference, cents, remittance, data.requested_date, data.final, digest, data, pays,
                     ultimate)


def _mandates(session: Session, creditor, references: set[str], share_lock: bool) -> dict[str, repo.MandateView]:  # type: ignore[no-untyped-def]
    found = repo.mandates_in_force(session, creditor.id, sorted(references), share_lock=share_lock)
    for reference in references - found.keys():
        # A reference known only from superseded mandates: follow it to its successor.
        current = single._current_mandate(session, creditor, reference, field="mandate", shared=True)
        found[reference] = repo.mandate_view(current)
    return found


def _row(creditor_id: int, creditor_code: str, request_id: int, p: _Prepared, mandate: repo.MandateView,
         default_date: dt.date, now: dt.datetime, admitted: Admitted) -> dict[str, object]:
    return {
        "id": request_id,
        "creditor_id": creditor_id,
        "mandate_id": mandate.id,
        "idempotency_key": p.key,
        "content_hash": p.digest,
        "end_to_end_id": single.end_to_end_id(creditor_code, request_id),
        "amount_cents": p.cents,
        "remittance": p.remittance,
        "requested_date": p.requested_date or default_date,
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
