"""Parallel collection on PostgreSQL: what 2 engine processes gain over 1.

Set-up (not timed): one PostgreSQL ledger of N due requests spread over ``CREDITORS``
creditors (N / 10 each). Timed: P processes (``_run_one`` each) started
together, each a full collection run over all creditors; each takes the creditors no other
process holds (``db/locks.creditor_lock``). The children import everything and connect first, say
"ready", and all start when told, so interpreter start-up is not timed; the figure is from
that instant to the last child's end.

    python -m bench.workloads collect-parallel-postgresql N DIR P
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

from bench.ledger import CHUNK, NOW, T0, account_rows, advance_sequences, database_for, drop, mandate_row
from sepa_engine.db import migrate
from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, Mandate
from sepa_engine.db.session import Database

CREDITORS = 10


def creditor_identifier(n: int) -> str:
    """A valid French creditor identifier per n (EPC262-08: ISO 7064 MOD 97-10 over the
    national identifier and "FR00")."""
    national = f"{n:06d}"
    digits = "".join(str(int(c, 36)) for c in national + "FR00")
    return f"FR{98 - int(digits) % 97:02d}ZZZ{national}"


def seed(db: Database, count: int) -> None:
    with db.transaction() as s:
        s.execute(insert(Creditor), [
            dict(id=k, code=f"bench{k}", name="Gestion Immobiliere Martin", creditor_identifier=creditor_identifier(k),
                 iban="FR7630006000011234567890189", bic="AGRIFRPP", local_instrument="CORE",
                 pain008_version="pain.008.001.08", lead_days=1, cutoff="16:00", timezone="Europe/Paris",
                 max_per_file=100_000, first_collection_policy="frst", created_at=T0)
            for k in range(1, CREDITORS + 1)
        ])
    for start in range(0, count, CHUNK):
        ids = range(start + 1, min(start + CHUNK, count) + 1)
        owner = {i: 1 + i % CREDITORS for i in ids}
        with db.transaction() as s:
            s.execute(insert(DebtorAccount), [{**row, "creditor_id": owner[row["id"]]} for row in account_rows(ids)])
            s.execute(insert(Mandate), [{**mandate_row(i), "creditor_id": owner[i]} for i in ids])
            s.execute(insert(DebitRequest), [
                {"id": i, "creditor_id": owner[i], "mandate_id": i, "idempotency_key": f"k{i}", "content_hash": "x" * 64,
                 "end_to_end_id": f"BENCH-{i:012d}", "amount_cents": 1_000 + i % 100_000,
                 "remittance": f"Loyer novembre 2026 {i}", "requested_date": dt.date(2026, 11, 24), "final": False,
                 "status": "pending", "status_changed_at": T0, "created_at": T0, "attempt": 1,
                 "amend_new_debtor_agent": False}
                for i in ids])


def collect(count: int, workdir: Path, processes: int) -> float:
    url = database_for("postgresql", workdir)
    try:
        db = Database(url)
        migrate.upgrade(db)
        seed(db, count)
        advance_sequences(db)
        db.dispose()
        outbox = workdir / f"outbox-{uuid.uuid4().hex[:6]}"
        children = [
            subprocess.Popen(
                # -c rather than -m: multiprocessing runs a main module again in each of the
                # run's helper processes, and this one imports SQLAlchemy and the ledger's seed
                # (helper_processes.py); a command-line main is not run again.
                [sys.executable, "-c", _RUN_ONE, url, str(outbox), f"P{n}X"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for n in range(processes)
        ]
        for child in children:
            assert child.stdout is not None
            while child.stdout.readline().strip() != "ready":
                pass
        start_at = time.time()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            out, _ = child.communicate()
            if child.returncode != 0:
                raise SystemExit(f"a collection process exited {child.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        collected = sum(r["assigned"] for r in results)
        if collected != count or sum(r["transactions"] for r in results) != count:
            raise SystemExit(f"collected {collected} of {count}")
        return max(r["ended_at"] for r in results) - start_at
    finally:
        drop(url)


_RUN_ONE = "import sys; from pathlib import Path; from bench.parallel import _run_one; _run_one(sys.argv[1], Path(sys.argv[2]), sys.argv[3])"


def _run_one(url: str, outbox: Path, prefix: str) -> None:
    from sepa_engine import logs
    from sepa_engine.clock import FixedClock
    from sepa_engine.config import Settings
    from sepa_engine.ids import SequentialIds
    from sepa_engine.services.collection import run_collection

    logs.configure(json_lines=True)
    db = Database(url)
    settings = Settings(database_url=url, var_dir=outbox.parent, outbox_dir=outbox)
    with db.engine.connect():
        pass  # the pool's first connection is made before the start, as a running engine has it
    print("ready", flush=True)
    sys.stdin.readline()
    report = run_collection(db, settings, FixedClock(NOW), SequentialIds(prefix))
    ended_at = time.time()
    db.dispose()
    print(json.dumps({
        "assigned": report.assigned, "transactions": sum(f.count for f in report.files),
        "files": len(report.files), "skipped": report.skipped, "ended_at": ended_at,
    }))


