"""Queries behind the review summaries operations staff read beside each file.

Every query is bounded whatever the size of the file: totals are GROUP BYs, the largest
debits an ORDER BY ... LIMIT, and each list a LIMIT with a separate COUNT for the
"and N more" line. A summary of a 100,000-transaction file holds a few dozen rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, aliased

from sepa_engine.db.models import Batch, Creditor, DebitRequest, DebtorAccount, Mandate
from sepa_engine.db.returns_models import AppliedReturn, ReturnFile
from sepa_engine.domain.statuses import RequestStatus


@dataclass(frozen=True, slots=True)
class Group:
    collection_date: dt.date
    sequence_type: str
    count: int
    sum_cents: int


@dataclass(frozen=True, slots=True)
class Debit:
    end_to_end_id: str
    amount_cents: int
    debtor_name: str
    iban: str
    mandate_reference: str
    sequence_type: str | None
    collection_date: dt.date | None


@dataclass(frozen=True, slots=True)
class AmendedDebit:
    debit: Debit
    original_mandate_reference: str | None
    original_creditor_identifier: str | None
    original_iban: str | None
    new_debtor_agent: bool
    # The IBAN of the mandate this one replaced (a change of bank, SMNDA, carries no
    # original account in the file; the ledger still knows it).
    previous_iban: str | None = None


@dataclass(frozen=True, slots=True)
class BankAnswer:
    """What one bank file said about the batch's debits, for one kind and reason code."""

    file_name: str
    message: str | None
    imported_at: dt.datetime
    kind: str
    reason_code: str | None
    count: int
    sum_cents: int
    # The latest date the file gave these records (a booking date; for an acknowledgement,
    # the report's own date).
    dated: dt.date | None = None


@dataclass(frozen=True, slots=True)
class FileLine:
    """One file of a creditor, for its index page."""

    batch_id: int
    message_id: str
    file_name: str
    path: str | None
    status: str
    created_at: dt.datetime
    count: int
    sum_cents: int


@dataclass(frozen=True, slots=True)
class Refusal:
    end_to_end_id: str
    amount_cents: int
    debtor_name: str
    mandate_reference: str
    reason_code: str | None
    reason: str | None


_DEBIT_COLUMNS = (
    DebitRequest.end_to_end_id,
    DebitRequest.amount_cents,
    DebtorAccount.name,
    Mandate.iban,
    Mandate.reference,
    DebitRequest.sequence_type,
    DebitRequest.collection_date,
)


def _with_debtor(query: Select) -> Select:  # type: ignore[type-arg]
    return query.join(Mandate, Mandate.id == DebitRequest.mandate_id).join(
        DebtorAccount, DebtorAccount.id == Mandate.debtor_account_id
    )


def _first(where: Sequence[ColumnElement[bool]], order: Sequence[Any], limit: int) -> Any:
    """The ids of the first ``limit`` requests matching ``where`` in ``order``, chosen from
    debit_requests alone: joined first, both backends looked up the mandate and the account
    of every debit of the file before keeping ten (1.1 s for the largest debits of a
    100,000-transaction file on PostgreSQL, against a few milliseconds)."""
    return select(DebitRequest.id).where(*where).order_by(*order).limit(limit).subquery()


def totals_by_date_and_type(session: Session, batch_id: int) -> list[Group]:
    """Count and sum of the batch's debits per collection date and sequence type, from the
    requests themselves (not from the recorded blocks), so the summary cross-checks them."""
    query = (
        select(DebitRequest.collection_date, DebitRequest.sequence_type, func.count(), func.sum(DebitRequest.amount_cents))
        .where(DebitRequest.batch_id == batch_id)
        .group_by(DebitRequest.collection_date, DebitRequest.sequence_type)
        .order_by(DebitRequest.collection_date, DebitRequest.sequence_type)
    )
    # A batch's requests all carry both columns: they are set when a request is assigned to it.
    rows = cast("Sequence[tuple[dt.date, str, int, int | None]]", session.execute(query).all())
    return [Group(d, s, int(c), int(a or 0)) for d, s, c, a in rows]


