"""An API write that PostgreSQL aborts to break a deadlock is answered 503 ``ledger_busy``,
as a lock wait that gave up is: nothing was done, and the same call sent again acts once.

The engine's writers take a debtor's mandates before its account, each kind in id order
(ARCHITECTURE, "One lock order"), but a cycle can still form: a reconciliation locks each
segment's mandates in id order, not the whole file's, and an operator's SQL keeps no order at
all. PostgreSQL then aborts one of the two transactions (SQLSTATE 40P01). Before, an enqueue it
aborted was answered 500 "internal error", which a client has no reason to send again.

The other transaction here locks the account, then the mandate: the order no engine writer
takes, so that the cycle forms at a known moment. It gives PostgreSQL ten seconds before it
looks for a cycle itself, so the enqueue (one second, the default) is the one aborted.
SQLite queues writers at BEGIN IMMEDIATE: there the enqueue waits for the other and acts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import psycopg.errors
import pytest
from sqlalchemy.exc import OperationalError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from sepa_engine.api.batcher import EnqueueBatcher
from sepa_engine.api.routes.registry import request_result
from sepa_engine.db.session import Database
from tests import accounts_world as world
from tests.api.test_busy_ledger_api import BASE, REQUEST, api_waiting
from tests.api.test_enqueue_batcher import ALONE, call, rows
from tests.concurrency import in_thread, the_other_side_of_a_cycle

# Longer than PostgreSQL's deadlock_timeout (1 s): the enqueue's wait ends in the deadlock
# check, not in its lock_timeout.
WAIT = 10.0


@pytest.fixture
def api(db: Database, tmp_path) -> Iterator[tuple[TestClient, Database, dict[str, str]]]:  # type: ignore[no-untyped-def]
    with api_waiting(db, tmp_path, WAIT) as api:
        yield api


@pytest.mark.parametrize("path", [f"{BASE}/debit-requests", f"{BASE}/debit-requests?via=route"],
                         ids=["the fast path", "the route"])
def test_an_enqueue_undone_to_break_a_deadlock_answers_503_ledger_busy_and_acts_once_sent_again(
    api, db: Database, path: str,
) -> None:
    client, _api_db, auth = api
    headers = {**auth, "Idempotency-Key": "k-1"}
    posting, answered = in_thread(lambda: client.post(path, json=REQUEST, headers=headers), start=False)

    # The enqueue share-locks its mandate, then waits for the account.
    the_other_side_of_a_cycle(db, posting, go=posting.start)
    posting.join(timeout=30)
    (first,) = answered

    if db.is_sqlite:
        assert first.status_code == 201, first.text  # type: ignore[attr-defined]
    else:
        assert first.status_code == 503, first.text  # type: ignore[attr-defined]
        assert first.headers["retry-after"] == "5"  # type: ignore[attr-defined]
        problem = first.json()  # type: ignore[attr-defined]
        assert problem["code"] == "ledger_busy" and "nothing was done" in problem["detail"], problem
        assert rows(db) == (0, 0)
        again = client.post(path, json=REQUEST, headers=headers)
        assert again.status_code == 201, again.text
    replay = client.post(path, json=REQUEST, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert rows(db) == (1, 1)


def test_a_group_of_enqueues_undone_to_break_a_deadlock_runs_each_call_alone(db: Database, monkeypatch) -> None:
    # Unlike a lock wait that gave up (each call alone would wait for the same holder again),
    # a cycle is over once one side is undone: each call, run alone, may well get through.
    def undone(*_args: object) -> None:
        raise OperationalError("INSERT ...", {}, psycopg.errors.DeadlockDetected("deadlock detected"))

    batcher = EnqueueBatcher(db, world.clock(), request_result)
    monkeypatch.setattr(batcher, "_together", undone)
    group = [call(1), call(2)]
    try:
        batcher._run(group)
    finally:
        batcher.stop()
    assert [c.done.result() for c in group] == [ALONE, ALONE]
