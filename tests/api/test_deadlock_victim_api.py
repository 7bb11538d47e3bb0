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

import pytest
from sqlalchemy import select, text

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from sepa_engine.api.app import create_app
from sepa_engine.api.settings import ApiSettings
from sepa_engine.config import Settings
from sepa_engine.db.models import DebtorAccount, Mandate
from sepa_engine.db.session import Database
from tests import accounts_world as world
from tests.api.conftest import make_token
from tests.api.test_busy_ledger_api import BASE, REQUEST
from tests.api.test_enqueue_batcher import rows
from tests.concurrency import in_thread, until_a_writer_waits_for_a_lock

# Longer than PostgreSQL's deadlock_timeout (1 s): the enqueue's wait ends in the deadlock
# check, not in its lock_timeout.
WAIT = 10.0


@pytest.fixture
def api(db: Database, tmp_path) -> Iterator[tuple[TestClient, dict[str, str]]]:  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    token = make_token(db, "billing", ["pressimmo"], "write")
    api_db = Database(db.url, lock_wait_seconds=WAIT)
    settings = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", inbox_dir=tmp_path / "inbox")
    app = create_app(settings, api_db, world.clock(), ApiSettings(token_cache_seconds=0, lock_wait_seconds=WAIT))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, {"Authorization": f"Bearer {token}"}
    finally:
        api_db.dispose()


@pytest.mark.parametrize("path", [f"{BASE}/debit-requests", f"{BASE}/debit-requests?via=route"],
                         ids=["the fast path", "the route"])
def test_an_enqueue_aborted_to_break_a_deadlock_answers_503_ledger_busy_and_acts_once_sent_again(
    api, db: Database, path: str,
) -> None:
    client, auth = api
    headers = {**auth, "Idempotency-Key": "k-1"}
    with db.transaction() as other:
        mandate_id = other.scalar(select(Mandate.id).where(Mandate.reference == "RUM-PRE-AG-1"))
        if db.is_sqlite:  # BEGIN IMMEDIATE took the ledger's write lock
            other.execute(text("UPDATE debtor_accounts SET reference = reference"))
        else:
            other.execute(text("SET LOCAL deadlock_timeout = '10s'"))
            other.execute(select(DebtorAccount.id).with_for_update())
        posting, answered = in_thread(lambda: client.post(path, json=REQUEST, headers=headers))
        # The enqueue holds its mandate and waits for the account; this one now wants the mandate.
        until_a_writer_waits_for_a_lock(db, or_ends=posting)
        other.execute(select(Mandate.id).where(Mandate.id == mandate_id).with_for_update())
        if db.is_sqlite:
            other.execute(text("UPDATE mandates SET status = status"))
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
