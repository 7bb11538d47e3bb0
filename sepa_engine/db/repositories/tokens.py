"""Queries of the HTTP API's bearer tokens (services/api_tokens.py holds their rules)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from sepa_engine.db.models import Creditor

# Re-exported: creditors are looked up in one place (repositories/creditors.py).
from sepa_engine.db.repositories.creditors import creditor_by_code as creditor_by_code
from sepa_engine.db.service_models import ApiToken, ApiTokenCreditor


def add_token(session: Session, token: ApiToken, creditor_ids: Iterable[int]) -> ApiToken:
    """Store a token and the creditors it acts for; ``token.id`` is set on return."""
    session.add(token)
    session.flush()
    session.add_all(ApiTokenCreditor(token_id=token.id, creditor_id=creditor_id) for creditor_id in creditor_ids)
    session.flush()
    return token


def tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


def token(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def creditor_codes_by_token(session: Session) -> dict[int, list[str]]:
    """Every token's creditor codes, sorted."""
    query = (
        select(ApiTokenCreditor.token_id, Creditor.code)
        .join(Creditor, Creditor.id == ApiTokenCreditor.creditor_id)
        .order_by(ApiTokenCreditor.token_id, Creditor.code)
    )
    codes: dict[int, list[str]] = {}
    for token_id, code in session.execute(query):
        codes.setdefault(token_id, []).append(code)
    return codes


def live_token_grants(session: Session, token_hash: str) -> list[tuple[int, str, str, str]]:
    """(id, name, access, creditor code) of the token with this hash, one row per creditor;
    empty when unknown or revoked."""
    query = (
        select(ApiToken.id, ApiToken.name, ApiToken.access, Creditor.code)
        .join(ApiTokenCreditor, ApiTokenCreditor.token_id == ApiToken.id)
        .join(Creditor, Creditor.id == ApiTokenCreditor.creditor_id)
        .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
    )
    return [(token_id, name, access, code) for token_id, name, access, code in session.execute(query)]
