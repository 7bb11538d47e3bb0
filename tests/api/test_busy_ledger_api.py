"""An API write that waits for another transaction's locks waits a bounded time, on both
backends, then answers 503 ``ledger_busy``: nothing was done and the key stored nothing.

Before: on SQLite the wait ended at the busy timeout and was answered as an outage ("the
ledger's database did not answer"); on PostgreSQL an enqueue on a mandate a reconciliation
held waited with no bound at all, and a group of enqueues whose transaction gave up ran
every call alone, each waiting again for the same lock.

The holder here is what a reconciliation holds: on PostgreSQL the failed debits' mandates
``FOR UPDATE`` (``repo.mandate_rows_for_update``), on SQLite the ledger's write lock.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from sepa_engine.api.app import create_app
from sepa_engine.api.batcher import EnqueueBatcher
from sepa_engine.api.routes.registry import request_result
from sepa_engine.api.settings import ApiSettings
from sepa_engine.config import Settings
from sepa_engine.db.models import Mandate
from sepa_engine.db.repositories import returns as returns_repo
from sepa_engine.db.session import Database, lock_wait_expired
from tests import accounts_world as world
from tests.api.conftest import make_token
from tests.api.test_enqueue_batcher import body, call, rows
from tests.concurrency import until_a_writer_waits_for_a_lock

BASE = "/v1/creditors/pressimmo"
REQUEST = {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "remittance": "Facture F-1", "on_account": True}
WAIT = 0.3


@contextlib.contextmanager
def reconciliation_holding_the_mandate(db: Database) -> Iterator[None]:
    """A transaction holding what a reconciliation of a return on RUM-PRE-AG-1 holds."""
    with db.transaction() as session:
        mandate_id = session.scalar(select(Mandate.id).where(Mandate.reference == "RUM-PRE-AG-1"))
        assert mandate_id is not None
        returns_repo.mandate_rows_for_update(session, [mandate_id])
        if db.is_sqlite:  # BEGIN IMMEDIATE took the ledger's write lock; write to be plain
            session.execute(text("UPDATE mandates SET status = status WHERE id = :id"), {"id": mandate_id})
        yield


@contextlib.contextmanager
def api_waiting(db: Database, tmp_path, wait: float) -> Iterator[tuple[TestClient, Database, dict[str, str]]]:  # type: ignore[no-untyped-def]
    """An API on a ledger with one account (AG-1, mandate RUM-PRE-AG-1), whose writes wait
    ``wait`` seconds for a lock: its client, its database and a write token's headers."""
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    token = make_token(db, "billing", ["pressimmo"], "write")
    api_db = Database(db.url, lock_wait_seconds=wait)
    settings = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", inbox_dir=tmp_path / "inbox")
    app = create_app(settings, api_db, world.clock(), ApiSettings(token_cache_seconds=0, lock_wait_seconds=wait))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, api_db, {"Authorization": f"Bearer {token}"}
    finally:
        api_db.dispose()


@pytest.fixture
def busy(db: Database, tmp_path) -> Iterator[tuple[TestClient, Database, dict[str, str]]]:  # type: ignore[no-untyped-def]
    with api_waiting(db, tmp_path, WAIT) as api:
        yield api


def _refusals(client: TestClient, code: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name == "sepa_engine_api_refusals":
            return sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels["code"] == code)
    return 0.0