def largest_debits(session: Session, batch_id: int, limit: int = 10) -> list[Debit]:
    """The largest debits of a batch, ties by request id (the database keeps only the top N)."""
    order = (DebitRequest.amount_cents.desc(), DebitRequest.id)
    top = _first((DebitRequest.batch_id == batch_id,), order, limit)
    query = _with_debtor(select(*_DEBIT_COLUMNS).join(top, top.c.id == DebitRequest.id)).order_by(*order)
    return [Debit(*row) for row in session.execute(query)]


def first_collections(session: Session, batch_id: int, limit: int) -> tuple[list[Debit], int]:
    """The batch's FRST debits (the first `limit`, by request id) and how many there are."""
    where = (DebitRequest.batch_id == batch_id, DebitRequest.sequence_type == "FRST")
    top = _first(where, (DebitRequest.id,), limit)
    rows = session.execute(
        _with_debtor(select(*_DEBIT_COLUMNS).join(top, top.c.id == DebitRequest.id)).order_by(DebitRequest.id)
    )
    total = session.scalar(select(func.count()).select_from(DebitRequest).where(*where))
    return [Debit(*row) for row in rows], int(total or 0)


def _is_amended() -> ColumnElement[bool]:
    return (
        (DebitRequest.amend_original_mandate_id.is_not(None))
        | (DebitRequest.amend_original_creditor_identifier.is_not(None))
        | (DebitRequest.amend_original_iban.is_not(None))
        | (DebitRequest.amend_new_debtor_agent.is_(True))
    )


def count_amendments(session: Session, batch_id: int) -> int:
    query = select(func.count()).select_from(DebitRequest).where(DebitRequest.batch_id == batch_id, _is_amended())
    return int(session.scalar(query) or 0)


def amendments(session: Session, batch_id: int, limit: int) -> tuple[list[AmendedDebit], int]:
    """Debits carrying a mandate amendment (what changed since the bank last saw the
    mandate), the first `limit` by request id, and how many there are."""
    previous = aliased(Mandate)
    top = _first((DebitRequest.batch_id == batch_id, _is_amended()), (DebitRequest.id,), limit)
    query = (
        _with_debtor(select(
            *_DEBIT_COLUMNS,
            DebitRequest.amend_original_mandate_id,
            DebitRequest.amend_original_creditor_identifier,
            DebitRequest.amend_original_iban,
            DebitRequest.amend_new_debtor_agent,
            previous.iban,
        ).join(top, top.c.id == DebitRequest.id))
        .outerjoin(previous, previous.id == Mandate.supersedes_id)
        .order_by(DebitRequest.id)
    )
    found = [AmendedDebit(Debit(*row[:7]), row[7], row[8], row[9], bool(row[10]), row[11]) for row in session.execute(query)]
    return found, count_amendments(session, batch_id)


def refused_for_creditor_in_run(session: Session, run_id: int, creditor_id: int, limit: int = 50) -> tuple[list[Refusal], int]:
    """Requests of this creditor that the run refused (first `limit` by id), and how many."""
    where = (
        DebitRequest.run_id == run_id,
        DebitRequest.creditor_id == creditor_id,
        DebitRequest.indexed_status == RequestStatus.REFUSED.value,  # the refused index's predicate
    )
    query = (
        _with_debtor(select(
            DebitRequest.end_to_end_id, DebitRequest.amount_cents, DebtorAccount.name, Mandate.reference,
            DebitRequest.reason_code, DebitRequest.reason,
        ))
        .where(*where)
        .order_by(DebitRequest.id)
        .limit(limit)
    )
    total = session.scalar(select(func.count()).select_from(DebitRequest).where(*where))
    return [Refusal(*row) for row in session.execute(query)], int(total or 0)


def refused_reasons(session: Session, run_id: int, creditor_id: int) -> Sequence[tuple[str | None, int]]:
    """How many of this creditor's requests the run refused, per reason code."""
    query = (
        select(DebitRequest.reason_code, func.count())
        .where(
            DebitRequest.run_id == run_id,
            DebitRequest.creditor_id == creditor_id,
            DebitRequest.indexed_status == RequestStatus.REFUSED.value,
        )
        .group_by(DebitRequest.reason_code)
        .order_by(DebitRequest.reason_code)
    )
    return [(code, int(n)) for code, n in session.execute(query)]


