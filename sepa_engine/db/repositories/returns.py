"""Queries of the reconciliation (all of them live here).

Besides the one-row reads of the record-by-record path, the chunked path reads plain rows
(named tuples, no ORM entities) for a whole chunk in one statement each, and writes with
executemany; the identity map then never holds what a chunk read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import bindparam, case, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from sepa_engine.db import bulk
from sepa_engine.db.models import (
    Batch,
    Creditor,
    DebitRequest,
    DebtorAccount,
    LedgerEntry,
    Mandate,
    PaymentBlock,
    Prenotification,
    RequestInvoice,
)
from sepa_engine.db.repositories import rowcount, table_of

# Re-exported: creditors are looked up in one place (repositories/creditors.py).
from sepa_engine.db.repositories.creditors import creditor_by_id as creditor_by_id
from sepa_engine.db.returns_models import (
    AppliedReturn,
    ReasonCodePolicy,
    ReturnException,
    ReturnFile,
)


# --- files ---------------------------------------------------------------------------------
def file_by_sha256(session: Session, sha256: str) -> ReturnFile | None:
    return session.scalars(select(ReturnFile).where(ReturnFile.sha256 == sha256)).first()


def lock_file(session: Session, file_id: int) -> ReturnFile:
    """A return file's row, locked (PostgreSQL) and loaded anew."""
    query = select(ReturnFile).where(ReturnFile.id == file_id).with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one()


def add(session: Session, row: object) -> None:
    session.add(row)
    session.flush()


# --- what records point at -----------------------------------------------------------------
def request_by_end_to_end_id(session: Session, end_to_end_id: str) -> DebitRequest | None:
    return session.scalars(select(DebitRequest).where(DebitRequest.end_to_end_id == end_to_end_id)).first()


def request_by_id(session: Session, request_id: int) -> DebitRequest | None:
    return session.get(DebitRequest, request_id)


def batch_by_message_id(session: Session, message_id: str) -> Batch | None:
    return session.scalars(select(Batch).where(Batch.message_id == message_id)).first()


def batch_for_update(session: Session, batch_id: int) -> Batch | None:
    """A batch locked (PostgreSQL) and loaded anew, before its status is computed from its
    debits: two files about one batch then move it one after the other, each from what the
    other committed, never both from what they read before."""
    query = select(Batch).where(Batch.id == batch_id).with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).first()


def block_by_payment_info_id(session: Session, payment_info_id: str) -> PaymentBlock | None:
    return session.scalars(select(PaymentBlock).where(PaymentBlock.payment_info_id == payment_info_id)).first()


def requests_of_batch(session: Session, batch_id: int, statuses: Sequence[str]) -> list[DebitRequest]:
    query = select(DebitRequest).where(DebitRequest.batch_id == batch_id, DebitRequest.status.in_(statuses))
    return list(session.scalars(query.order_by(DebitRequest.id)))


def requests_of_block(session: Session, block_id: int, statuses: Sequence[str], amount_cents: int | None = None) -> list[DebitRequest]:
    query = select(DebitRequest).where(DebitRequest.block_id == block_id, DebitRequest.status.in_(statuses))
    if amount_cents is not None:
        query = query.where(DebitRequest.amount_cents == amount_cents)
    return list(session.scalars(query.order_by(DebitRequest.id)))


def requests_by_mandate_reference(
    session: Session, reference: str, amount_cents: int, statuses: Sequence[str], creditor_ids: Iterable[int] | None = None
) -> list[DebitRequest]:
    query = (
        select(DebitRequest)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(Mandate.reference == reference, DebitRequest.amount_cents == amount_cents, DebitRequest.status.in_(statuses))
    )
    if creditor_ids is not None:
        query = query.where(DebitRequest.creditor_id.in_(list(creditor_ids)))
    return list(session.scalars(query.order_by(DebitRequest.id)))


def creditor_ids_by_identifier(session: Session, identifier: str) -> list[int]:
    return list(session.scalars(select(Creditor.id).where(Creditor.creditor_identifier == identifier)))


def creditor_by_iban(session: Session, iban: str) -> Creditor | None:
    return session.scalars(select(Creditor).where(Creditor.iban == iban)).first()


