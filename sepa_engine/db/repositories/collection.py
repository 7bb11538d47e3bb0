"""Queries of the collection run: due requests, assignments, batches and their rows.

Large reads are keyset-paginated (``WHERE key > last ORDER BY key LIMIT n``), so a run over
a million requests holds one chunk at a time and never a long-lived cursor it would have
to share with its own writes. A file's entries are the exception: the stager reads them on a
connection of its own, one block per query, a chunk at a time (``batch_entries`` says why).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterator, Sequence
from typing import NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    case,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, aliased

from sepa_engine.db import bulk
from sepa_engine.db.models import (
    Batch,
    Creditor,
    DebitRequest,
    DebtorAccount,
    Dispute,
    DisputeInvoice,
    LedgerEntry,
    Mandate,
    PaymentBlock,
    RequestInvoice,
    Run,
)
from sepa_engine.db.repositories import rowcount, table_of

# Re-exported: creditors are looked up in one place (repositories/creditors.py).
from sepa_engine.db.repositories.creditors import creditor_by_id as creditor_by_id
from sepa_engine.db.repositories.creditors import creditors as creditors
from sepa_engine.domain.accounts import DisputeStatus

# The due rows this module reads and the decisions it stores are the domain's shapes.
from sepa_engine.domain.assignment import Decision as Decision
from sepa_engine.domain.assignment import DueRow as DueRow
from sepa_engine.domain.mandate import MandateStatus
from sepa_engine.domain.statuses import BatchStatus, RequestStatus


def start_run(session: Session, started_at: dt.datetime, business_date: dt.date, dry_run: bool) -> Run:
    run = Run(started_at=started_at, business_date=business_date, dry_run=dry_run)
    session.add(run)
    session.flush()
    return run


def finish_run(session: Session, run_id: int, finished_at: dt.datetime, outcome: str, assigned: int, refused: int, files: int) -> None:
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(finished_at=finished_at, outcome=outcome, assigned=assigned, refused=refused, files=files)
    )


def due_requests(
    session: Session, creditor_id: int, due_until: dt.date, chunk_size: int, *, behind_held_files: bool = False
) -> Iterator[list[DueRow]]:
    """Pending requests of a creditor due by ``due_until``, by mandate then id, in chunks.

    Requests of a held mandate (an MD06 refund) are not due: they wait for its release.

    ``behind_held_files`` leaves out the requests of mandates that have a debit in a file
    awaiting approval (they are due again once it is approved).
    """
    previous = aliased(Mandate)
    held = aliased(DebitRequest)
    held_on_mandate = (
        select(held.id)
        .join(Batch, Batch.id == held.batch_id)
        .where(held.mandate_id == DebitRequest.mandate_id, Batch.status == BatchStatus.AWAITING_APPROVAL.value)
        .exists()
    )
    last = (0, 0)
    while True:
        query = (
            select(
                DebitRequest.id,
                DebitRequest.mandate_id,
                DebitRequest.amount_cents,
                DebitRequest.requested_date,
                DebitRequest.final,
                DebitRequest.end_to_end_id,
                DebitRequest.remittance,
                Mandate.reference,
                Mandate.kind,
                Mandate.status,
                Mandate.signed_on,
                Mandate.iban,
                Mandate.bic,
                Mandate.first_collected_on,
                Mandate.last_collected_on,
                Mandate.final_collected,
                Mandate.amendment_pending,
                Mandate.presented_creditor_identifier,
                previous.reference,
                previous.iban,
                previous.bic,
                DebtorAccount.name,
                DebtorAccount.address_country,
                DebtorAccount.address_town,
            )
            .join(Mandate, Mandate.id == DebitRequest.mandate_id)
            .join(DebtorAccount, DebtorAccount.id == Mandate.debtor_account_id)
            .outerjoin(previous, previous.id == Mandate.supersedes_id)
            .where(
                DebitRequest.creditor_id == creditor_id,
                # Said of indexed_status, the queue index's predicate (models.DebitRequest).
                DebitRequest.indexed_status == RequestStatus.PENDING.value,
                DebitRequest.requested_date <= due_until,
                # A held mandate's requests wait, pending, for its release (MandateStatus.HELD).
                Mandate.status != MandateStatus.HELD.value,
                tuple_(DebitRequest.mandate_id, DebitRequest.id) > tuple_(last[0], last[1]),
                # Implied by the join and the keyset, but PostgreSQL does not carry an
                # inequality across a join: without it a merge join read the mandates from the
                # first one for every chunk (1,000,000 requests: 18.6 s, quadratic in the run).
                Mandate.id >= last[0],
            )
            .order_by(DebitRequest.mandate_id, DebitRequest.id)
            .limit(chunk_size)
        )
        if behind_held_files:
            query = query.where(~held_on_mandate)
        # Through the session's connection: plain Core rows, without the ORM's result layer
        # (nothing is pending to autoflush: the run writes with Core statements).
        rows = list(map(DueRow._make, session.connection().execute(query).all()))
        if not rows:
            return
        yield rows
        last = (rows[-1].mandate_id, rows[-1].id)


def update_requests(session: Session, values: list[dict[str, object]]) -> None:
    """Bulk UPDATE by primary key, one statement per set of columns.

    PostgreSQL: one ``UPDATE ... FROM unnest(arrays)`` per set (``db/bulk.py``), so a chunk of
    20,000 rows is one statement instead of 20,000 through the driver's executemany.
    SQLite: one Core executemany, its fast path (no network round trip per row; the ORM's
    bulk path costs as much again in bookkeeping we do not need here).
    """
    table = table_of(DebitRequest)
    by_columns: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for row in values:
        by_columns.setdefault(tuple(sorted(k for k in row if k != "id")), []).append(row)
    postgresql = bulk.is_postgresql(session)
    for columns, rows in by_columns.items():
        if postgresql:
            bulk.update_by_id(session, table, columns, rows)
            continue
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({column: bindparam(column) for column in columns})
        )
        session.execute(statement, [{"_id": r["id"], **{c: r[c] for c in columns}} for r in rows])


# --- the run's decisions, before they reach debit_requests ------------------------------------
#
# Assignment decides each request's collection date, sequence type and amendment; planning
# then cuts the decided requests into files and blocks in (collection date, sequence type,
# id) order. Writing the decision to debit_requests and then the batch and block ids again
# would give every request two new row versions (on PostgreSQL each with an entry in each of
# the table's indexes, none of them HOT since every changed column is indexed). The decisions
# go to a narrow temporary table instead, private to the transaction's connection, and each
# planned block reaches debit_requests in one UPDATE ... FROM it: one row version per request
# for assignment and planning together. Refusals are written directly (they are not planned).

_scratch = MetaData()
decisions = Table(
    "collection_decisions",
    _scratch,
    # The primary key is planning's read order, so the keyset pages are index range scans.
    Column("collection_date", Date, primary_key=True),
    Column("sequence_type", String(4), primary_key=True),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("amend_original_mandate_id", String(35)),
    Column("amend_original_creditor_identifier", String(35)),
    Column("amend_original_creditor_name", String(70)),
    Column("amend_original_iban", String(34)),
    Column("amend_new_debtor_agent", Boolean, nullable=False),
    prefixes=["TEMPORARY"],
)
# Decision (domain/assignment.py) is a row of this table, in its column order
# (tests/db/test_collection_decisions.py).
DECISION_COLUMNS = tuple(c.name for c in decisions.c)
_INSERT_DECISION = (
    f"INSERT INTO {decisions.name} ({', '.join(DECISION_COLUMNS)}) VALUES ({', '.join('?' * len(DECISION_COLUMNS))})"
)


def open_decisions(session: Session) -> None:
    """An empty decisions table for one creditor's assignment. Created inside the run's
    transaction: a rollback takes it away on both backends; a table left on a pooled
    SQLite connection by anything else is dropped first."""
    connection = session.connection()
    decisions.drop(connection, checkfirst=True)
    decisions.create(connection)


def add_decisions(session: Session, rows: list[Decision]) -> None:
    """Store a chunk of decisions."""
    if not rows:
        return
    if bulk.is_postgresql(session):
        bulk.insert(session, decisions, [row._asdict() for row in rows])
    else:
        # The driver's executemany over plain tuples: SQLAlchemy's builds and processes a
        # parameter dict per row (100,000 decisions: 0.78 -> 0.50 s CPU, and the run no
        # longer builds the dicts). The values are what SQLAlchemy would bind: a date as
        # its ISO text (SQLite's DATE storage), a bool as an int.
        session.connection().exec_driver_sql(_INSERT_DECISION, [
            (row.collection_date.isoformat(), *row[1:8], int(row.amend_new_debtor_agent)) for row in rows
        ])


def seal_decisions(session: Session) -> None:
    """PostgreSQL's autovacuum never analyzes a temporary table: without statistics the
    planner guesses its size and may hash-join the whole debit_requests table instead of
    probing its primary key per decided row."""
    if bulk.is_postgresql(session):
        session.execute(text(f"ANALYZE {decisions.name}"))


def close_decisions(session: Session) -> None:
    decisions.drop(session.connection(), checkfirst=True)


def decided(session: Session, chunk_size: int) -> Iterator[tuple[int, dt.date, str, int]]:
    """(id, collection date, sequence type, amount) of the decisions, in block order."""
    last: tuple[dt.date, str, int] | None = None
    d = decisions.c
    while True:
        query = (
            select(d.id, d.collection_date, d.sequence_type, d.amount_cents)
            .order_by(d.collection_date, d.sequence_type, d.id)
            .limit(chunk_size)
        )
        if last is not None:
            query = query.where(tuple_(d.collection_date, d.sequence_type, d.id) > tuple_(*last))
        rows = cast("Sequence[tuple[int, dt.date, str, int]]", session.execute(query).all())
        if not rows:
            return
        yield from ((r[0], r[1], r[2], r[3]) for r in rows)
        last = (rows[-1][1], rows[-1][2], rows[-1][0])


def assign_block(
    session: Session,
    *,
    at: dt.datetime,
    batch_id: int,
    block_id: int,
    collection_date: dt.date,
    sequence_type: str,
    first_id: int,
    last_id: int,
) -> int:
    """The decided requests of one planned block, ``first_id`` to ``last_id`` of its
    (collection date, sequence type), become ASSIGNED to it in one statement; returns how
    many. Only PENDING rows move, so a request can never be put in two blocks."""
    requests = table_of(DebitRequest)
    d = decisions.c
    result = session.execute(
        update(requests)
        .where(
            requests.c.id == d.id,
            # Said of both tables, so that the planner reads only the block's range of
            # requests: bounded on the decisions alone, PostgreSQL hash-joined a sequential
            # scan of the whole table for every block after the first (1,000,000 requests in
            # ten blocks: 2.2 s a block against 1.6 s; tests/db/test_assign_block_plan.py).
            requests.c.id.between(first_id, last_id),
            requests.c.status == RequestStatus.PENDING.value,
            d.collection_date == collection_date,
            d.sequence_type == sequence_type,
            d.id.between(first_id, last_id),
        )
        .values(
            status=RequestStatus.ASSIGNED.value, status_changed_at=at,
            collection_date=collection_date, sequence_type=sequence_type, reason_code=None, reason=None,
            amend_original_mandate_id=d.amend_original_mandate_id,
            amend_original_creditor_identifier=d.amend_original_creditor_identifier,
            amend_original_creditor_name=d.amend_original_creditor_name,
            amend_original_iban=d.amend_original_iban,
            amend_new_debtor_agent=d.amend_new_debtor_agent,
            batch_id=batch_id, block_id=block_id,
        )
    )
    return rowcount(result)


def add_batch(session: Session, batch: Batch) -> Batch:
    session.add(batch)
    session.flush()
    return batch


def add_block(session: Session, block: PaymentBlock) -> PaymentBlock:
    session.add(block)
    session.flush()
    return block


def batches_in(session: Session, statuses: Sequence[BatchStatus], creditor_id: int | None = None) -> Sequence[Batch]:
    query = select(Batch).where(Batch.status.in_([s.value for s in statuses])).order_by(Batch.id)
    if creditor_id is not None:
        query = query.where(Batch.creditor_id == creditor_id)
    return session.scalars(query).all()


def list_batches(
    session: Session,
    *,
    creditor_code: str | None = None,
    statuses: Sequence[BatchStatus] = (),
    business_from: dt.date | None = None,
    business_to: dt.date | None = None,
    limit: int = 100,
) -> Sequence[tuple[Batch, str, dt.date]]:
    """(batch, creditor code, business date of its run), newest first. The dates filter on
    the run's business date (``collect --date``), both ends included."""
    query = (
        select(Batch, Creditor.code, Run.business_date)
        .join(Creditor, Creditor.id == Batch.creditor_id)
        .join(Run, Run.id == Batch.run_id)
        .order_by(Batch.id.desc())
        .limit(limit)
    )
    if creditor_code is not None:
        query = query.where(Creditor.code == creditor_code)
    if statuses:
        query = query.where(Batch.status.in_([s.value for s in statuses]))
    if business_from is not None:
        query = query.where(Run.business_date >= business_from)
    if business_to is not None:
        query = query.where(Run.business_date <= business_to)
    return [(b, code, day) for b, code, day in session.execute(query).all()]


