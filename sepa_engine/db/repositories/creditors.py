"""Looking creditors up: the one definition the other repositories re-export."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from sepa_engine.db.models import Creditor


def creditors(session: Session, code: str | None = None) -> Sequence[Creditor]:
    """Every creditor by id, or the one with ``code`` (none when unknown)."""
    query = select(Creditor).order_by(Creditor.id)
    if code is not None:
        query = query.where(Creditor.code == code)
    return session.scalars(query).all()


def creditor_by_id(session: Session, creditor_id: int) -> Creditor:
    """The creditor a row refers to (a foreign key guarantees it exists)."""
    return session.get_one(Creditor, creditor_id)


def creditor_by_code(session: Session, code: str) -> Creditor | None:
    return session.scalars(select(Creditor).where(Creditor.code == code)).one_or_none()


def creditors_by_codes(session: Session, codes: Collection[str]) -> dict[str, Creditor]:
    """The registered creditors among ``codes``, by code, in one statement."""
    if not codes:
        return {}
    return {row.code: row for row in session.scalars(select(Creditor).where(Creditor.code.in_(sorted(codes))))}
