"""Hold the scheduler lock of a ledger until killed, for the "dead holder" tests.

    python -m tests.hold_scheduler_lock DB_URL

Prints "held" once the lock is taken, then sleeps; the test kills it with SIGKILL, so no
release code runs: only the kernel (flock) or the server (advisory lock) can free it.
"""

from __future__ import annotations

import sys
import time

from sepa_engine.db.locks import run_lock
from sepa_engine.db.session import Database
from sepa_engine.jobs.nightly import SCHEDULER_LOCK


def main() -> None:
    db = Database(sys.argv[1])
    with run_lock(db, SCHEDULER_LOCK):
        print("held", flush=True)
        time.sleep(120)


if __name__ == "__main__":
    main()
