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
from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, Mandate
from sepa_engine.db.session import Database
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
PG_SERVER = os.environ.get("SEPA_ENGINE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
IBANS = ("DE89370400440532013000", "NL91ABNA0417164300", "BE68539007547034", "ES9121000418450200051332")
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
        tables = s.execute(text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'id' "
            "AND pg_get_serial_sequence(quote_ident(table_name), 'id') IS NOT NULL"
        )).scalars().all()
        for table in tables:
            s.execute(text(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                f"GREATEST((SELECT coalesce(max(id), 0) FROM \"{table}\"), 1))"
            ))


def account_rows(ids: range) -> list[dict[str, object]]:
    """The debtor accounts of every bench ledger: account ``i`` for mandate ``i``."""
    return [
        {"id": i, "creditor_id": 1, "reference": f"C{i}", "name": f"Locataire numero {i}",
         "address_country": "FR", "address_town": "Lyon", "address_postcode": "69001", "created_at": T0}
        for i in ids
    ]


def mandate_row(i: int) -> dict[str, object]:
    """Mandate ``i`` of account ``i``, active; callers add its collection history."""
    return {
        "id": i, "creditor_id": 1, "debtor_account_id": i, "reference": f"RUM-{i:010d}",
        "signed_on": dt.date(2025, 1, 15), "iban": IBANS[i % 4], "kind": "recurrent", "status": "active",
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


def enqueue(backend: str, count: int, workdir: Path) -> float:
    """``count`` requests through the Python API (batch enqueue), over ``count`` mandates."""
    from sepa_engine.services.batch_enqueue import EnqueueItem, enqueue_requests
    from sepa_engine.services.inputs import DebitRequestInput

    url = database_for(backend, workdir)
    try:
        db = Database(url)
        migrate.upgrade(db)
        seed(db, count, with_requests=False)
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
