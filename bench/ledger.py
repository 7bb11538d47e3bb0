"""Ledger workloads: a full collection run over N due requests (setup not timed)."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db import migrate
from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, LedgerEntry, Mandate
from sepa_engine.db.session import Database
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
PG_SERVER = os.environ.get("SEPA_ENGINE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
# French banks (Credit Agricole, BNP Paribas, Societe Generale, La Banque Postale, Credit Mutuel,
# Caisse d'Epargne) for most tenants, as in a French rent roll; some accounts abroad.
FR_BANKS = ("30006", "30004", "30003", "20041", "10278", "17515")
CHUNK = 20_000


def database_for(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir}/bench-{uuid.uuid4().hex[:8]}.db"
    name = f"sepa_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(PG_SERVER).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return str(make_url(PG_SERVER).set(database=name))


def drop(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = create_engine(make_url(PG_SERVER).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def advance_sequences(db: Database) -> None:
    """PostgreSQL: the seeds insert explicit ids, which do not move the id sequences; move
    them past the seeded rows so the engine's own inserts get fresh ids."""
    if db.is_sqlite:
        return
    with db.transaction() as s:
        # The sequence is asked for table by table: in one WHERE beside ``column_name = 'id'``,
        # PostgreSQL may call pg_get_serial_sequence first, for a table with no id column (it
        # did, once the catalog's statistics were fresh: "column id of relation
        # alembic_version does not exist").
        tables = s.execute(text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'id'"
        )).scalars().all()
        for table in tables:
            sequence = s.execute(text("SELECT pg_get_serial_sequence(quote_ident(:t), 'id')"), {"t": table}).scalar()
            if sequence is None:
                continue
            s.execute(text(
                f"SELECT setval(:sequence, GREATEST((SELECT coalesce(max(id), 0) FROM \"{table}\"), 1))"
            ), {"sequence": sequence})


def account_rows(ids: range) -> list[dict[str, object]]:
    """The debtor accounts of every bench ledger: account ``i`` for mandate ``i``."""
    return [
        {"id": i, "creditor_id": 1, "reference": f"C{i}", "name": f"Locataire numero {i}",
         "address_country": "FR", "address_town": "Lyon", "address_postcode": "69001", "created_at": T0}
        for i in ids
    ]


def iban_from_bban(country: str, bban: str) -> str:
    numeric = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - numeric % 97:02d}{bban}"


def _es_digit(digits: str, weights: tuple[int, ...]) -> int:
    check = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return {11: 0, 10: 1}.get(check, check)


def debtor_iban(i: int) -> str:
    """Account ``i``'s own IBAN: a real rent roll has one account per tenant, so no cache keyed
    on an IBAN can flatter a figure. Computed with both the ISO 7064 check digits and the
    national ones (French RIB key, Belgian MOD 97, Spanish DC), so each passes validate_iban
    with every check run: 90 % French, 5 % Belgian, 5 % Spanish."""
    if i % 20 == 10:
        body = f"{300 + i % 700:03d}{i % 10_000_000:07d}"
        key = int(body) % 97 or 97
        return iban_from_bban("BE", f"{body}{key:02d}")
    if i % 20 == 0:
        bank, branch, account = f"{2100 + i % 7:04d}", f"{i % 10_000:04d}", f"{i:010d}"
        weights = (1, 2, 4, 8, 5, 10, 9, 7, 3, 6)
        dc = f"{_es_digit(bank + branch, weights[2:])}{_es_digit(account, weights)}"
        return iban_from_bban("ES", f"{bank}{branch}{dc}{account}")
    bank, branch, account = FR_BANKS[i % len(FR_BANKS)], f"{i % 99_991:05d}", f"{i:011d}"
    key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
    return iban_from_bban("FR", f"{bank}{branch}{account}{key:02d}")


def mandate_row(i: int) -> dict[str, object]:
    """Mandate ``i`` of account ``i``, active; callers add its collection history."""
    return {
        "id": i, "creditor_id": 1, "debtor_account_id": i, "reference": f"RUM-{i:010d}",
        "signed_on": dt.date(2025, 1, 15), "iban": debtor_iban(i), "kind": "recurrent", "status": "active",
        "status_changed_at": T0, "created_at": T0, "final_collected": False, "amendment_pending": False,
    }


def seed(db: Database, count: int, with_requests: bool = True) -> None:
    """One creditor, ``count`` debtors each with a mandate and (by default) one due request."""
    with db.transaction() as s:
        s.execute(insert(Creditor).values(
            id=1, code="bench", name="Gestion Immobiliere Martin", creditor_identifier="FR72ZZZ123456",
            iban="FR7630006000011234567890189", bic="AGRIFRPP", local_instrument="CORE",
            pain008_version="pain.008.001.08", lead_days=1, cutoff="16:00", timezone="Europe/Paris",
            max_per_file=100_000, first_collection_policy="frst", created_at=T0,
        ))
    for start in range(0, count, CHUNK):
        ids = range(start + 1, min(start + CHUNK, count) + 1)
        with db.transaction() as s:
            s.execute(insert(DebtorAccount), account_rows(ids))
            s.execute(insert(Mandate), [
                {**mandate_row(i), "last_collected_on": dt.date(2026, 10, 5) if i % 2 else None,
                 "first_collected_on": dt.date(2025, 2, 5) if i % 2 else None}
                for i in ids])
            if not with_requests:
                continue
            s.execute(insert(DebitRequest), [
                {"id": i, "creditor_id": 1, "mandate_id": i, "idempotency_key": f"k{i}", "content_hash": "x" * 64,
                 "end_to_end_id": f"BENCH-{i:012d}", "amount_cents": 1_000 + i % 100_000,
                 "remittance": f"Loyer novembre 2026 {i}", "requested_date": dt.date(2026, 11, 24), "final": False,
                 "status": "pending", "status_changed_at": T0, "created_at": T0, "attempt": 1,
                 "amend_new_debtor_agent": False}
                for i in ids])


