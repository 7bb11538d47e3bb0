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
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
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
    # Calendar days between a pre-notification and its automatic debit (EPC default 14).
    prenotification_days: Mapped[int] = mapped_column(Integer, default=14, server_default="14")
    # Files of this creditor wait in outbox/pending until a person approves them (issue 7).
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Creditors of one group may be paid together by one customer (a debit per creditor).
    group_code: Mapped[str | None] = mapped_column(String(32))
    address_country: Mapped[str | None] = mapped_column(String(2))
    address_town: Mapped[str | None] = mapped_column(String(35))
    address_street: Mapped[str | None] = mapped_column(String(70))
    address_building_number: Mapped[str | None] = mapped_column(String(16))
    address_postcode: Mapped[str | None] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())
    # The rules of the creditor's bank (domain/bank_profiles.py).
    bank_profile: Mapped[str] = mapped_column(String(8), default="epc", server_default="epc")
    # UltmtCdtr of every block, unless a request names its own (a property manager collecting
    # for the owner).
    ultimate_creditor_name: Mapped[str | None] = mapped_column(String(70))
    ultimate_creditor_id: Mapped[str | None] = mapped_column(String(35))


class DebtorAccount(Base):
    """The account of one debtor at one creditor: its mandates, ledger and collection mode."""

    __tablename__ = "debtor_accounts"
    __table_args__ = (
        UniqueConstraint("creditor_id", "reference", name="uq_debtor_accounts_creditor_reference"),
        UniqueConstraint("creditor_id", "idempotency_key", name="uq_debtor_accounts_creditor_idempotency"),
        # An index, not a constraint: SQLite adds it without rebuilding a table others reference.
        Index("uq_debtor_accounts_creditor_customer", "creditor_id", "customer_reference", unique=True),
        # What ledger entries reference: an entry's creditor is its account's creditor
        # (migration 0010). An index for the same reason as the one above.
        Index("uq_debtor_accounts_creditor_id", "creditor_id", "id", unique=True),
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
    # The same customer across the creditors of a group (one account at each of them).
    customer_reference: Mapped[str | None] = mapped_column(String(35))
    collection_mode: Mapped[str] = mapped_column(String(10), default="on_demand", server_default="on_demand")
    schedule_frequency: Mapped[str | None] = mapped_column(String(10))
    schedule_day: Mapped[int | None] = mapped_column(Integer)
    # Business date the account became automatic: earlier periods are not collected.
    automatic_since: Mapped[dt.date | None] = mapped_column(Date)
    # Billing details (the portal's "account information"); not written into files.
    contact_name: Mapped[str | None] = mapped_column(String(140))
    contact_role: Mapped[str | None] = mapped_column(String(70))
    billing_street: Mapped[str | None] = mapped_column(String(140))
    billing_postcode: Mapped[str | None] = mapped_column(String(16))
    billing_town: Mapped[str | None] = mapped_column(String(70))
    billing_country: Mapped[str | None] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(String(35))
    fax: Mapped[str | None] = mapped_column(String(35))
    email: Mapped[str | None] = mapped_column(String(254))


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
        # Room for each row's next version: a file's hand-over moves every mandate's history
        # (columns no index reads) in one transaction (migration 0012).
        {"postgresql_with": {"fillfactor": 50}},
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
    # UltmtDbtr: the party the debit is for when it is not the account holder (AT-15).
    ultimate_debtor_name: Mapped[str | None] = mapped_column(String(70))
    ultimate_debtor_id: Mapped[str | None] = mapped_column(String(35))
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
    status: Mapped[str] = mapped_column(String(20), index=True)
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
    # When the file was put in outbox/pending/ for approval (migration 0009); None if never held.
    held_at: Mapped[dt.datetime | None] = mapped_column(_tz())
    failure: Mapped[str | None] = mapped_column(Text)
    # Who released a file held for approval, and when (issue 7).
    approved_by: Mapped[str | None] = mapped_column(String(70))
    approved_at: Mapped[dt.datetime | None] = mapped_column(_tz())
    # Who stopped a held file at review instead, and when (migration 0013); why is in failure.
    withdrawn_by: Mapped[str | None] = mapped_column(String(70))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(_tz())

    blocks: Mapped[list[PaymentBlock]] = relationship(order_by="PaymentBlock.position", lazy="selectin")


class PaymentBlock(Base):
    __tablename__ = "payment_blocks"
    # What a request's (block, batch) references: a request's block belongs to its batch
    # (migration 0010). An index, so SQLite adds it without rebuilding the table.
    __table_args__ = (Index("uq_payment_blocks_id_batch", "id", "batch_id", unique=True),)

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
        # One foreign key for the request's block and batch together, checked in one probe
        # where two single ones cost a probe and a row lock each per assigned request
        # (migration 0010); stronger too: the block must belong to the batch. A foreign key
        # with a NULL column is not checked, hence the CHECK that both are set or neither.
        ForeignKeyConstraint(
            ["block_id", "batch_id"], ["payment_blocks.id", "payment_blocks.batch_id"],
            name="fk_debit_requests_block_batch_payment_blocks",
        ),
        CheckConstraint("(block_id IS NULL) = (batch_id IS NULL)", name="block_with_batch"),
        # Each index matches one keyset-paginated read of the run, so a page is an index
        # range scan rather than a sort of every matching row.
        # The queue holds pending requests only (migration 0010): the request's later row
        # versions (assigned, submitted...), written by the run on PostgreSQL, get no entry.
        # Both partial indexes test ``indexed_status``, never ``status`` (migration 0012).
        Index(
            "ix_debit_requests_queue", "creditor_id", "mandate_id", "id",
            sqlite_where=text("indexed_status = 'pending'"), postgresql_where=text("indexed_status = 'pending'"),
        ),
        # What a run refused, for every file's review summary (migration 0011): few rows, so
        # listing and counting them does not read the run's other requests. No index holds
        # every request by run: nothing reads them that way, and no run is ever deleted.
        Index(
            "ix_debit_requests_refused", "run_id", "creditor_id", "id",
            sqlite_where=text("indexed_status = 'refused'"), postgresql_where=text("indexed_status = 'refused'"),
        ),
        Index("ix_debit_requests_block", "block_id", "id"),
        # Room on each page for the next version of its rows (migration 0012 says why).
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandates.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    remittance: Mapped[str | None] = mapped_column(String(140))
    # UltmtCdtr of this debit alone; None = the creditor's own (if any).
    ultimate_creditor_name: Mapped[str | None] = mapped_column(String(70))
    ultimate_creditor_id: Mapped[str | None] = mapped_column(String(35))
    requested_date: Mapped[dt.date] = mapped_column(Date)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    # The status for the two partial indexes (queue, refused), NULL in every other status:
    # a request moving between two other statuses (assigned -> submitted -> settled) changes
    # no column an index reads, so PostgreSQL updates it in place on its page, with no new
    # index entry (a HOT update; migration 0012). Read by the queries those indexes serve:
    # a predicate on ``status`` cannot be proved to imply one on this column. Stored on
    # PostgreSQL, virtual on SQLite (the migration says why).
    indexed_status: Mapped[str | None] = mapped_column(
        String(12), Computed("CASE WHEN status IN ('pending', 'refused') THEN status END"),
    )
    status_changed_at: Mapped[dt.datetime] = mapped_column(_tz())
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    # The run that refused the request. An assigned request's run is its batch's: setting
    # it here too cost PostgreSQL a foreign-key check per assigned request (a tenth of the
    # assignment's time at 100,000), for a value nothing reads.
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    # Both reference payment_blocks together (above); the block's own key leads to the batch.
    batch_id: Mapped[int | None] = mapped_column(Integer, index=True)
    block_id: Mapped[int | None] = mapped_column(Integer)
    collection_date: Mapped[dt.date | None] = mapped_column(Date)
    sequence_type: Mapped[str | None] = mapped_column(String(4))
    # Amendment details carried by this collection (computed when it was assigned).
    amend_original_mandate_id: Mapped[str | None] = mapped_column(String(35))
    amend_original_creditor_identifier: Mapped[str | None] = mapped_column(String(35))
    amend_original_creditor_name: Mapped[str | None] = mapped_column(String(70))
    amend_original_iban: Mapped[str | None] = mapped_column(String(34))
    amend_new_debtor_agent: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # Indexed: retries are looked up by their original, and SQLite checks this foreign key
    # on every delete or id change of a request (a scan per row without it). Only retries
    # are in the index (migration 0010): most requests are not, and each of their row
    # versions would otherwise add an entry.
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("debit_requests.id"))
    # What the debit pays: "invoices", "balance" or "on_account" (domain/debit_gate.py);
    # None for requests stored before the account gate.
    pays: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())