def mandate_for_update(session: Session, mandate_id: int) -> Mandate:
    # of=Mandate: the eager join to debtor_accounts cannot be locked (outer join).
    row = session.scalars(select(Mandate).where(Mandate.id == mandate_id).with_for_update(of=Mandate)).unique().one()
    return row


def account_reference(session: Session, account_id: int) -> str:
    return session.scalars(select(DebtorAccount.reference).where(DebtorAccount.id == account_id)).one()


def pending_requests_of_mandate(session: Session, mandate_id: int, pending: str) -> list[DebitRequest]:
    """The record-by-record ``pending_request_rows``: locked, and loaded anew."""
    query = select(DebitRequest).where(DebitRequest.mandate_id == mandate_id, DebitRequest.status == pending)
    query = query.order_by(DebitRequest.id).with_for_update().execution_options(populate_existing=True)
    return list(session.scalars(query))


def lock_request(session: Session, request_id: int) -> DebitRequest:
    """A debit matched record by record, locked (PostgreSQL) and loaded anew: what it is
    decided on is what the last writer committed (see ``request_rows_by_end_to_end_ids``)."""
    query = select(DebitRequest).where(DebitRequest.id == request_id).with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one()


def other_requests_count(session: Session, mandate_id: int, request_id: int, statuses: Sequence[str]) -> int:
    query = select(func.count()).where(
        DebitRequest.mandate_id == mandate_id, DebitRequest.id != request_id, DebitRequest.status.in_(statuses)
    )
    return int(session.scalar(query) or 0)


def invoices_paid_by(session: Session, request_id: int) -> list[tuple[str, int]]:
    """(invoice number, cents this debit paid of it) for the invoices a debit paid."""
    query = (
        select(LedgerEntry.document_number, RequestInvoice.amount_cents)
        .join(RequestInvoice, RequestInvoice.entry_id == LedgerEntry.id)
        .where(RequestInvoice.debit_request_id == request_id)
        .order_by(RequestInvoice.id)
    )
    return [(number, cents) for number, cents in session.execute(query)]


# --- applied records -----------------------------------------------------------------------
def applied_by_key(session: Session, natural_key: str) -> AppliedReturn | None:
    return session.scalars(select(AppliedReturn).where(AppliedReturn.natural_key == natural_key)).first()


def credited_cents(session: Session, batch_id: int, kind: str) -> int:
    query = select(func.coalesce(func.sum(AppliedReturn.amount_cents), 0)).where(
        AppliedReturn.batch_id == batch_id, AppliedReturn.kind == kind
    )
    return int(session.scalar(query) or 0)


def has_lump_sum(session: Session, batch_id: int, kind: str) -> bool:
    """A booking entry without details was credited for the batch (a record of no debit)."""
    query = select(
        exists().where(
            AppliedReturn.batch_id == batch_id, AppliedReturn.kind == kind, AppliedReturn.debit_request_id.is_(None)
        )
    )
    return bool(session.scalar(query))


def batch_totals(session: Session, batch_id: int) -> dict[str, tuple[int, int]]:
    """status -> (count, cents) of the batch's requests."""
    query = (
        select(DebitRequest.status, func.count(), func.coalesce(func.sum(DebitRequest.amount_cents), 0))
        .where(DebitRequest.batch_id == batch_id)
        .group_by(DebitRequest.status)
    )
    return {status: (int(count), int(cents)) for status, count, cents in session.execute(query)}


def date_file_answers(session: Session, file_id: int, kind: str, on: dt.date) -> None:
    """Give the rows of ``kind`` one file applied the date the file itself carries."""
    session.execute(
        update(AppliedReturn).where(AppliedReturn.return_file_id == file_id, AppliedReturn.kind == kind).values(booking_date=on)
    )


def set_batch_status(session: Session, batch_id: int, status: str) -> None:
    session.execute(update(Batch).where(Batch.id == batch_id).values(status=status))


def settle_waiting_requests(session: Session, batch_id: int, waiting: str, settled: str, at: dt.datetime) -> int:
    """Every request of the batch still ``waiting`` becomes ``settled``, in one UPDATE."""
    result = session.execute(
        update(table_of(DebitRequest))
        .where(DebitRequest.batch_id == batch_id, DebitRequest.status == waiting)
        .values(status=settled, status_changed_at=at)
    )
    return rowcount(result)