def collect(backend: str, count: int, workdir: Path) -> float:
    url = database_for(backend, workdir)
    try:
        db = Database(url)
        migrate.upgrade(db)
        seed(db, count)
        advance_sequences(db)
        settings = Settings(database_url=url, var_dir=workdir, outbox_dir=workdir / f"outbox-{uuid.uuid4().hex[:6]}")
        started = time.perf_counter()
        report = run_collection(db, settings, FixedClock(NOW), SequentialIds("BENCH"))
        seconds = time.perf_counter() - started
        if report.assigned != count or sum(f.count for f in report.files) != count:
            raise SystemExit(f"collected {report.assigned} of {count}")
        db.dispose()
        return seconds
    finally:
        drop(url)


def enqueue(backend: str, count: int, workdir: Path, established: bool = False) -> float:
    """``count`` requests through the Python API (batch enqueue), over ``count`` mandates.

    ``established``: into a ledger in use, which already holds a request per mandate and two
    invoices per account, its statistics taken as autovacuum would have on PostgreSQL (the
    case where a chunk's key checks keep their plans, ``db/session.py``)."""
    from sepa_engine.services.batch_enqueue import EnqueueItem, enqueue_requests
    from sepa_engine.services.inputs import DebitRequestInput

    url = database_for(backend, workdir)
    try:
        db = Database(url)
        migrate.upgrade(db)
        seed(db, count, with_requests=established)
        if established:
            _invoices(db, count, "P", dt.date(2026, 9, 1), first_id=1)
            _invoices(db, count, "O", dt.date(2026, 10, 1), first_id=count + 1)
        advance_sequences(db)
        if established:
            analyse(db)
        items = (
            # A rent run: each request carries the invoice it pays, which the account gate books.
            EnqueueItem(f"portal-{i}", DebitRequestInput(mandate=f"RUM-{i:010d}", amount="850.00", remittance=f"Loyer {i}",
                                                         invoice_number=f"Q-{i:010d}",
                                                         invoice_issue_date=dt.date(2026, 11, 1)))
            for i in range(1, count + 1)
        )
        started = time.perf_counter()
        with db.transaction() as s:
            result = enqueue_requests(s, "bench", items, clock=FixedClock(NOW))
        seconds = time.perf_counter() - started
        if result.created != count:
            raise SystemExit(f"enqueued {result.created} of {count}")
        db.dispose()
        return seconds
    finally:
        drop(url)


def _invoices(db: Database, count: int, prefix: str, issued: dt.date, first_id: int, every: int = 1) -> None:
    """An invoice of about 850.00 for each account, or for all but one in ``every``; ids from
    ``first_id`` on."""
    owing = [i for i in range(1, count + 1) if every == 1 or i % every]
    for start in range(0, len(owing), CHUNK):
        with db.transaction() as s:
            s.execute(insert(LedgerEntry), [
                {"id": first_id + n, "creditor_id": 1, "debtor_account_id": i, "kind": "invoice",
                 "document_number": f"{prefix}-{i:010d}", "issue_date": issued,
                 "amount_cents": 85_000 + i % 1_000, "created_at": T0}
                for n, i in enumerate(owing[start:start + CHUNK], start=start)])


def analyse(db: Database) -> None:
    """PostgreSQL: the statistics autovacuum keeps on a ledger in use. SQLite keeps none unless
    told (nothing in the engine runs ANALYZE there), so neither does the bench."""
    if db.is_sqlite:
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def schedule(backend: str, count: int, workdir: Path, established: bool = False) -> float:
    """The nightly schedule's run over ``count`` automatic accounts (monthly, on the 7th) on the
    day December's pre-notification window opens: each account owes its November rent, but
    one in twenty has nothing due (a slot, no debit).

    ``established``: January's run instead, a month later, on the ledger December's run left
    (its slots, debits still in flight and notices; statistics taken as autovacuum would on
    PostgreSQL), each owing account now owing its December rent too."""
    from sepa_engine.jobs.accounts import run_schedule

    url = database_for(backend, workdir)
    try:
        db = Database(url)
        migrate.upgrade(db)
        seed(db, count, with_requests=False)
        with db.transaction() as s:
            s.execute(DebtorAccount.__table__.update().values(
                collection_mode="automatic", schedule_frequency="monthly", schedule_day=7,
                automatic_since=dt.date(2026, 11, 1),
            ))
        owing = count - count // 20
        _invoices(db, count, "Q", dt.date(2026, 11, 1), first_id=1, every=20)
        advance_sequences(db)
        clock, window = FixedClock(NOW), dt.date(2026, 11, 23)
        if established:
            run_schedule(db, clock, window)
            _invoices(db, count, "R", dt.date(2026, 12, 1), first_id=10 * count, every=20)
            advance_sequences(db)
            analyse(db)
            # January's window opens 14 days before the 7th.
            clock, window = FixedClock(NOW + dt.timedelta(days=31)), dt.date(2026, 12, 24)
        started = time.perf_counter()
        report = run_schedule(db, clock, window)
        seconds = time.perf_counter() - started
        if len(report.requested) != owing or len(report.items) != count:
            raise SystemExit(f"requested {len(report.requested)} of {owing}, decided {len(report.items)} of {count}")
        db.dispose()
        return seconds
    finally:
        drop(url)