# --- customer accounts (issue 5) -----------------------------------------------------------
# Requests of one debtor account are found through its mandates.
Index("ix_mandates_debtor_account_id", Mandate.debtor_account_id)
Index(
    "ix_debit_requests_retry_of_id", DebitRequest.retry_of_id,
    sqlite_where=text("retry_of_id IS NOT NULL"), postgresql_where=text("retry_of_id IS NOT NULL"),
)


class LedgerEntry(Base):
    """One line of an account's ledger; ``kind`` says which way the amount moves the balance."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("creditor_id", "kind", "document_number", name="uq_ledger_entries_creditor_document"),
        # Only entries written with a key (invoices, credit notes...) are in it (migration 0010):
        # the payments and returns the run and reconciliation book by the thousand have none,
        # and a NULL never conflicts anyway.
        Index(
            "uq_ledger_entries_creditor_idempotency", "creditor_id", "idempotency_key", unique=True,
            sqlite_where=text("idempotency_key IS NOT NULL"), postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        # One payment and at most one return per debit request: booking twice is impossible.
        UniqueConstraint("debit_request_id", "kind", name="uq_ledger_entries_request_kind"),
        CheckConstraint("amount_cents > 0", name="positive_amount"),
        # The account and its creditor in one foreign key (migration 0010): one probe and one
        # row lock per booked entry instead of two, and an entry cannot name a creditor other
        # than its account's.
        ForeignKeyConstraint(
            ["creditor_id", "debtor_account_id"], ["debtor_accounts.creditor_id", "debtor_accounts.id"],
            name="fk_ledger_entries_account_creditor_debtor_accounts",
        ),
        Index("ix_ledger_entries_account", "debtor_account_id", "issue_date", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Both reference debtor_accounts together (above); the account's own key leads to the creditor.
    creditor_id: Mapped[int] = mapped_column(Integer)
    debtor_account_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    document_number: Mapped[str] = mapped_column(String(35))
    issue_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    label: Mapped[str | None] = mapped_column(String(140))
    # The debit that produced a payment, or whose return a returned payment records.
    debit_request_id: Mapped[int | None] = mapped_column(ForeignKey("debit_requests.id"))
    # A credit note settles this invoice first.
    applies_to_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    # A credit note created by accepting this dispute settles its invoices first.
    dispute_id: Mapped[int | None] = mapped_column(ForeignKey("disputes.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())


class RequestInvoice(Base):
    """An invoice a debit request pays, and how much of it."""

    __tablename__ = "request_invoices"
    __table_args__ = (UniqueConstraint("debit_request_id", "entry_id", name="uq_request_invoices_request_entry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    debit_request_id: Mapped[int] = mapped_column(ForeignKey("debit_requests.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)


class GroupPaymentOrder(Base):
    """One customer paying invoices at several creditors of a group in one call."""

    __tablename__ = "group_payment_orders"
    __table_args__ = (
        UniqueConstraint("customer_reference", "idempotency_key", name="uq_group_payment_orders_customer_idempotency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_code: Mapped[str] = mapped_column(String(32))
    customer_reference: Mapped[str] = mapped_column(String(35))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())


class PaymentOrder(Base):
    """A debit asked for on demand (a portal's "pay" button), and the request it created."""

    __tablename__ = "payment_orders"
    __table_args__ = (
        UniqueConstraint("creditor_id", "idempotency_key", name="uq_payment_orders_creditor_idempotency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    debtor_account_id: Mapped[int] = mapped_column(ForeignKey("debtor_accounts.id"))
    debit_request_id: Mapped[int] = mapped_column(ForeignKey("debit_requests.id"), unique=True)
    group_order_id: Mapped[int | None] = mapped_column(ForeignKey("group_payment_orders.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())


class ScheduleSlot(Base):
    """What the automatic schedule decided for one account and period (at most once)."""

    __tablename__ = "schedule_slots"
    __table_args__ = (UniqueConstraint("debtor_account_id", "period", name="uq_schedule_slots_account_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    debtor_account_id: Mapped[int] = mapped_column(ForeignKey("debtor_accounts.id"))
    period: Mapped[str] = mapped_column(String(7))
    run_date: Mapped[dt.date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(12))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    debit_request_id: Mapped[int | None] = mapped_column(ForeignKey("debit_requests.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(_tz())


class Prenotification(Base):
    """The notice a debtor gets before an automatic debit: what, when, under which mandate."""

    __tablename__ = "prenotifications"
    __table_args__ = (Index("ix_prenotifications_creditor_collection", "creditor_id", "collection_date", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    debtor_account_id: Mapped[int] = mapped_column(ForeignKey("debtor_accounts.id"))
    # The schedule's slot and period; none for the pre-notification of a retry.
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("schedule_slots.id"), unique=True)
    debit_request_id: Mapped[int] = mapped_column(ForeignKey("debit_requests.id"), unique=True)
    period: Mapped[str | None] = mapped_column(String(7))
    # "schedule" (an automatic account's debit) or "retry" (a failed debit presented again).
    kind: Mapped[str] = mapped_column(String(8), default="schedule", server_default="schedule")
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    collection_date: Mapped[dt.date] = mapped_column(Date)
    nominal_date: Mapped[dt.date] = mapped_column(Date)
    mandate_reference: Mapped[str] = mapped_column(String(35))
    creditor_identifier: Mapped[str] = mapped_column(String(35))
    # The business day the notice counts from, and the instant it was made.
    issued_on: Mapped[dt.date] = mapped_column(Date)
    issued_at: Mapped[dt.datetime] = mapped_column(_tz())


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (
        UniqueConstraint("creditor_id", "idempotency_key", name="uq_disputes_creditor_idempotency"),
        Index("ix_disputes_account", "debtor_account_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    debtor_account_id: Mapped[int] = mapped_column(ForeignKey("debtor_accounts.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    opened_by: Mapped[str] = mapped_column(String(100))
    opened_at: Mapped[dt.datetime] = mapped_column(_tz())
    status_changed_at: Mapped[dt.datetime] = mapped_column(_tz())
    idempotency_key: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))


class DisputeInvoice(Base):
    __tablename__ = "dispute_invoices"
    __table_args__ = (UniqueConstraint("dispute_id", "entry_id", name="uq_dispute_invoices_dispute_entry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)


class DisputeEvent(Base):
    """One step of a dispute's history: who moved it to which status, and when."""

    __tablename__ = "dispute_events"
    __table_args__ = (
        UniqueConstraint("creditor_id", "idempotency_key", name="uq_dispute_events_creditor_idempotency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(_tz())
    note: Mapped[str | None] = mapped_column(Text)
    # The opening event is keyed by its dispute; transitions carry their own key.
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str | None] = mapped_column(String(64))


class AccountChange(Base):
    """One change of an account's details, mode or bank details (or of creditor settings)."""

    __tablename__ = "account_changes"
    __table_args__ = (
        UniqueConstraint("creditor_id", "idempotency_key", name="uq_account_changes_creditor_idempotency"),
        Index("ix_account_changes_account", "debtor_account_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    # None: a change of the creditor's own settings.
    debtor_account_id: Mapped[int | None] = mapped_column(ForeignKey("debtor_accounts.id"))
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[dt.datetime] = mapped_column(_tz())
    mandate_id: Mapped[int | None] = mapped_column(ForeignKey("mandates.id"))
    idempotency_key: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))


class AccountChangeField(Base):
    __tablename__ = "account_change_fields"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("account_changes.id"), index=True)
    field: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)


class MandateSignature(Base):
    """Evidence of an electronic signature, kept with the mandate it signed."""

    __tablename__ = "mandate_signatures"
    __table_args__ = (UniqueConstraint("creditor_id", "evidence_id", name="uq_mandate_signatures_creditor_evidence"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"))
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandates.id"), unique=True)
    signed_at: Mapped[dt.datetime] = mapped_column(_tz())
    signer_name: Mapped[str] = mapped_column(String(140))
    evidence_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(_tz())
