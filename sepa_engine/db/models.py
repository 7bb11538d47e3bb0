"""The ledger's tables (SQLAlchemy 2.x, typed mappings).

Money is BigInteger cents. Every table upstream writes into has an idempotency key unique
per creditor, with a hash of the content so that a replay with other content is refused.
Statuses are stored as their StrEnum values; transitions are checked in
``domain/statuses.py`` and ``domain/mandate.py``, never here.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names so alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both backends.

    SQLite keeps no offset, so values are stored as UTC and read back as UTC; a naive
    datetime is refused rather than guessed (it would silently take the machine's zone).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware datetime")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _tz() -> UTCDateTime:
    return UTCDateTime()


class Creditor(Base):
    __tablename__ = "creditors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(70))
    creditor_identifier: Mapped[str] = mapped_column(String(35), unique=True)
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    local_instrument: Mapped[str] = mapped_column(String(4), default="CORE")
    pain008_version: Mapped[str] = mapped_column(String(20), default="pain.008.001.08")
    lead_days: Mapped[int] = mapped_column(Integer, default=1)
    cutoff: Mapped[str] = mapped_column(String(5), default="16:00")
    timezone: Mapped[str] = mapped_column(String(40), default="Europe/Paris")
    max_per_file: Mapped[int] = mapped_column(Integer, default=100_000)
    first_collection_policy: Mapped[str] = mapped_column(String(8), default="frst")
    address_country: Mapped[str | None] = mapped_column(String(2))
    address_town: Mapped[str | None] = mapped_column(String(35))
    address_street: Mapped[str | None] = mapped_column(String(70))
    address_building_number: Mapped[str | None] = mapped_column(String(16))
    address_postcode: Mapped[str | None] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())


class DebtorAccount(Base):
    __tablename__ = "debtor_accounts"
    __table_args__ = (
        UniqueConstraint("creditor_id", "reference", name="uq_debtor_accounts_creditor_reference"),
        UniqueConstraint("creditor_id", "idempotency_key", name="uq_debtor_accounts_creditor_idempotency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    reference: Mapped[str] = mapped_column(String(35))
    name: Mapped[str] = mapped_column(String(140))
    address_country: Mapped[str | None] = mapped_column(String(2))
    address_town: Mapped[str | None] = mapped_column(String(35))
    address_street: Mapped[str | None] = mapped_column(String(70))
    address_building_number: Mapped[str | None] = mapped_column(String(16))
    address_postcode: Mapped[str | None] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())


class Mandate(Base):
    __tablename__ = "mandates"
    __table_args__ = (
        # The unique mandate reference is unique per creditor among mandates in force; a
        # superseded row may share it with the row that replaced it (same UMR, new IBAN).
        Index(
            "uq_mandates_creditor_reference_in_force",
            "creditor_id",
            "reference",
            unique=True,
            sqlite_where=text("status != 'superseded'"),
            postgresql_where=text("status != 'superseded'"),
        ),
        UniqueConstraint("creditor_id", "idempotency_key", name="uq_mandates_creditor_idempotency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    debtor_account_id: Mapped[int] = mapped_column(ForeignKey("debtor_accounts.id"))
    reference: Mapped[str] = mapped_column(String(35))
    signed_on: Mapped[dt.date] = mapped_column(Date)
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    kind: Mapped[str] = mapped_column(String(10), default="recurrent")
    status: Mapped[str] = mapped_column(String(12), default="active")
    status_changed_at: Mapped[dt.datetime] = mapped_column(_tz())
    # Why it left ACTIVE (revocation reason, hard return code...), for the people who ask.
    status_reason: Mapped[str | None] = mapped_column(Text)
    first_collected_on: Mapped[dt.date | None] = mapped_column(Date)
    last_collected_on: Mapped[dt.date | None] = mapped_column(Date)
    final_collected: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the bank last saw for this mandate chain, to derive amendment details.
    presented_creditor_identifier: Mapped[str | None] = mapped_column(String(35))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("mandates.id"))
    amendment_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())

    debtor_account: Mapped[DebtorAccount] = relationship(lazy="joined")


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(_tz())
    finished_at: Mapped[dt.datetime | None] = mapped_column(_tz())
    business_date: Mapped[dt.date] = mapped_column(Date)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(String(20))
    assigned: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    files: Mapped[int] = mapped_column(Integer, default=0)


class Batch(Base):
    """One pain.008 file."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    message_id: Mapped[str] = mapped_column(String(35), unique=True)
    status: Mapped[str] = mapped_column(String(12), index=True)
    version: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())  # also the file's CreDtTm
    file_name: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer)
    sum_cents: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    path: Mapped[str | None] = mapped_column(Text)
    written_at: Mapped[dt.datetime | None] = mapped_column(_tz())
    published_at: Mapped[dt.datetime | None] = mapped_column(_tz())
    failure: Mapped[str | None] = mapped_column(Text)

    blocks: Mapped[list[PaymentBlock]] = relationship(order_by="PaymentBlock.position", lazy="selectin")


class PaymentBlock(Base):
    __tablename__ = "payment_blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    payment_info_id: Mapped[str] = mapped_column(String(35), unique=True)
    collection_date: Mapped[dt.date] = mapped_column(Date)
    sequence_type: Mapped[str] = mapped_column(String(4))
    local_instrument: Mapped[str] = mapped_column(String(4))
    creditor_iban: Mapped[str] = mapped_column(String(34))
    count: Mapped[int] = mapped_column(Integer)
    sum_cents: Mapped[int] = mapped_column(BigInteger)


class DebitRequest(Base):
    __tablename__ = "debit_requests"
    __table_args__ = (
        UniqueConstraint("creditor_id", "idempotency_key", name="uq_debit_requests_creditor_idempotency"),
        # Each index matches one keyset-paginated read of the run, so a page is an index
        # range scan rather than a sort of every matching row.
        Index("ix_debit_requests_queue", "creditor_id", "status", "mandate_id", "id"),
        Index("ix_debit_requests_run", "run_id", "creditor_id", "collection_date", "sequence_type", "id"),
        Index("ix_debit_requests_block", "block_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandates.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    remittance: Mapped[str | None] = mapped_column(String(140))
    requested_date: Mapped[dt.date] = mapped_column(Date)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    status_changed_at: Mapped[dt.datetime] = mapped_column(_tz())
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    block_id: Mapped[int | None] = mapped_column(ForeignKey("payment_blocks.id"))
    collection_date: Mapped[dt.date | None] = mapped_column(Date)
    sequence_type: Mapped[str | None] = mapped_column(String(4))
    # Amendment details carried by this collection (computed when it was assigned).
    amend_original_mandate_id: Mapped[str | None] = mapped_column(String(35))
    amend_original_creditor_identifier: Mapped[str | None] = mapped_column(String(35))
    amend_original_creditor_name: Mapped[str | None] = mapped_column(String(70))
    amend_original_iban: Mapped[str | None] = mapped_column(String(34))
    amend_new_debtor_agent: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("debit_requests.id"))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())
