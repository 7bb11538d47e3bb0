"""Retries of failed debits: the next attempt enqueued, gated and pre-notified.

A soft failure (``domain.return_decisions`` decides which) is presented again: the retry is
a new debit request on the mandate in force, with an idempotency key that names the original
and the attempt (``retry:<original id>:<attempt>``), so that a replayed file or a second
report of the same failure never enqueues it twice. Before it is stored, the account gate
(``services.debit_gate.admit_retries``) checks it against what is still collectable once the
failure is booked; a refused retry is not scheduled, and the applied return says why. Each
retry stored is pre-notified as the schedule's debits are (``notify_retries``).

Two ways in, as for the reconciliation's records: ``schedule_retry`` for one failure (the
record-by-record path, through the registry) and ``schedule_retries`` for the failures of
a chunk, in a few statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock
from sepa_engine.db.models import DebitRequest
from sepa_engine.db.repositories import registry as registry_repo
from sepa_engine.db.repositories import returns as repo
from sepa_engine.db.repositories.returns import MandateRow, RequestRow
from sepa_engine.domain import money
from sepa_engine.domain import return_decisions as decisions
from sepa_engine.domain.debit_gate import Admitted, Origin
from sepa_engine.domain.mandate import MandateStatus
from sepa_engine.domain.statuses import RequestStatus
from sepa_engine.services import idempotency
from sepa_engine.services.inputs import DebitRequestInput

log = structlog.get_logger("sepa_engine.reconciliation")

_PENDING = RequestStatus.PENDING.value
_SUPERSEDED = MandateStatus.SUPERSEDED.value
PRENOTICE_RETRY = "retry"


class DecidedRetry:
    """A retry decided in a segment, written with the segment; its id comes then."""

    __slots__ = (
        "creditor_code", "debtor_account_id", "gate", "id", "mandate_id", "mandate_reference", "notified_on", "on",
        "original", "original_mandate_id",
    )

    def __init__(self, creditor_code: str, mandate: MandateRow, original: RequestRow, decided: decisions.Retry) -> None:
        self.creditor_code = creditor_code
        self.on, self.notified_on = decided.on, decided.notified_on
        self.mandate_reference = mandate.reference
        self.original = original
        self.id: int | None = None
        self.original_mandate_id = mandate.id
        self.debtor_account_id = mandate.debtor_account_id
        # The account gate's answer, once asked (when the segment is written).
        self.gate: Admitted | errors.SepaEngineError | None = None
        # A mandate not superseded is the one in force under its reference (a unique index
        # says so): the retry goes on it. A superseded one leads to its successor, found
        # when the retry is written.
        self.mandate_id: int | None = None if mandate.status == _SUPERSEDED else mandate.id

    @property
    def idempotency_key(self) -> str:
        return f"retry:{self.original.id}:{self.original.attempt + 1}"

    def __str__(self) -> str:  # its text among the effects of the applied record
        if isinstance(self.gate, errors.SepaEngineError):
            return retry_refused(self.gate)
        return f"retry {self.id}"

    def pending_row(self) -> RequestRow:
        o = self.original
        assert self.id is not None and self.mandate_id is not None
        return RequestRow(
            self.id, "", o.amount_cents, _PENDING, o.creditor_id, self.mandate_id, None, None, o.attempt + 1,
            o.remittance, o.final, None, None, False, None,
        )


def schedule_retry(
    session: Session, creditor_code: str, mandate_reference: str, request: DebitRequest, decided: decisions.Retry,
    *, clock: Clock
) -> int | errors.SepaEngineError | None:
    """Enqueue the next attempt of ``request`` for the date ``decide`` gave, once the account
    gate admits it (the failure booked first); returns the gate's refusal otherwise.

    The idempotency key names the original and the attempt, so a replay (or a second file
    reporting the same failure) can never enqueue it twice.
    """
    from sepa_engine.services import debit_gate, registry

    attempt, on = decided.attempt, decided.on
    (gate,) = debit_gate.admit_retries(session, request.creditor_id, [
        debit_gate.RetryAsked(request.id, request.mandate_id, request.amount_cents)
    ])
    if isinstance(gate, errors.SepaEngineError):
        return gate
    result = registry.enqueue_request(
        session, creditor_code,
        DebitRequestInput(
            mandate=mandate_reference, amount=money.format_cents(request.amount_cents),
            remittance=request.remittance, requested_date=on, final=request.final,
        ),
        idempotency_key=f"retry:{request.id}:{attempt}", clock=clock, origin=Origin.RETRY, admitted=gate,
    )
    retry = repo.request_by_id(session, result.id)
    if retry is None:
        return None
    retry.attempt, retry.retry_of_id = attempt, request.id
    session.flush()
    notify_retries(session, request.creditor_id, [(retry.id, retry.mandate_id, retry.amount_cents, on)], decided.notified_on, clock=clock)
    log.debug("return.retry_scheduled", request_id=request.id, retry_id=retry.id, attempt=attempt)
    return retry.id


def retry_refused(refusal: errors.SepaEngineError) -> str:
    """What the applied return says of a retry the account gate refused (issue 12)."""
    return f"retry not scheduled: {refusal}"


def notify_retries(
    session: Session, creditor_id: int, retries: list[tuple[int, int, int, dt.date]], notified_on: dt.date, *, clock: Clock,
    inserted: Collection[int] = (), mandates: Mapping[int, tuple[int, str]] | None = None,
) -> int:
    """Pre-notify each new retry (id, mandate id, cents, date), as the schedule pre-notifies
    its debits: a ``prenotifications`` row of kind ``retry`` that ``accounts prenotifications
    export`` hands to the creditor's mailing system. A retry notified before (a replayed file)
    is not notified twice. Returns how many notices were written.

    The caller may say which retries it has just inserted (``inserted``: no notice can name
    an id reserved in this transaction, so they are not looked up) and what it knows of their
    mandates (``mandates``: mandate id -> its debtor account id and reference, read in this
    transaction); the rest is read. For 100,000 returns, 80,000 of them soft, that is two reads
    of 80,000 keys saved."""
    if not retries:
        return 0
    notified = repo.requests_with_prenotification(session, [r[0] for r in retries if r[0] not in inserted])
    fresh = [r for r in retries if r[0] not in notified]
    if not fresh:
        return 0
    known = mandates or {}
    accounts = {**repo.mandate_accounts(session, {r[1] for r in fresh if r[1] not in known}), **known}
    creditor = repo.creditor_by_id(session, creditor_id)
    now = clock.now()
    repo.insert_prenotifications(session, [
        {
            "creditor_id": creditor_id, "debtor_account_id": accounts[mandate_id][0], "slot_id": None,
            "debit_request_id": retry_id, "period": None, "amount_cents": cents, "collection_date": on,
            "nominal_date": on, "mandate_reference": accounts[mandate_id][1],
            "creditor_identifier": creditor.creditor_identifier, "issued_on": notified_on, "issued_at": now,
            "kind": PRENOTICE_RETRY,
        }
        for retry_id, mandate_id, cents, on in fresh
    ])
    return len(fresh)


def schedule_retries(session: Session, retries: list[DecidedRetry], *, clock: Clock) -> None:
    """``schedule_retry`` for many failed debits of one creditor, in a few statements.

    Each retry is the row ``registry.enqueue_request`` would store (the same key, content
    hash, dates and final end-to-end id), inserted with its attempt and original in one
    executemany, the ids reserved beforehand. A replayed key keeps its row, as there. A
    retry on a superseded mandate, a key twice in one call, or a unique-key race (another
    writer) go through ``registry.enqueue_request`` itself. Sets each retry's id and mandate.
    """
    from sepa_engine.services import debit_gate, registry

    if not retries:
        return
    creditor_id, creditor_code = retries[0].original.creditor_id, retries[0].creditor_code
    logger = log.bind()  # once, not per retry (see _Run.log)
    existing = registry_repo.requests_by_idempotency_keys(session, creditor_id, [r.idempotency_key for r in retries])
    # The account gate, once for the retries not written before (the failures are booked by
    # now): a refused one is not scheduled.
    asked = [r for r in retries if r.idempotency_key not in existing]
    for retry, gate in zip(asked, debit_gate.admit_retries(session, creditor_id, [
        debit_gate.RetryAsked(r.original.id, r.original_mandate_id, r.original.amount_cents) for r in asked
    ]), strict=True):
        retry.gate = gate
    refused = {id(r) for r in asked if isinstance(r.gate, errors.SepaEngineError)}
    fresh: list[tuple[DecidedRetry, dict[str, object]]] = []
    single: list[DecidedRetry] = []
    links: list[dict[str, object]] = []
    keys: set[str] = set()
    for retry in retries:
        if id(retry) in refused:
            continue
        original, key = retry.original, retry.idempotency_key
        on = retry.on
        remittance = original.remittance or None
        digest = idempotency.canonical_digest({
            "mandate": retry.mandate_reference, "amount_cents": original.amount_cents, "remittance": remittance,
            "requested_date": on, "final": original.final,
        })
        row = existing.get(key)
        if row is not None:
            idempotency.ensure_same(row, digest, key)
            retry.id, retry.mandate_id = row.id, row.mandate_id
            links.append({"b_id": row.id, "attempt": original.attempt + 1, "retry_of_id": original.id})
        elif retry.mandate_id is None or key in keys:
            single.append(retry)
        else:
            keys.add(key)
            fresh.append((retry, {
                "creditor_id": creditor_id, "mandate_id": retry.mandate_id, "idempotency_key": key,
                "content_hash": digest, "amount_cents": original.amount_cents, "remittance": remittance,
                "requested_date": on, "final": original.final, "status": _PENDING,
                "attempt": original.attempt + 1, "retry_of_id": original.id, "amend_new_debtor_agent": False,
                "pays": retry.gate.pays.value if isinstance(retry.gate, Admitted) else None,
            }))
    ids = registry_repo.reserve_request_ids(session, len(fresh))
    now = clock.now()
    rows = [
        {**values, "id": request_id, "end_to_end_id": registry.end_to_end_id(creditor_code, request_id),
         "status_changed_at": now, "created_at": now}
        for request_id, (_retry, values) in zip(ids, fresh, strict=True)
    ]
    # The retries inserted here, with ids reserved in this transaction: none has a notice yet.
    inserted: list[DecidedRetry] = []
    try:
        with session.begin_nested():
            repo.insert_requests(session, rows)
    except IntegrityError:
        # Another writer took one of these keys meanwhile: one by one, as enqueue_request settles races.
        single = [retry for retry, _values in fresh] + single
    else:
        for request_id, (retry, _values) in zip(ids, fresh, strict=True):
            retry.id = request_id
            inserted.append(retry)
    debit_gate.record(session, creditor_id, [
        (retry.id, retry.gate) for retry, _values in fresh if retry.id is not None and isinstance(retry.gate, Admitted)
    ])
    for retry in single:
        original = retry.original
        result = registry.enqueue_request(
            session, creditor_code,
            DebitRequestInput(
                mandate=retry.mandate_reference, amount=money.format_cents(original.amount_cents),
                remittance=original.remittance, requested_date=retry.on,
                final=original.final,
            ),
            idempotency_key=retry.idempotency_key, clock=clock, origin=Origin.RETRY,
            admitted=retry.gate if isinstance(retry.gate, Admitted) else None,
        )
        retry.id, retry.mandate_id = result.id, result.mandate_id
        links.append({"b_id": result.id, "attempt": original.attempt + 1, "retry_of_id": original.id})
    repo.update_requests(session, links)
    notify_retries(
        session, creditor_id,
        [(r.id, r.mandate_id, r.original.amount_cents, r.on) for r in retries if r.id is not None and r.mandate_id is not None],
        retries[0].notified_on, clock=clock, inserted={r.id for r in inserted if r.id is not None},
        mandates={r.original_mandate_id: (r.debtor_account_id, r.mandate_reference) for r in inserted},
    )
    for retry in retries:
        if retry.id is None:
            continue
        logger.debug("return.retry_scheduled", request_id=retry.original.id, retry_id=retry.id, attempt=retry.original.attempt + 1)
