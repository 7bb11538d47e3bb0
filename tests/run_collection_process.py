"""A collection run in its own process, for crash and concurrency tests.

    python -m tests.run_collection_process DB_URL OUTBOX ID_PREFIX [CRASH_AT] [LOCK_WAIT] [CREDITOR]

With CRASH_AT the process dies at that checkpoint with os._exit: no finally blocks, no
rollback handlers, no temporary-file cleanup run, as when the machine loses power.
Exit codes: 0 done, 3 lock busy, 70 crashed as asked.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.locks import LockBusy
from sepa_engine.db.session import Database
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)


def main() -> int:
    url, outbox, prefix = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    crash_at = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
    lock_wait = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    creditor = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] != "-" else None

    def checkpoint(name: str) -> None:
        if name == crash_at:
            os._exit(70)

    settings = Settings(database_url=url, var_dir=outbox.parent, outbox_dir=outbox, chunk_size=50, lock_wait_seconds=lock_wait)
    db = Database(url)
    try:
        report = run_collection(db, settings, FixedClock(NOW), SequentialIds(prefix), checkpoint=checkpoint, creditor_code=creditor)
    except LockBusy:
        return 3
    print(f"files={len(report.files)} assigned={report.assigned} skipped={','.join(report.skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