# --- the chunked path: plain rows for a chunk of records -----------------------------------
def _core(session: Session) -> Connection:
    """The session's connection: Core rows, without the ORM's result machinery (which costs
    more than the query on a chunk of thousands of rows). Nothing is autoflushed: the
    chunked path flushes the session before it reads."""
    return session.connection()



@dataclass(slots=True)
class RequestRow:
    """What applying a record reads and changes of a debit (mutable: the chunk's state)."""

    id: int
    end_to_end_id: str
    amount_cents: int
    status: str
    creditor_id: int
    mandate_id: int
    batch_id: int | None
    sequence_type: str | None
    attempt: int
    remittance: str | None
    final: bool
    reason_code: str | None
    reason: str | None
    # It carried amendment details (SMNDA, original mandate id or creditor identifier...).
    amended: bool = False
    amend_original_creditor_identifier: str | None = None


# A debit that carried amendment details in its file (see domain/assignment.amendment_for).
CARRIED_AMENDMENT = or_(
    DebitRequest.amend_original_mandate_id.is_not(None),
    DebitRequest.amend_original_creditor_identifier.is_not(None),
    DebitRequest.amend_original_iban.is_not(None),
    DebitRequest.amend_new_debtor_agent.is_(True),
)
_REQUEST_COLUMNS = (
    DebitRequest.id, DebitRequest.end_to_end_id, DebitRequest.amount_cents, DebitRequest.status,
    DebitRequest.creditor_id, DebitRequest.mandate_id, DebitRequest.batch_id, DebitRequest.sequence_type,
    DebitRequest.attempt, DebitRequest.remittance, DebitRequest.final, DebitRequest.reason_code, DebitRequest.reason,
    case((CARRIED_AMENDMENT, True), else_=False), DebitRequest.amend_original_creditor_identifier,
)


def request_rows_by_end_to_end_ids(session: Session, end_to_end_ids: Collection[str]) -> dict[str, RequestRow]:
    """The debits a segment's records name, locked (PostgreSQL) in id order.

    Every record is decided on its debit's status and written back by id: a second file
    applied at the same time about the same debit waits here for the first to commit, then
    reads what it left (READ COMMITTED returns the row's newest version once the lock is
    granted). Read without the lock, it decided on the status from before the first file
    and overwrote that file's outcome (tests/services/test_reconciliation_concurrency.py).
    SQLite takes the ledger's write lock at BEGIN IMMEDIATE instead."""
    if not end_to_end_ids:
        return {}
    query = (
        select(*_REQUEST_COLUMNS)
        .where(bulk.one_of(session, DebitRequest.end_to_end_id, end_to_end_ids))
        .order_by(DebitRequest.id)
        .with_for_update()
    )
    return {row[1]: RequestRow(*row) for row in _core(session).execute(query)}


def request_rows_covered(
    session: Session, *, statuses: Sequence[str], after_id: int, limit: int,
    batch_id: int | None = None, block_id: int | None = None,
) -> list[RequestRow]:
    """A page (by id) of the requests of a batch or of a block in ``statuses``, locked as
    ``request_rows_by_end_to_end_ids`` locks them (a row another writer changed meanwhile
    is returned as it left it, or not at all once it left ``statuses``)."""
    query = select(*_REQUEST_COLUMNS).where(DebitRequest.status.in_(statuses), DebitRequest.id > after_id)
    if block_id is not None:
        query = query.where(DebitRequest.block_id == block_id)
    else:
        query = query.where(DebitRequest.batch_id == batch_id)
    query = query.order_by(DebitRequest.id).limit(limit).with_for_update()
    return [RequestRow(*row) for row in _core(session).execute(query)]


