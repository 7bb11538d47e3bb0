"""Bearer tokens of the HTTP API: created, listed, revoked, and resolved on each request.

A token is ``sek_`` followed by 43 random URL-safe characters (256 bits). It is shown once,
when created; the ledger keeps only its sha256 and its first characters (to tell tokens
apart in a list). A token acts for one or more creditors and is ``read`` or ``write``
(write implies read). A revoked token is refused from the next request on.

Services never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from sepa_engine import errors
from sepa_engine.clock import Clock
from sepa_engine.db.models import Creditor
from sepa_engine.db.repositories import tokens as repo
from sepa_engine.db.service_models import ApiToken
from sepa_engine.services.inputs import ApiTokenInput

PREFIX = "sek_"
READ = "read"
WRITE = "write"
ACCESS = (READ, WRITE)
_SHOWN = 10  # characters of the token kept in clear: "sek_" and 6 random ones


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: the token's id and name, its access, and the creditors it acts for."""

    token_id: int
    name: str
    access: str
    creditors: frozenset[str]

    @property
    def can_write(self) -> bool:
        return self.access == WRITE


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    name: str
    prefix: str
    access: str
    creditors: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "access": self.access,
            "creditors": list(self.creditors),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class CreatedToken:
    view: TokenView
    # The token itself: shown once, never stored.
    token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session, *, name: str, creditors: list[str], access: str, clock: Clock
) -> CreatedToken:
    # The input model holds the rules (name length and text, creditor codes, access).
    data = ApiTokenInput(name=name, creditors=tuple(creditors), access=access)
    if not data.name.strip():
        raise errors.InvalidLength("name", name, "is empty")
    rows: list[Creditor] = []
    for code in dict.fromkeys(data.creditors):
        found = repo.creditor_by_code(session, code)
        if found is None:
            raise errors.NotFound("creditor", code, "is not a registered creditor")
        rows.append(found)
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=data.name, access=data.access, prefix=token[:_SHOWN], token_hash=token_hash(token), created_at=clock.now()
    )
    repo.add_token(session, row, (creditor.id for creditor in rows))
    return CreatedToken(_view(row, tuple(sorted(c.code for c in rows))), token)


def list_tokens(session: Session) -> list[TokenView]:
    codes = repo.creditor_codes_by_token(session)
    return [_view(row, tuple(codes.get(row.id, ()))) for row in repo.tokens(session)]


def revoke_token(session: Session, token_id: int, *, clock: Clock) -> TokenView:
    """Revoke a token; revoking a revoked token changes nothing."""
    row = repo.token(session, token_id)
    if row is None:
        raise errors.NotFound("token", token_id, "is not a token")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        session.flush()
    view = next(view for view in list_tokens(session) if view.id == token_id)
    return view


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal of a token that is known and not revoked; None otherwise."""
    if not token.startswith(PREFIX):
        return None
    rows = repo.live_token_grants(session, token_hash(token))
    if not rows:
        return None
    token_id, name, access, _ = rows[0]
    return Principal(token_id, name, access, frozenset(row[3] for row in rows))


def _view(row: ApiToken, creditors: tuple[str, ...]) -> TokenView:
    return TokenView(row.id, row.name, row.prefix, row.access, creditors, row.created_at, row.revoked_at)