def batch(session: Session, batch_id: int) -> Batch:
    return session.get_one(Batch, batch_id)


def find_batch(session: Session, batch_id: int) -> Batch | None:
    return session.get(Batch, batch_id)


class EntryRow(NamedTuple):
    """One transaction of a file, in file order (a named tuple for the reason of DueRow)."""

    block_id: int
    end_to_end_id: str
    amount_cents: int
    remittance: str | None
    mandate_reference: str
    mandate_signed_on: dt.date
    mandate_iban: str
    mandate_bic: str | None
    debtor_name: str
    debtor_country: str | None
    debtor_town: str | None
    debtor_street: str | None
    debtor_building_number: str | None
    debtor_postcode: str | None
    amend_original_mandate_id: str | None
    amend_original_creditor_identifier: str | None
    amend_original_creditor_name: str | None
    amend_original_iban: str | None
    amend_new_debtor_agent: bool
    ultimate_debtor_name: str | None
    ultimate_debtor_id: str | None
    ultimate_creditor_name: str | None
    ultimate_creditor_id: str | None
    id: int


def batch_entries(session: Session, batch_id: int, chunk_size: int) -> Generator[EntryRow, None, None]:
    """The batch's transactions in file order (block position, then request id), one query
    per block, fetched ``chunk_size`` rows at a time (a server-side cursor on PostgreSQL).

    Not keyset pages: the block's rows were written by this run, after the statistics were
    taken, which said every request had no block. PostgreSQL then took each page's
    ``block_id = ? AND id > ? ORDER BY id LIMIT n`` for a row or two and planned it as a
    bitmap scan of the rest of the block and a sort: every page read all the rows after it
    (100,000 requests in two blocks, pages of 5,000: 20 reads of 60 to 170 ms, against 170 ms
    for a block read once)."""
    blocks = session.scalars(
        select(PaymentBlock.id).where(PaymentBlock.batch_id == batch_id).order_by(PaymentBlock.position)
    ).all()
    for block_id in blocks:
        query = (
            select(
                DebitRequest.block_id,
                DebitRequest.end_to_end_id,
                DebitRequest.amount_cents,
                DebitRequest.remittance,
                Mandate.reference,
                Mandate.signed_on,
                Mandate.iban,
                Mandate.bic,
                DebtorAccount.name,
                DebtorAccount.address_country,
                DebtorAccount.address_town,
                DebtorAccount.address_street,
                DebtorAccount.address_building_number,
                DebtorAccount.address_postcode,
                DebitRequest.amend_original_mandate_id,
                DebitRequest.amend_original_creditor_identifier,
                DebitRequest.amend_original_creditor_name,
                DebitRequest.amend_original_iban,
                DebitRequest.amend_new_debtor_agent,
                Mandate.ultimate_debtor_name,
                Mandate.ultimate_debtor_id,
                DebitRequest.ultimate_creditor_name,
                DebitRequest.ultimate_creditor_id,
                DebitRequest.id,
            )
            .join(Mandate, Mandate.id == DebitRequest.mandate_id)
            .join(DebtorAccount, DebtorAccount.id == Mandate.debtor_account_id)
            .where(DebitRequest.block_id == block_id)
            .order_by(DebitRequest.id)
        )
        result = session.connection().execution_options(yield_per=chunk_size).execute(query)
        with result:
            for rows in result.partitions():
                yield from map(EntryRow._make, rows)