def pending_request_rows(session: Session, mandate_ids: Collection[int], pending: str) -> list[RequestRow]:
    """The ``pending`` requests of these mandates, by id, locked (PostgreSQL) in id order.

    The caller cancels them by id. A collection run assigns pending requests without the
    mandate's lock: unlocked, a request it assigned after this read was cancelled here once
    the run committed, though its file carried it (tests/services/test_reconciliation_concurrency.py).
    Locked, the run's assignment waits for this transaction and leaves out what it
    cancelled (the run then stops on "changed during the run", as for any cancellation);
    or this read waits for the run's commit and no longer finds what it assigned.

    Searched by mandate, never in the queue index: the query tests ``status``, from which
    the queue index's predicate (``indexed_status = 'pending'``, migration 0012) cannot be
    proved. (Before 0012 the predicate read ``status`` and the query compared it through
    ``coalesce`` to the same end.) The reconciliation enqueues its retries
    as pending in the same transaction, after statistics that counted none: PostgreSQL
    took the queue for nearly empty, read it whole for each chunk and tested every pending
    request against the chunk's mandates, a read growing with every chunk
    (tests/db/test_pending_requests_plan.py)."""
    if not mandate_ids:
        return []
    query = select(*_REQUEST_COLUMNS).where(
        bulk.one_of(session, DebitRequest.mandate_id, mandate_ids), DebitRequest.status == pending
    )
    return [RequestRow(*row) for row in _core(session).execute(query.order_by(DebitRequest.id).with_for_update())]


def amended_request_ids_of_mandate(session: Session, mandate_id: int, statuses: Sequence[str]) -> list[int]:
    """The mandate's requests in ``statuses`` that carried amendment details."""
    query = select(DebitRequest.id).where(
        DebitRequest.mandate_id == mandate_id, DebitRequest.status.in_(statuses), CARRIED_AMENDMENT
    )
    return list(session.scalars(query))  # autoflushed: the record-by-record path reads its own changes


def request_ids_of_mandate(session: Session, mandate_id: int, statuses: Sequence[str]) -> list[int]:
    query = select(DebitRequest.id).where(DebitRequest.mandate_id == mandate_id, DebitRequest.status.in_(statuses))
    return list(session.scalars(query))


def applied_keys(session: Session, keys: Collection[str]) -> set[str]:
    """Those of ``keys`` an applied record already holds."""
    if not keys:
        return set()
    query = select(AppliedReturn.natural_key).where(bulk.one_of(session, AppliedReturn.natural_key, keys))
    return set(_core(session).scalars(query))


@dataclass(slots=True)
class MandateRow:
    id: int
    reference: str
    status: str
    status_reason: str | None
    first_collected_on: dt.date | None
    final_collected: bool
    debtor_account_id: int


def mandate_rows_for_update(session: Session, mandate_ids: Collection[int]) -> dict[int, MandateRow]:
    """The mandates, locked (PostgreSQL) in id order so that two writers never deadlock."""
    if not mandate_ids:
        return {}
    query = (
        select(
            Mandate.id, Mandate.reference, Mandate.status, Mandate.status_reason, Mandate.first_collected_on,
            Mandate.final_collected, Mandate.debtor_account_id,
        )
        .where(bulk.one_of(session, Mandate.id, mandate_ids))
        .order_by(Mandate.id)
        .with_for_update(of=Mandate)
    )
    return {row[0]: MandateRow(*row) for row in _core(session).execute(query)}


def requests_paying_invoices(session: Session, request_ids: Collection[int]) -> set[int]:
    """Those of the requests that paid at least one invoice."""
    if not request_ids:
        return set()
    query = select(RequestInvoice.debit_request_id).where(bulk.one_of(session, RequestInvoice.debit_request_id, request_ids))
    return set(_core(session).scalars(query.distinct()))


def executemany(session: Session, statement: UpdateBase, rows: list[dict[str, object]]) -> None:
    """``session.execute(statement, rows)``, every row with the same keys.

    On SQLite the rows go straight to the driver's executemany, each value through its
    column type's bind processor as SQLAlchemy would have done, because SQLAlchemy's own
    per-row work costs as much as SQLite's on 100,000 rows. A statement that needs more
    than the rows give (column defaults computed in Python) takes the ordinary path, as
    does every other database.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "sqlite":
        compiled = statement.compile(dialect=dialect, column_keys=list(rows[0]))
        order = compiled.positiontup
        if order is not None and set(order) == set(rows[0]) and not compiled.insert_prefetch and not compiled.update_prefetch:
            processors = [compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order]
            processed = [(index, _remembered(fn)) for index, fn in enumerate(processors) if fn is not None]
            values = itemgetter(*order) if len(order) > 1 else (lambda row: (row[order[0]],))
            params: list[tuple[object, ...]] = []
            for row in rows:
                line = values(row)
                if processed:
                    changed = list(line)
                    for index, fn in processed:
                        if changed[index] is not None:
                            changed[index] = fn(changed[index])
                    line = tuple(changed)
                params.append(line)
            connection.exec_driver_sql(str(compiled), params)
            return
    session.execute(statement, rows)


def _remembered(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` for one executemany, remembering its results: the dates and instants
    of a chunk's rows are few, and formatting each again costs more than the insert."""
    seen: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            result = seen[value] = process(value)
            return result
        except TypeError:  # not hashable
            return process(value)

    return remembered


