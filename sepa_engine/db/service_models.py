"""Tables of the service side (issues 7 and 8): scheduled job runs and API tokens.

Same ``Base`` as ``models.py``, so one metadata and one alembic history.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sepa_engine.db.models import Base, UTCDateTime


class JobRun(Base):
    """One run of a job (``run-nightly`` or a ``serve`` trigger): what ``status`` reports."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(40), index=True)  # "nightly", "collect", "schedules", "inbox"
    trigger: Mapped[str] = mapped_column(String(20))  # "cron" (run-nightly), "serve", "manual"
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # ok | nothing_to_do | partial | failed | interrupted; null while running (or crashed).
    outcome: Mapped[str | None] = mapped_column(String(20))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str | None] = mapped_column(Text)  # JSON of the job's report
    host: Mapped[str | None] = mapped_column(String(100))
    pid: Mapped[int | None] = mapped_column(Integer)


class ApiToken(Base):
    """A bearer token for the HTTP API, scoped to creditors and to read or write.

    Only the token's sha256 is stored: a leaked database gives no usable token.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(70))
    access: Mapped[str] = mapped_column(String(5))  # "read" | "write" (write implies read)
    # The first characters of the token, shown in lists so a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ApiTokenCreditor(Base):
    """One creditor a token may act for."""

    __tablename__ = "api_token_creditors"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"), primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"), primary_key=True, index=True)


class ApiIdempotency(Base):
    """The first answer the HTTP API gave to a write (POST, PUT, DELETE) under a key.

    Written in the transaction of the write itself, so an action never exists without its
    stored answer, nor an answer without its action. ``scope`` is ``creditor:<code>`` for
    the routes under a creditor (the same space as the services' own keys) and
    ``token:<id>`` for the others; ``request_hash`` is the sha256 of method, path and body.
    """

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("scope", "idempotency_key", name="uq_api_idempotency_scope_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(50))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(7))
    path: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