def lock_batch(session: Session, batch_id: int) -> Batch | None:
    """The batch, read afresh and row-locked until the transaction ends (PostgreSQL; SQLite's
    write transactions already hold the database lock)."""
    query = select(Batch).where(Batch.id == batch_id).with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).first()


def approve_batch(session: Session, batch_id: int, actor: str, at: dt.datetime, path: str) -> bool:
    """AWAITING_APPROVAL -> PUBLISHED, only if it still awaits approval: False when another
    approval got there first."""
    result = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.status == BatchStatus.AWAITING_APPROVAL.value)
        .values(status=BatchStatus.PUBLISHED.value, approved_by=actor, approved_at=at, published_at=at, path=path)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


class HeldDebitProblem(NamedTuple):
    request_id: int
    end_to_end_id: str
    problem: str


_HOLDING = tuple(s.value for s in DisputeStatus if s.holds_invoices())


def held_debit_problems(session: Session, batch_id: int) -> list[HeldDebitProblem]:
    """The debits of a held file the ledger no longer allows, by request id: those whose
    mandate is no longer in force (revoked, blocked, held, lapsed or replaced since the file
    was written) and those that pay an invoice now under a dispute that holds it. Revocations
    and disputes withdraw pending requests only; a held file is not at the bank yet."""
    mandates = session.execute(
        select(DebitRequest.id, DebitRequest.end_to_end_id, Mandate.reference, Mandate.status)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(DebitRequest.batch_id == batch_id, Mandate.status != MandateStatus.ACTIVE.value)
    )
    disputed = session.execute(
        select(DebitRequest.id, DebitRequest.end_to_end_id, LedgerEntry.document_number, Dispute.id)
        .join(RequestInvoice, RequestInvoice.debit_request_id == DebitRequest.id)
        .join(DisputeInvoice, DisputeInvoice.entry_id == RequestInvoice.entry_id)
        .join(Dispute, Dispute.id == DisputeInvoice.dispute_id)
        .join(LedgerEntry, LedgerEntry.id == RequestInvoice.entry_id)
        .where(DebitRequest.batch_id == batch_id, Dispute.status.in_(_HOLDING))
    )
    found = [HeldDebitProblem(rid, e2e, f"mandate {reference} is {status}") for rid, e2e, reference, status in mandates]
    found += [
        HeldDebitProblem(rid, e2e, f"pays invoice {number}, under dispute {dispute}") for rid, e2e, number, dispute in disputed
    ]
    return sorted(found)