def update_requests(session: Session, rows: list[dict[str, object]]) -> None:
    """UPDATE by id; every row has the same keys (``b_id`` plus the columns)."""
    _update_by_id(session, table_of(DebitRequest), rows)


def update_mandates(session: Session, rows: list[dict[str, object]]) -> None:
    _update_by_id(session, table_of(Mandate), rows)


def _update_by_id(session: Session, table: Any, rows: list[dict[str, object]]) -> None:
    """PostgreSQL: one ``UPDATE ... FROM unnest`` (``db/bulk.py``); SQLite: executemany."""
    if not rows:
        return
    if bulk.is_postgresql(session):
        bulk.update_by_id(session, table, [name for name in rows[0] if name != "b_id"], rows, id_key="b_id")
        return
    columns: dict[str, Any] = {name: bindparam(name) for name in rows[0] if name != "b_id"}
    executemany(session, table.update().where(table.c.id == bindparam("b_id")).values(columns), rows)


def _insert(session: Session, table: Any, rows: list[dict[str, object]]) -> None:
    """PostgreSQL: one ``INSERT ... SELECT FROM unnest`` (``db/bulk.py``); SQLite: executemany."""
    if rows and bulk.is_postgresql(session):
        bulk.insert(session, table, rows)
    else:
        executemany(session, insert(table), rows)


def insert_applied(session: Session, rows: list[dict[str, object]]) -> None:
    _insert(session, table_of(AppliedReturn), rows)


def insert_requests(session: Session, rows: list[dict[str, object]]) -> None:
    """New debit requests, ids included (the retries of the chunked path)."""
    _insert(session, table_of(DebitRequest), rows)


# --- pre-notifications of retries (retries.notify_retries) ---------------------------------
def requests_with_prenotification(session: Session, request_ids: Collection[int]) -> set[int]:
    """Those of the requests that were pre-notified already."""
    if not request_ids:
        return set()
    query = select(Prenotification.debit_request_id).where(bulk.one_of(session, Prenotification.debit_request_id, request_ids))
    return set(_core(session).execute(query).scalars())


def mandate_accounts(session: Session, mandate_ids: Collection[int]) -> dict[int, tuple[int, str]]:
    """Mandate id -> (its debtor account id, its reference)."""
    if not mandate_ids:
        return {}
    query = select(Mandate.id, Mandate.debtor_account_id, Mandate.reference).where(bulk.one_of(session, Mandate.id, mandate_ids))
    return {row[0]: (row[1], row[2]) for row in _core(session).execute(query)}


def insert_prenotifications(session: Session, rows: list[dict[str, object]]) -> None:
    _insert(session, table_of(Prenotification), rows)


# --- returned payments in bulk (services/accounts.record_returned_payments) ----------------
@dataclass(frozen=True, slots=True)
class ReturnedDebitRow:
    request_id: int
    creditor_id: int
    debtor_account_id: int
    amount_cents: int
    end_to_end_id: str
    status: str
    has_payment: bool


def requests_with_payment(session: Session, request_ids: Collection[int], payment_kind: str) -> set[int]:
    """Those of the requests with a payment booked (``ReturnedDebitRow.has_payment``), read
    on the unique (debit request, kind) index alone."""
    if not request_ids:
        return set()
    query = select(LedgerEntry.debit_request_id).where(
        bulk.one_of(session, LedgerEntry.debit_request_id, request_ids), LedgerEntry.kind == payment_kind
    )
    return set(_core(session).scalars(query))


