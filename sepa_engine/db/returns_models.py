"""Tables of the reconciliation (issue 6): imported bank files, applied records, the
exceptions queue for a person, and per-creditor overrides of the reason-code policy.

Kept apart from ``models.py`` (same ``Base``, so one metadata and one alembic history).

Idempotency, in two layers:

* ``return_files.sha256`` is unique: the same bytes imported twice are recognised before
  anything is read.
* ``applied_returns.natural_key`` is unique: ``"<kind>:request:<debit request id>"`` for a
  record matched to one debit, ``"<kind>:entry:<entry reference>"`` for a booking entry
  credited as a lump sum. A debit can be rejected, settled or returned only once, so a
  second file (another bank channel, a camt.053 repeating a camt.054) that reports the
  same fact about the same debit is counted as "already applied" and changes nothing,
  whatever references or reason code the other file used.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sepa_engine.db.models import Base, UTCDateTime


class ReturnFile(Base):
    """One bank file that went through the reconciliation (applied or refused)."""

    __tablename__ = "return_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(String(40))  # e.g. "camt.054.001.02"
    message_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(12))  # applied | refused
    refusal: Mapped[str | None] = mapped_column(Text)
    records: Mapped[int] = mapped_column(Integer, default=0)
    applied: Mapped[int] = mapped_column(Integer, default=0)
    already_applied: Mapped[int] = mapped_column(Integer, default=0)
    exceptions: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AppliedReturn(Base):
    """One fact a bank file told us and the ledger now reflects."""

    __tablename__ = "applied_returns"
    __table_args__ = (Index("ix_applied_returns_batch_kind", "batch_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    natural_key: Mapped[str] = mapped_column(String(120), unique=True)
    return_file_id: Mapped[int] = mapped_column(ForeignKey("return_files.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    debit_request_id: Mapped[int | None] = mapped_column(ForeignKey("debit_requests.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    end_to_end_id: Mapped[str | None] = mapped_column(String(35))
    reason_code: Mapped[str | None] = mapped_column(String(40))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    fees_cents: Mapped[int | None] = mapped_column(BigInteger)
    booking_date: Mapped[dt.date | None] = mapped_column(Date)
    # What the reconciliation did besides the status: "blocked mandate", "retry 12"...
    effects: Mapped[str | None] = mapped_column(Text)
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ReturnException(Base):
    """A record (or a file-level fact) the reconciliation could not apply by itself."""

    __tablename__ = "return_exceptions"
    __table_args__ = (Index("ix_return_exceptions_status", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    return_file_id: Mapped[int] = mapped_column(ForeignKey("return_files.id"), index=True)
    # ReturnRecord.to_dict() (or the file-level fact) as JSON: what the person looks at.
    record: Mapped[str] = mapped_column(Text)
    end_to_end_id: Mapped[str | None] = mapped_column(String(35))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | resolved
    resolution: Mapped[str | None] = mapped_column(String(40))  # "ignored" | "matched:<request id>"
    note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(70))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ReasonCodePolicy(Base):
    """A creditor's override of one reason code's default policy (domain/reason_codes.py).

    A NULL column keeps the default for that field.
    """

    __tablename__ = "reason_code_policies"
    __table_args__ = (UniqueConstraint("creditor_id", "code", name="uq_reason_code_policies_creditor_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    code: Mapped[str] = mapped_column(String(4))
    mandate_effect: Mapped[str | None] = mapped_column(String(8))  # none | block | hold
    max_retries: Mapped[int | None] = mapped_column(Integer)
    opens_dispute: Mapped[bool | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