def end_to_end_ids(session: Session, request_ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(select(DebitRequest.id, DebitRequest.end_to_end_id).where(DebitRequest.id.in_(request_ids)))
    return {request_id: e2e for request_id, e2e in rows}


def set_batch(session: Session, batch_id: int, **values: object) -> None:
    session.execute(update(Batch).where(Batch.id == batch_id).values(**values))


def submit_batch_requests(session: Session, batch_id: int, at: dt.datetime) -> int:
    result = session.execute(
        update(DebitRequest)
        .where(DebitRequest.batch_id == batch_id, DebitRequest.status == RequestStatus.ASSIGNED.value)
        .values(status=RequestStatus.SUBMITTED.value, status_changed_at=at)
    )
    return rowcount(result)


# Links followed from a replaced mandate to the one in force, one statement each: a debtor
# changes bank a few times in a mandate's life, and a loop of links cannot run for ever.
_REPLACEMENTS_MAX = 20


def release_batch_requests(session: Session, batch_id: int, at: dt.datetime) -> int:
    """A batch that cannot be written, or that will not be sent (withdrawn, re-dated), gives
    its requests back to the queue, unassigned. A request whose mandate was replaced meanwhile
    (new bank details) goes to the mandate that replaced it, as a pending request did when
    the mandate was replaced (``registry.register_mandate``): left on the replaced one, the
    next run would refuse it (MD01, "not active")."""
    replaced = list(session.scalars(
        select(DebitRequest.id)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id)
        .where(DebitRequest.batch_id == batch_id, DebitRequest.status == RequestStatus.ASSIGNED.value,
               Mandate.status == MandateStatus.SUPERSEDED.value)
    ))
    result = session.execute(
        update(DebitRequest)
        .where(DebitRequest.batch_id == batch_id, DebitRequest.status == RequestStatus.ASSIGNED.value)
        .values(
            status=RequestStatus.PENDING.value,
            status_changed_at=at,
            batch_id=None,
            block_id=None,
            run_id=None,
            collection_date=None,
            sequence_type=None,
        )
    )
    if replaced:
        _follow_replacements(session, replaced)
    return rowcount(result)


