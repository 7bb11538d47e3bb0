"""Job runs in the ledger (``job_runs``): one row per run of a job, what ``status`` reports.

A row is committed when the job starts (so a run in progress, or one whose process died,
is visible) and completed when it ends, each in its own short transaction.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from sepa_engine.clock import Clock
from sepa_engine.db.repositories import jobs as repo
from sepa_engine.db.session import Database


def start(db: Database, job: str, trigger: str, clock: Clock) -> int:
    with db.transaction() as session:
        return repo.start_run(session, job, trigger, clock.now(), socket.gethostname(), os.getpid()).id


def finish(db: Database, run_id: int, clock: Clock, outcome: str, exit_code: int, summary: dict[str, Any]) -> None:
    with db.transaction() as session:
        repo.finish_run(session, run_id, clock.now(), outcome, exit_code, json.dumps(summary, default=str, sort_keys=True))


def abandon_unfinished(db: Database) -> int:
    """Mark runs left open by a scheduler that died as interrupted (call under the scheduler lock).

    Every job run happens under the scheduler lock, so once this process holds it, any run
    still open belongs to a process that is gone.
    """
    with db.transaction() as session:
        return repo.abandon_unfinished(session, json.dumps({"error": "the process running it stopped before it finished"}))