def test_an_enqueue_on_a_mandate_a_reconciliation_holds_answers_503_ledger_busy_after_the_wait_and_acts_once_sent_again(
    busy, db: Database,
) -> None:
    client, _api_db, auth = busy
    calls = {
        "enqueue (the fast path)": f"{BASE}/debit-requests",
        "enqueue (the route)": f"{BASE}/debit-requests?via=route",
    }
    for name, path in calls.items():
        with reconciliation_holding_the_mandate(db):
            started = time.monotonic()
            response = client.post(path, json=REQUEST, headers={**auth, "Idempotency-Key": "k-1"})
            waited = time.monotonic() - started
        assert response.status_code == 503, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json", name
        assert response.headers["retry-after"] == "5", name
        problem = response.json()
        assert problem["code"] == "ledger_busy", (name, problem)
        assert "nothing was done" in problem["detail"], problem
        assert waited >= WAIT, (name, waited)  # it did wait for the holder, as long as it may
        assert rows(db) == (0, 0), name
    assert _refusals(client, "ledger_busy") == len(calls)  # what ops alert on (README, "Metrics")
    # The key refused with 503 stored nothing: the same call now enqueues, once.
    again = client.post(f"{BASE}/debit-requests", json=REQUEST, headers={**auth, "Idempotency-Key": "k-1"})
    assert again.status_code == 201, again.text
    replay = client.post(f"{BASE}/debit-requests", json=REQUEST, headers={**auth, "Idempotency-Key": "k-1"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert rows(db) == (1, 1)


def test_a_group_of_enqueues_that_meets_a_held_lock_is_answered_busy_without_each_call_waiting_again(
    busy, db: Database,
) -> None:
    _client, api_db, _auth = busy
    batcher = EnqueueBatcher(api_db, world.clock(), request_result)
    alone: list[int] = []
    group = [call(n) for n in range(1, 5)]
    for n, c in enumerate(group, start=1):
        c.alone = lambda n=n: alone.append(n)  # type: ignore[assignment,misc]
    try:
        with reconciliation_holding_the_mandate(db):
            batcher._run(group)
    finally:
        batcher.stop()
    assert alone == []  # no call ran alone: each would have waited for the same lock again
    failures = [c.done.exception() for c in group]
    assert all(failure is not None and lock_wait_expired(failure) for failure in failures), failures
    assert rows(db) == (0, 0)


def test_a_group_answered_busy_leaves_the_writer_able_to_enqueue_the_next_group(busy, db: Database) -> None:
    _client, api_db, _auth = busy
    batcher = EnqueueBatcher(api_db, world.clock(), request_result)
    try:
        with reconciliation_holding_the_mandate(db):
            batcher._run([call(1), call(2)])
        group = [call(3), call(4)]
        batcher._run(group)
    finally:
        batcher.stop()
    assert [c.done.result().status_code for c in group] == [201, 201]
    assert [json.loads(c.done.result().body)["amount"] for c in group] == ["3.00", "4.00"]
    assert rows(db) == (2, 2)


def test_the_api_bounds_its_lock_waits_and_the_jobs_keep_theirs(db: Database) -> None:
    api_db = Database(db.url, lock_wait_seconds=WAIT)
    setting = "PRAGMA busy_timeout" if db.is_sqlite else "SHOW lock_timeout"
    try:
        with api_db.reader() as api:
            bounded = api.execute(text(setting)).scalar()
        with db.reader() as job:
            kept = job.execute(text(setting)).scalar()
    finally:
        api_db.dispose()
    # A collection, a schedule or a reconciliation waits for the one before it (on SQLite up
    # to its busy timeout, as before).
    assert (bounded, kept) == ((300, 60_000) if db.is_sqlite else ("300ms", "0"))


def test_a_job_holding_one_creditors_mandate_does_not_hold_back_another_creditors_enqueues(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Before: each API process wrote through one thread, so an enqueue waiting for pressimmo's
    # reconciliation held back every call queued behind it, other creditors' included. On
    # PostgreSQL another writer takes the other creditors' calls once they have waited
    # RESCUE_AFTER; SQLite has one write lock for the whole ledger, so there every call waits.
    world.creditor(db, "pressimmo")
    world.creditor(db, "other", group="other-group")
    world.account(db, "pressimmo", "AG-1")
    world.account(db, "other", "OT-1")
    tokens = {code: make_token(db, f"billing-{code}", [code], "write") for code in ("pressimmo", "other")}
    api_db = Database(db.url, lock_wait_seconds=60)
    settings = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", inbox_dir=tmp_path / "inbox")
    app = create_app(settings, api_db, world.clock(), ApiSettings(token_cache_seconds=0))

    def enqueue(client: TestClient, code: str, mandate: str):  # type: ignore[no-untyped-def]
        return client.post(f"/v1/creditors/{code}/debit-requests", content=body(5, mandate),
                           headers={"Authorization": f"Bearer {tokens[code]}", "Idempotency-Key": f"k-{code}",
                                    "Content-Type": "application/json"})

    try:
        with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
            with reconciliation_holding_the_mandate(db):
                held = pool.submit(enqueue, client, "pressimmo", "RUM-PRE-AG-1")
                until_a_writer_waits_for_a_lock(db)
                beside = pool.submit(enqueue, client, "other", "RUM-OTH-OT-1")
                if db.is_sqlite:
                    time.sleep(1.0)
                    assert not beside.done()  # the ledger's one write lock
                else:
                    assert beside.result(timeout=30).status_code == 201
                    assert not held.done()  # still waiting for the reconciliation
            assert held.result(timeout=30).status_code == 201  # the holder committed: it went on
            assert beside.result(timeout=30).status_code == 201
    finally:
        api_db.dispose()
    assert rows(db) == (2, 2)