def _follow_replacements(session: Session, request_ids: list[int]) -> None:
    successor = (
        select(Mandate.id).where(Mandate.supersedes_id == DebitRequest.mandate_id)
        .order_by(Mandate.id.desc()).limit(1).scalar_subquery()
    )
    superseded = select(Mandate.id).where(Mandate.status == MandateStatus.SUPERSEDED.value)
    for _ in range(_REPLACEMENTS_MAX):  # one link of each chain per statement
        moved = session.execute(
            update(DebitRequest)
            .where(DebitRequest.id.in_(request_ids), DebitRequest.mandate_id.in_(superseded), successor.is_not(None))
            .values(mandate_id=successor)
            .execution_options(synchronize_session=False)
        )
        if not rowcount(moved):
            return


def record_presentation(session: Session, batch_id: int, creditor_identifier: str) -> None:
    """Mandate history moves when a file reaches the bank, not when it is planned: a file
    that fails before publication must leave the next attempt FRST.

    One UPDATE ... FROM an aggregate per mandate (PostgreSQL, and SQLite since 3.33): a
    correlated subquery per mandate row let PostgreSQL's planner walk the whole batch for
    each mandate, quadratic at 100,000 debits.
    """
    per_mandate = (
        select(
            DebitRequest.mandate_id.label("mandate_id"),
            func.min(DebitRequest.collection_date).label("first_date"),
            func.max(DebitRequest.collection_date).label("last_date"),
            func.max(case((DebitRequest.final.is_(True), 1), else_=0)).label("any_final"),
        )
        .where(DebitRequest.batch_id == batch_id)
        .group_by(DebitRequest.mandate_id)
        .subquery()
    )
    session.execute(
        update(Mandate)
        .where(Mandate.id == per_mandate.c.mandate_id)
        .values(
            first_collected_on=func.coalesce(Mandate.first_collected_on, per_mandate.c.first_date),
            last_collected_on=case(
                (Mandate.last_collected_on.is_(None), per_mandate.c.last_date),
                (Mandate.last_collected_on < per_mandate.c.last_date, per_mandate.c.last_date),
                else_=Mandate.last_collected_on,
            ),
            final_collected=case((per_mandate.c.any_final == 1, True), else_=Mandate.final_collected),
            presented_creditor_identifier=creditor_identifier,
            amendment_pending=False,
        )
        .execution_options(synchronize_session=False)
    )


