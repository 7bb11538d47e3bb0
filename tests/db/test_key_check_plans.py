"""Foreign-key checks: planned again for every row by default, so a load that fills a table
its own rows reference never keeps a plan made while that table was small; the collection
run and the reconciliation, which fill no table their checks look up, let each check keep
one plan (db/session.py, reuse_key_check_plans). A batch enqueue fills what its checks look up
(its selections reference its requests and invoices): its chunks keep their plans only once those
tables are past the size at which no kept plan can be a sequential scan
(key_check_plans_kept_when_large).

Regression: planning every check again cost the collection run of 100,000 requests on
PostgreSQL a third of the server's time (12.2 s against 8.0 s), 15 s a run against 10.4 s."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.exc import IntegrityError

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import DebitRequest
from sepa_engine.db.session import reuse_key_check_plans
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
REUSE = "SET LOCAL plan_cache_mode = auto"


# What each kind of statement these tests look for starts with, or holds.
OPT_OUT = ((REUSE, "opt-out"),)
KEEP_AND_RESTORE = (("WITH before AS MATERIALIZED", "keep"), ("set_config('plan_cache_mode', %(mode)s", "restore"))


@contextmanager
def statements_named(db, marks: tuple[tuple[str, str], ...]) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The name of each statement the block runs that holds one of ``marks`` (mark, name), in
    order; identifiers are compared without their quotes."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        bare = statement.replace('"', "")
        for mark, name in marks:
            if mark in bare:
                seen.append(name)
                break

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _plan_cache_mode(session) -> str:  # type: ignore[no-untyped-def]
    return str(session.execute(text("SHOW plan_cache_mode")).scalar_one())


def _orphan_request(session, creditor: int) -> None:  # type: ignore[no-untyped-def]
    session.execute(insert(DebitRequest).values(
        creditor_id=creditor, mandate_id=999_999, idempotency_key="orphan", content_hash="x" * 64,
        end_to_end_id="ORPHAN-1", amount_cents=100, requested_date=dt.date(2026, 11, 24), final=False,
        status="pending", status_changed_at=NOW, created_at=NOW, attempt=1, amend_new_debtor_agent=False,
    ))


def test_key_checks_are_planned_per_row_unless_a_transaction_says_otherwise_and_still_run(db):
    creditor = ledger.creditor(db)
    if not db.is_sqlite:
        with db.transaction() as s:
            assert _plan_cache_mode(s) == "force_custom_plan"
            # The engine's own statements are never prepared, so never run on a cached plan.
            assert s.connection().connection.driver_connection.prepare_threshold is None
            reuse_key_check_plans(s)
            assert _plan_cache_mode(s) == "auto"
        with db.transaction() as s:
            assert _plan_cache_mode(s) == "force_custom_plan"
    # Whatever their plans, the checks run: a request naming no mandate is refused.
    with pytest.raises(IntegrityError), db.transaction() as s:
        reuse_key_check_plans(s)
        _orphan_request(s, creditor)


def test_the_run_lets_its_assignment_and_each_hand_over_keep_their_key_check_plans(db, tmp_path: Path, database_url):
    creditor = ledger.creditor(db, max_per_file=2)
    ledger.many_requests(db, creditor, 5)
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    with statements_named(db, OPT_OUT) as seen:
        report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"))

    assert [f.count for f in report.files] == [2, 2, 1]
    # A transaction per planned file (the first with the assignment), three hand-overs;
    # SQLite plans its own way and is told nothing.
    assert len(seen) == (0 if db.is_sqlite else 6)


def test_the_reconciliation_lets_its_key_checks_keep_their_plans_and_still_applies_whole(db, tmp_path: Path, database_url):
    from tests.services.test_reconciliation import _pain002_tx, collect, reconcile, requests

    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    collect(db, settings, requests=3)
    (debit, *_rest) = requests(db).values()
    path = _pain002_tx(tmp_path / "reject.xml", "RUN000001", debit.end_to_end_id, debit.amount_cents, "AM04")
    with statements_named(db, OPT_OUT) as seen:
        report = reconcile(db, path)

    assert report.applied == 1 and requests(db)[debit.end_to_end_id].status == "rejected"
    assert len(seen) == (0 if db.is_sqlite else 1)


# --- a batch enqueue: it fills tables its own checks look up --------------------------------
def _enqueue(db, count: int, prefix: str = "k"):  # type: ignore[no-untyped-def]
    from sepa_engine.services.batch_enqueue import EnqueueItem, enqueue_requests
    from sepa_engine.services.inputs import DebitRequestInput

    items = [EnqueueItem(f"{prefix}{i}", DebitRequestInput(mandate="RUM-KC-1", amount="1.00", on_account=True)) for i in range(count)]
    with db.transaction() as s:
        result = enqueue_requests(s, "martin", items, clock=FixedClock(NOW))
        mode = None if db.is_sqlite else _plan_cache_mode(s)
    return result, mode


def test_a_new_ledgers_enqueue_plans_each_key_check_for_its_row(db):
    ledger.mandate(db, ledger.creditor(db), reference="RUM-KC-1")
    with statements_named(db, KEEP_AND_RESTORE) as seen:
        result, mode = _enqueue(db, 20)

    assert result.created == 20
    # PostgreSQL asks once for the chunk, finds the tables small, and changes nothing.
    assert seen == ([] if db.is_sqlite else ["keep"])
    assert mode in (None, "force_custom_plan")


def test_an_established_ledgers_enqueue_keeps_its_key_check_plans_for_the_chunk_only(db, monkeypatch):
    from sepa_engine.db import session as session_module

    ledger.mandate(db, ledger.creditor(db), reference="RUM-KC-1")
    # Every table past the threshold, as on a ledger in use.
    monkeypatch.setattr(session_module, "KEY_CHECK_PAGES", 0)
    with statements_named(db, KEEP_AND_RESTORE) as seen:
        result, mode = _enqueue(db, 20)
        small, _ = _enqueue(db, 15, prefix="small")

    assert (result.created, small.created) == (20, 15)
    # The chunk's checks keep their plans, and the transaction's statements after it are
    # planned per row again; a chunk under UNNEST_FROM rows is not worth the round trips.
    assert seen == ([] if db.is_sqlite else ["keep", "restore"])
    assert mode in (None, "force_custom_plan")


def test_kept_key_check_plans_still_refuse_a_row_naming_nothing_and_leave_with_its_rollback(db, monkeypatch):
    from sepa_engine.db import session as session_module
    from sepa_engine.db.session import key_check_plans_kept_when_large

    creditor = ledger.creditor(db)
    monkeypatch.setattr(session_module, "KEY_CHECK_PAGES", 0)
    with db.transaction() as s:
        with pytest.raises(IntegrityError), s.begin_nested(), key_check_plans_kept_when_large(s, ["debit_requests"]) as kept:
            assert kept is not db.is_sqlite
            if not db.is_sqlite:
                assert _plan_cache_mode(s) == "auto"
            _orphan_request(s, creditor)
            s.flush()
        # The savepoint's rollback took the setting with it.
        if not db.is_sqlite:
            assert _plan_cache_mode(s) == "force_custom_plan"