def bank_answers(session: Session, batch_id: int) -> list[BankAnswer]:
    """The bank's answers about the batch, per file, kind and reason code, oldest first
    (a GROUP BY: a few rows whatever the size of the file)."""
    query = (
        select(
            ReturnFile.path, ReturnFile.message, func.min(ReturnFile.imported_at), AppliedReturn.kind, AppliedReturn.reason_code,
            func.count(), func.coalesce(func.sum(AppliedReturn.amount_cents), 0), func.max(AppliedReturn.booking_date),
        )
        .join(ReturnFile, ReturnFile.id == AppliedReturn.return_file_id)
        .where(AppliedReturn.batch_id == batch_id)
        .group_by(ReturnFile.id, ReturnFile.path, ReturnFile.message, AppliedReturn.kind, AppliedReturn.reason_code)
        .order_by(func.min(ReturnFile.imported_at), ReturnFile.id, AppliedReturn.kind, AppliedReturn.reason_code)
    )
    return [
        BankAnswer(str(path).rsplit("/", 1)[-1], message, imported, kind, code, int(count), int(cents or 0), dated)
        for path, message, imported, kind, code, count, cents, dated in session.execute(query)
    ]


def creditor_files(session: Session, creditor_id: int, limit: int) -> tuple[list[FileLine], int]:
    """The creditor's latest files (not the planned or failed ones), newest first, and how many."""
    where = (Batch.creditor_id == creditor_id, Batch.status.not_in(("planned", "failed")))
    rows = session.execute(
        select(Batch.id, Batch.message_id, Batch.file_name, Batch.path, Batch.status, Batch.created_at, Batch.count, Batch.sum_cents)
        .where(*where)
        .order_by(Batch.id.desc())
        .limit(limit)
    )
    total = session.scalar(select(func.count()).select_from(Batch).where(*where))
    return [FileLine(*row) for row in rows], int(total or 0)


def batches_with_creditor(session: Session, message_ids: Sequence[str]) -> list[tuple[Batch, Creditor]]:
    rows = session.execute(
        select(Batch, Creditor).join(Creditor, Creditor.id == Batch.creditor_id).where(Batch.message_id.in_(message_ids)).order_by(Batch.id)
    ).all()
    return [(batch, creditor) for batch, creditor in rows]


@dataclass(frozen=True, slots=True)
class NamedParty:
    """An ultimate party (UltmtCdtr or UltmtDbtr) that some debits of a batch carry."""

    name: str | None
    identifier: str | None
    count: int


def _named_parties(session: Session, batch_id: int, name: Any, identifier: Any, limit: int, *joins: Any) -> tuple[list[NamedParty], int]:
    """The parties the batch's debits carry in the columns given (the `limit` most used) and how
    many different ones there are."""
    # count(*) OVER () runs after the GROUP BY: each row also says how many groups there are,
    # so the debits are grouped once for the list and its "and N more" line.
    grouped = select(name, identifier, func.count().label("n"), func.count().over().label("groups")).select_from(DebitRequest)
    for target, on in joins:
        grouped = grouped.join(target, on)
    grouped = grouped.where(DebitRequest.batch_id == batch_id, name.is_not(None) | identifier.is_not(None)).group_by(name, identifier)
    rows = session.execute(grouped.order_by(func.count().desc(), name, identifier).limit(limit)).all()
    total = int(rows[0][3]) if rows else 0
    return [NamedParty(n, i, int(count)) for n, i, count, _groups in rows], total


def debit_ultimate_creditors(session: Session, batch_id: int, limit: int) -> tuple[list[NamedParty], int]:
    """The ultimate creditors the batch's debits name themselves (UltmtCdtr of a transaction)."""
    return _named_parties(session, batch_id, DebitRequest.ultimate_creditor_name, DebitRequest.ultimate_creditor_id, limit)


def debit_ultimate_debtors(session: Session, batch_id: int, limit: int) -> tuple[list[NamedParty], int]:
    """The ultimate debtors the batch's debits carry from their mandates (UltmtDbtr)."""
    return _named_parties(
        session, batch_id, Mandate.ultimate_debtor_name, Mandate.ultimate_debtor_id, limit,
        (Mandate, Mandate.id == DebitRequest.mandate_id),
    )