def requests_of_batch(session: Session, batch_id: int, status: RequestStatus | None = None) -> Sequence[DebitRequest]:
    query = select(DebitRequest).where(DebitRequest.batch_id == batch_id).order_by(DebitRequest.id)
    if status is not None:
        query = query.where(DebitRequest.status == status.value)
    return session.scalars(query).all()


def refused_in_run(session: Session, run_id: int, limit: int | None = None) -> Sequence[tuple[DebitRequest, str]]:
    query = (
        select(DebitRequest, Creditor.code)
        .join(Creditor, Creditor.id == DebitRequest.creditor_id)
        .where(DebitRequest.run_id == run_id, DebitRequest.indexed_status == RequestStatus.REFUSED.value)
        .order_by(DebitRequest.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [(r, c) for r, c in session.execute(query).all()]


def refused_of_creditor_in_run(session: Session, run_id: int, creditor_id: int) -> Sequence[DebitRequest]:
    query = select(DebitRequest).where(
        DebitRequest.run_id == run_id,
        DebitRequest.creditor_id == creditor_id,
        DebitRequest.indexed_status == RequestStatus.REFUSED.value,
    )
    return session.scalars(query.order_by(DebitRequest.id)).all()


def count_refused_in_run(session: Session, run_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                DebitRequest.run_id == run_id, DebitRequest.indexed_status == RequestStatus.REFUSED.value,
            )
        )
        or 0
    )
