"""Reconciliation workload: a camt.054 of N returns applied to a ledger of published debits.

Set-up (not timed): a ledger of ``ledger`` debits already at the bank (published batches of
100,000, blocks of 50,000, status ``submitted``, each with its mandate, debtor account and
booked payment, as a collection run leaves them), then a camt.054.001.02 notification of
``count`` returns about debits spread over every batch. The ledger is seeded once per size
as a template (a SQLite file in the workdir; a PostgreSQL database named after the size,
vacuumed and analysed) by bulk loads, not through the collection run, brought to the
migration head before each run, and copied for it, so every run starts from the same rows.

Timed: ``reconcile_file`` in one transaction, and its commit.

The reason codes are mixed as a bank's returns are: mostly soft (AM04, MS03: a retry is
enqueued), some hard (AC04, MD01: the mandate is blocked), a few MD06 refunds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from bench.ledger import T0, account_rows, mandate_row
from sepa_engine.clock import FixedClock
from sepa_engine.db import migrate
from sepa_engine.db.models import (
    Batch,
    Creditor,
    DebitRequest,
    DebtorAccount,
    LedgerEntry,
    Mandate,
    PaymentBlock,
    Run,
)
from sepa_engine.db.session import Database

PUBLISHED = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)
COLLECTED = dt.date(2026, 11, 24)
BOOKED = dt.date(2026, 11, 27)
CREDITOR_IBAN = "FR7630006000011234567890189"
PER_BATCH = 100_000
PER_BLOCK = 50_000
CHUNK = 20_000
NS = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"
# One cycle of 20 returns: 80 % soft, 15 % hard, 5 % refunds (MD06 is booked as PRDD).
CODES = ("AM04",) * 12 + ("MS03",) * 4 + ("AC04",) * 2 + ("MD01", "MD06")


def amount(i: int) -> int:
    return 1_000 + i % 100_000


def message_id(batch: int) -> str:
    return f"BENCH-MSG-{batch:04d}"


def payment_info_id(block: int) -> str:
    return f"BENCH-PMT-{block:05d}"


def end_to_end_id(i: int) -> str:
    return f"BENCH-{i:012d}"


def seed_published(db: Database, count: int) -> None:
    """``count`` debits at the bank: published batches, blocks, requests and their payments.

    Not through a collection run (that is its own workload): the big tables are loaded in
    one transaction, by COPY on PostgreSQL and by the driver's executemany on SQLite, a chunk
    of rows at a time, so a ledger of 1,000,000 debits is seeded in about a minute."""
    batches = (count + PER_BATCH - 1) // PER_BATCH
    with db.transaction() as s:
        s.execute(insert(Creditor).values(
            id=1, code="bench", name="Gestion Immobiliere Martin", creditor_identifier="FR72ZZZ123456",
            iban=CREDITOR_IBAN, bic="AGRIFRPP", local_instrument="CORE", pain008_version="pain.008.001.08",
            lead_days=1, cutoff="16:00", timezone="Europe/Paris", max_per_file=PER_BATCH,
            first_collection_policy="frst", created_at=T0,
        ))
        s.execute(insert(Run).values(
            id=1, started_at=PUBLISHED, finished_at=PUBLISHED, business_date=COLLECTED, dry_run=False,
            outcome="done", assigned=count, refused=0, files=batches,
        ))
        for b in range(batches):
            ids = range(b * PER_BATCH + 1, min((b + 1) * PER_BATCH, count) + 1)
            s.execute(insert(Batch).values(
                id=b + 1, creditor_id=1, run_id=1, message_id=message_id(b + 1), status="published",
                version="pain.008.001.08", created_at=PUBLISHED, file_name=f"{message_id(b + 1)}.xml",
                count=len(ids), sum_cents=sum(amount(i) for i in ids), sha256="0" * 64, size=0,
                written_at=PUBLISHED, published_at=PUBLISHED,
            ))
        blocks = (count + PER_BLOCK - 1) // PER_BLOCK
        for k in range(blocks):
            ids = range(k * PER_BLOCK + 1, min((k + 1) * PER_BLOCK, count) + 1)
            s.execute(insert(PaymentBlock).values(
                id=k + 1, batch_id=k * PER_BLOCK // PER_BATCH + 1, position=k % (PER_BATCH // PER_BLOCK),
                payment_info_id=payment_info_id(k + 1), collection_date=COLLECTED, sequence_type="RCUR",
                local_instrument="CORE", creditor_iban=CREDITOR_IBAN, count=len(ids), sum_cents=sum(amount(i) for i in ids),
            ))
        chunks = [range(start + 1, min(start + CHUNK, count) + 1) for start in range(0, count, CHUNK)]
        # Parents before children, each table whole: the foreign keys hold at every row.
        load(s, DebtorAccount, (account_rows(ids) for ids in chunks))
        load(s, Mandate, ([
            {**mandate_row(i), "first_collected_on": dt.date(2025, 2, 5), "last_collected_on": COLLECTED,
             "presented_creditor_identifier": "FR72ZZZ123456"}
            for i in ids] for ids in chunks))
        load(s, DebitRequest, ([
            {"id": i, "creditor_id": 1, "mandate_id": i, "idempotency_key": f"k{i}", "content_hash": "x" * 64,
             "end_to_end_id": end_to_end_id(i), "amount_cents": amount(i),
             "remittance": f"Loyer novembre 2026 {i}", "requested_date": COLLECTED, "final": False,
             "status": "submitted", "status_changed_at": PUBLISHED, "created_at": T0, "attempt": 1,
             "amend_new_debtor_agent": False, "run_id": 1, "batch_id": (i - 1) // PER_BATCH + 1,
             "block_id": (i - 1) // PER_BLOCK + 1, "collection_date": COLLECTED, "sequence_type": "RCUR"}
            for i in ids] for ids in chunks))
        # The collection run books each published debit as a payment on its account.
        load(s, LedgerEntry, ([
            {"id": i, "creditor_id": 1, "debtor_account_id": i, "kind": "payment", "document_number": end_to_end_id(i),
             "issue_date": COLLECTED, "amount_cents": amount(i), "label": f"Loyer novembre 2026 {i}",
             "debit_request_id": i, "created_at": PUBLISHED}
            for i in ids] for ids in chunks))


def load(session: Session, model: type, chunks: Iterable[list[dict[str, Any]]]) -> None:
    """Insert the rows of every chunk into ``model``'s table, in the session's transaction.

    PostgreSQL: one COPY for the whole table. SQLite: one executemany per chunk, the values
    through the columns' bind processors. A column the rows leave out gets its scalar
    default, as the ORM would give it."""
    table = model.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    dialect = connection.dialect
    copy = None
    names: list[str] = []
    processors: list[Any] = []
    with contextlib.ExitStack() as stack:
        for rows in chunks:
            if not rows:
                continue
            if not names:
                given = list(rows[0])
                defaults = {c.name: c.default.arg for c in table.c if c.default is not None and c.name not in given}
                if any(callable(value) for value in defaults.values()):
                    raise SystemExit(f"{table.name}: a computed default the seed does not give")
                names = given + list(defaults)
                fixed = tuple(defaults.values())
                processors = [table.c[name].type.bind_processor(dialect) for name in names]
                columns = ", ".join(f'"{name}"' for name in names)
                if dialect.name == "postgresql":
                    cursor = stack.enter_context(connection.connection.driver_connection.cursor())
                    copy = stack.enter_context(cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN'))
                else:
                    marks = ", ".join("?" * len(names))
                    statement = f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})'
            lines = []
            for row in rows:
                values = [row[name] for name in given]
                values.extend(fixed)
                lines.append(tuple(
                    value if process is None or value is None else process(value)
                    for value, process in zip(values, processors, strict=True)
                ))
            if copy is not None:
                for line in lines:
                    copy.write_row(line)
            else:
                connection.exec_driver_sql(statement, lines)


def write_returns(path: Path, count: int, ledger: int, *, shuffled: bool = False) -> None:
    """A camt.054.001.02 of ``count`` booked returns, spread evenly over the ledger's debits.

    Written as text, one entry per line as banks do; the reader validates it against the
    XSD while reconciling, and the workload fails on any deviation.

    In the ledger's order by default: each chunk of the file then touches one narrow range
    of every index, the most favourable order there is. ``shuffled`` lists the same entries
    in a fixed random order, as a bank lists returns in its own booking order, which owes
    nothing to the creditor's ids (BENCHMARKS.md, "Returns in the bank's order").
    """
    step = max(ledger // count, 1)
    order = list(range(count))
    if shuffled:
        random.Random(count).shuffle(order)
    with path.open("w", encoding="utf-8") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NS}">\n<BkToCstmrDbtCdtNtfctn>\n'
            "<GrpHdr><MsgId>BENCH-CAMT054</MsgId><CreDtTm>2026-11-27T18:00:00</CreDtTm></GrpHdr>\n"
            "<Ntfctn><Id>BENCH-NTF-1</Id><CreDtTm>2026-11-27T18:00:00</CreDtTm>"
            f"<Acct><Id><IBAN>{CREDITOR_IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>\n"
        )
        for n in order:
            out.write(_entry(n, 1 + n * step))
        out.write("</Ntfctn>\n</BkToCstmrDbtCdtNtfctn>\n</Document>\n")


def _entry(n: int, i: int) -> str:
    code = CODES[n % len(CODES)]
    cents = f"{amount(i) // 100}.{amount(i) % 100:02d}"
    domain = (
        "<Domn><Cd>PMNT</Cd><Fmly><Cd>IDDT</Cd>"
        f"<SubFmlyCd>{'PRDD' if code == 'MD06' else 'UPDD'}</SubFmlyCd></Fmly></Domn>"
    )
    day = BOOKED.isoformat()
    batch, block = (i - 1) // PER_BATCH + 1, (i - 1) // PER_BLOCK + 1
    return (
        f'<Ntry><Amt Ccy="EUR">{cents}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>'
        f"<BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>"
        f"<AcctSvcrRef>BENCH-RTN-{n:09d}</AcctSvcrRef><BkTxCd>{domain}</BkTxCd>"
        f"<NtryDtls><TxDtls><Refs><MsgId>{message_id(batch)}</MsgId><PmtInfId>{payment_info_id(block)}</PmtInfId>"
        f"<EndToEndId>{end_to_end_id(i)}</EndToEndId><MndtId>RUM-{i:010d}</MndtId></Refs>"
        f'<AmtDtls><InstdAmt><Amt Ccy="EUR">{cents}</Amt></InstdAmt></AmtDtls>'
        f"<RltdDts><IntrBkSttlmDt>{COLLECTED.isoformat()}</IntrBkSttlmDt></RltdDts>"
        f"<RtrInf><OrgnlBkTxCd>{domain}</OrgnlBkTxCd><Rsn><Cd>{code}</Cd></Rsn></RtrInf>"
        "</TxDtls></NtryDtls></Ntry>\n"
    )


def seeded(workdir: Path, ledger: int) -> Path:
    """A SQLite ledger of ``ledger`` published debits, at the migration head (see ``_template``)."""
    template = workdir / f"reconcile-ledger-{ledger}.db"
    _template("seed", str(ledger), str(workdir))
    return template


def seeded_postgresql(ledger: int) -> str:
    """The name of a PostgreSQL template database of ``ledger`` published debits, vacuumed and
    analysed as a ledger in service would be. Each run copies it (``CREATE DATABASE ...
    TEMPLATE``), in seconds."""
    name = f"sepa_bench_reconcile_{ledger}"
    _template("seed-postgresql", str(ledger), name)
    return name


def _template(*args: str) -> None:
    """Seed a template once per size, or bring the one seeded before to the migration head
    (a column added since costs a second, a seed minutes): in a process of its own, so
    that the workload's peak RSS is the reconciliation's."""
    subprocess.run([sys.executable, "-m", "bench.returns", *args], check=True)


def _admin() -> Engine:
    from bench.ledger import PG_SERVER

    return create_engine(make_url(PG_SERVER).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")


def _url(name: str) -> str:
    from bench.ledger import PG_SERVER

    return str(make_url(PG_SERVER).set(database=name))


def _seed_postgresql_template(ledger: int, name: str) -> None:
    from bench.ledger import advance_sequences, drop

    admin = _admin()
    with admin.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    if found:
        db = Database(_url(name))
        migrate.upgrade(db)
        db.dispose()
        admin.dispose()
        return
    part = f"{name}_part"
    drop(_url(part))
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{part}"'))
    try:
        db = Database(_url(part))
        migrate.upgrade(db)
        seed_published(db, ledger)
        advance_sequences(db)
        db.dispose()
        tuned = create_engine(make_url(_url(part)).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        with tuned.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
        tuned.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{part}" RENAME TO "{name}"'))
    except BaseException:
        drop(_url(part))
        raise
    finally:
        admin.dispose()


def copy_of(template: str) -> str:
    """A fresh database copied from ``template``; its URL."""
    name = f"sepa_bench_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return _url(name)


def _seed_template(ledger: int, workdir: Path) -> None:
    template = workdir / f"reconcile-ledger-{ledger}.db"
    if template.exists():
        db = Database(f"sqlite:///{template}")
        migrate.upgrade(db)
        db.dispose()  # the last connection checkpoints the WAL: the file is the whole ledger
        return
    part = template.with_suffix(".part")
    part.unlink(missing_ok=True)
    db = Database(f"sqlite:///{part}")
    migrate.upgrade(db)
    seed_published(db, ledger)
    db.dispose()
    part.rename(template)


def reconcile(
    count: int, workdir: Path, ledger: int, backend: str = "sqlite", *, shuffled: bool = False
) -> dict[str, float | None]:
    """Reconcile ``count`` returns into ``ledger`` debits: the seconds of the reconciliation,
    and the CPU seconds of the two processes it runs in one after the other (``engine_cpu_s``:
    this one; ``backend_cpu_s``: the PostgreSQL backend of its connection, when the server runs
    on this machine). A file is applied in one transaction, so no number of cores takes the
    wall time below the larger of the two (BENCHMARKS.md, "Which lines more cores would move").

    Both backends copy a template ledger seeded once per size (not timed); the copy is
    dropped afterwards."""
    from bench.ledger import drop
    from sepa_engine import logs
    from sepa_engine.services.reconciliation import reconcile_file

    if count > ledger:
        raise SystemExit(f"{count} returns need a ledger of at least as many debits, not {ledger}")
    logs.configure(json_lines=True)
    database = workdir / f"reconcile-{count}-{ledger}.db"
    if backend == "sqlite":
        template = seeded(workdir, ledger)
        shutil.copyfile(template, database)
        url = f"sqlite:///{database}"
    else:
        url = copy_of(seeded_postgresql(ledger))
    returns = workdir / f"returns-{count}-{ledger}.xml"
    write_returns(returns, count, ledger, shuffled=shuffled)
    db = Database(url)
    try:
        started, engine_cpu = time.perf_counter(), time.process_time()
        with db.transaction() as s:
            backend_pid = None if db.is_sqlite else s.execute(text("SELECT pg_backend_pid()")).scalar_one()
            backend_cpu = postgres_cpu_seconds(backend_pid)
            report = reconcile_file(s, returns, clock=FixedClock(NOW))
            after = postgres_cpu_seconds(backend_pid)
            backend_cpu = None if backend_cpu is None or after is None else after - backend_cpu
        seconds, engine_cpu = time.perf_counter() - started, time.process_time() - engine_cpu
        problems = [w for w in report.warnings if "XSD" in w or "schema" in w.lower()]
        if report.applied != count or report.exceptions or problems:
            raise SystemExit(
                f"reconciled {report.applied} of {count} returns, {report.exceptions} exceptions, warnings {problems[:3]}"
            )
        return {"seconds": seconds, "engine_cpu_s": round(engine_cpu, 2),
                "backend_cpu_s": None if backend_cpu is None else round(backend_cpu, 2)}
    finally:
        db.dispose()
        database.unlink(missing_ok=True)
        returns.unlink(missing_ok=True)
        drop(url)


def postgres_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds of a PostgreSQL backend process on this machine; None when there is none
    to read (SQLite, or a server elsewhere: a pid of this machine that is not a postgres
    process is not read)."""
    if pid is None:
        return None
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            return None
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime, the 14th and 15th fields of proc(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"] and len(sys.argv) == 4:
        _seed_template(int(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1:2] == ["seed-postgresql"] and len(sys.argv) == 4:
        _seed_postgresql_template(int(sys.argv[2]), sys.argv[3])
    else:
        raise SystemExit("usage: python -m bench.returns seed <ledger> <workdir> | seed-postgresql <ledger> <name>")