def returned_debit_rows(
    session: Session, creditor_id: int, end_to_end_ids: Collection[str], payment_kind: str
) -> dict[str, ReturnedDebitRow]:
    """The creditor's debits by end-to-end id, with their account and whether a payment is booked.

    The creditor is checked on the rows read, not in the WHERE clause: with both, SQLite
    (no statistics) walks the creditor's whole queue index instead of the unique
    end-to-end id one, which is the difference between milliseconds and a second per chunk.
    """
    if not end_to_end_ids:
        return {}
    booked = exists().where(LedgerEntry.debit_request_id == DebitRequest.id, LedgerEntry.kind == payment_kind)
    query = (
        select(
            DebitRequest.id, DebitRequest.creditor_id, Mandate.debtor_account_id, DebitRequest.amount_cents,
            DebitRequest.end_to_end_id, DebitRequest.status, booked,
        )
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(bulk.one_of(session, DebitRequest.end_to_end_id, end_to_end_ids))
    )
    return {row[4]: ReturnedDebitRow(*row) for row in _core(session).execute(query) if row[1] == creditor_id}


def entry_hashes_by_keys(session: Session, creditor_id: int, keys: Collection[str]) -> dict[str, str | None]:
    """idempotency key -> content hash of the creditor's ledger entries holding these keys."""
    if not keys:
        return {}
    # One index search per key (bulk.each_key): the index is partial (migration 0010) and a
    # ledger of payments has no keyed entry in its statistics; with ``key = ANY(:keys)`` the
    # planner searched it by creditor alone and tested each entry against the chunk's 2,000
    # keys (2 s a chunk on a 1,000,000-debit ledger while the keys were also an unfolded
    # expression, see bulk.one_of). tests/db/test_replay_check_plan.py forces the worst plan
    # cache mode.
    key = LedgerEntry.idempotency_key
    query = bulk.each_key(
        session, select(key, LedgerEntry.content_hash).where(LedgerEntry.creditor_id == creditor_id), key, keys
    )
    # The key filter leaves no NULL key. (dict() of the result itself would take it for a
    # mapping, as it has keys(): its rows are listed first.)
    return dict(cast("list[tuple[str, str | None]]", _core(session).execute(query).all()))


def lock_accounts(session: Session, account_ids: Collection[int]) -> None:
    """Row locks on the accounts (PostgreSQL), in id order; SQLite serialises writers anyway."""
    if account_ids and session.get_bind().dialect.name != "sqlite":
        query = select(DebtorAccount.id).where(bulk.one_of(session, DebtorAccount.id, account_ids)).order_by(DebtorAccount.id)
        session.execute(query.with_for_update()).all()


def insert_ledger_entries(session: Session, rows: list[dict[str, object]]) -> None:
    _insert(session, table_of(LedgerEntry), rows)


# --- exceptions and policies ---------------------------------------------------------------
def exceptions(session: Session, *, status: str | None, after_id: int = 0, limit: int = 1000) -> list[ReturnException]:
    query = select(ReturnException).where(ReturnException.id > after_id)
    if status is not None:
        query = query.where(ReturnException.status == status)
    return list(session.scalars(query.order_by(ReturnException.id).limit(limit)))


def open_exception_with_reason(session: Session, reason: str) -> bool:
    query = select(ReturnException.id).where(ReturnException.status == "open", ReturnException.reason == reason)
    return session.scalars(query.limit(1)).first() is not None


def exception_for_update(session: Session, exception_id: int) -> ReturnException | None:
    return session.scalars(select(ReturnException).where(ReturnException.id == exception_id).with_for_update()).first()


def policy_override(session: Session, creditor_id: int, code: str) -> ReasonCodePolicy | None:
    query = select(ReasonCodePolicy).where(ReasonCodePolicy.creditor_id == creditor_id, ReasonCodePolicy.code == code)
    return session.scalars(query).first()


def policy_overrides(session: Session, creditor_id: int) -> dict[str, ReasonCodePolicy]:
    query = select(ReasonCodePolicy).where(ReasonCodePolicy.creditor_id == creditor_id)
    return {row.code: row for row in session.scalars(query)}


def add_policy(session: Session, row: ReasonCodePolicy) -> ReasonCodePolicy:
    session.add(row)
    session.flush()
    return row
