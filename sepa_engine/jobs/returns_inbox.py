"""Thin job: reconcile every new bank file in the inbox, then move it out of the way.

``import_inbox(db, inbox_dir, clock)`` takes the directory as a parameter until the
settings carry it (a ``[paths] inbox_dir`` key, default ``var/inbox``, the bank
simulator's default output). Each file is reconciled in its own transaction and then
moved to ``processed/`` (applied or already imported) or ``failed/`` (refused), so a
crash between the commit and the move only leaves a file that the next pass recognises
by its sha256 and moves without applying it again. ``should_stop`` is asked before each
file: a stop leaves the files not yet read in the inbox for the next pass.

One reconciliation at a time per ledger (``locks.RECONCILIATION_LOCK``, held for the whole
pass): an operator's ``returns import-inbox`` beside the scheduler's found files the other had
just moved and failed on them (tests/jobs/test_returns_inbox.py). A second import waits for
the first, then lists what is left.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from sepa_engine import errors, private_files, review
from sepa_engine.clock import Clock
from sepa_engine.db import locks
from sepa_engine.db.session import Database
from sepa_engine.services import reconciliation

log = structlog.get_logger("sepa_engine.jobs.returns_inbox")

PROCESSED = "processed"
FAILED = "failed"
_LOCK_POLL_SECONDS = 0.2


@dataclass
class InboxReport:
    processed: list[reconciliation.ReconcileReport] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # file name -> why
    # should_stop said stop before every file was read; the rest waits in the inbox.
    interrupted: bool = False

    @property
    def exceptions(self) -> int:
        return sum(report.exceptions for report in self.processed)


def _never() -> bool:
    return False


def import_inbox(
    db: Database, inbox_dir: str | os.PathLike[str], clock: Clock, *, should_stop: Callable[[], bool] = _never
) -> InboxReport:
    inbox = Path(inbox_dir)
    report = InboxReport()
    if not inbox.is_dir():
        return report
    with contextlib.ExitStack() as held:
        # Waited for with ``should_stop`` asked meanwhile, as before each file: a scheduler
        # told to stop does not wait for an operator's import to end.
        while True:
            try:
                held.enter_context(locks.run_lock(db, locks.RECONCILIATION_LOCK))
                break
            except locks.LockBusy:
                if should_stop():
                    report.interrupted = True
                    log.info("inbox.interrupted", processed=0, failed=0)
                    return report
                time.sleep(_LOCK_POLL_SECONDS)
        _import_each(db, inbox, clock, should_stop, report)
    return report


def _import_each(db: Database, inbox: Path, clock: Clock, should_stop: Callable[[], bool], report: InboxReport) -> None:
    # Name order, for a reproducible log. The order of a pain.002 and the camt of the same
    # file does not matter: each debit is either rejected or settled, and the file's status
    # is recomputed from its debits after each import.
    for path in sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")):
        if should_stop():
            report.interrupted = True
            log.info("inbox.interrupted", processed=len(report.processed), failed=len(report.failed))
            break
        sha256: str | None = None
        try:
            sha256 = reconciliation.file_sha256(path)
            result = _reconcile(db, path, clock)
        except (errors.MessageError, errors.SchemaViolation) as exc:
            with db.transaction() as session:
                reconciliation.record_refusal(session, path, sha256, str(exc), clock=clock)
            report.failed[path.name] = str(exc)
            _move(path, inbox / FAILED)
            log.warning("inbox.refused", file=path.name, error=str(exc))
            continue
        report.processed.append(result)
        # Committed: the bank's answers join the timeline of the files they touched.
        review.refresh(db, result.batches)
        _move(path, inbox / PROCESSED)


def _reconcile(db: Database, path: Path, clock: Clock) -> reconciliation.ReconcileReport:
    # Whole or not at all, so a run PostgreSQL undid to break a deadlock is run again.
    return db.run_in_transaction(
        lambda session: reconciliation.reconcile_file(session, path, clock=clock), what=f"reconcile {path.name}"
    )


def _move(path: Path, folder: Path) -> None:
    private_files.ensure_dir(folder)
    target = folder / path.name
    counter = 1
    # Never overwrite an earlier file of the same name (a bank may reuse names).
    while target.exists():
        target = folder / f"{path.stem}.{counter}{path.suffix}"
        counter += 1
    os.replace(path, target)
