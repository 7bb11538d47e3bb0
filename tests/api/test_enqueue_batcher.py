"""The group-commit writer of enqueues, driven directly with a group of calls."""

from __future__ import annotations

import json

from fastapi.responses import Response
from sqlalchemy import func, select

from sepa_engine.api import writes
from sepa_engine.api.batcher import Call, EnqueueBatcher
from sepa_engine.api.routes.registry import request_result
from sepa_engine.db.models import DebitRequest
from sepa_engine.db.service_models import ApiIdempotency
from sepa_engine.db.session import Database
from sepa_engine.services.inputs import DebitRequestInput
from tests.api.conftest import Api

ALONE = Response("alone", status_code=299)


def body(n: int, mandate: str = "RUM-PRE-AG-1") -> bytes:
    return json.dumps({"mandate": mandate, "amount": f"{n}.00", "on_account": True}).encode()


def call(n: int, mandate: str = "RUM-PRE-AG-1", key: str | None = None) -> Call:
    path = "/v1/creditors/pressimmo/debit-requests"
    return Call("pressimmo", "creditor:pressimmo", 1, key or f"k-{n}", "POST", path,
                writes.request_hash("POST", path, body(n, mandate)), DebitRequestInput(mandate=mandate, amount=f"{n}.00", on_account=True),
                alone=lambda: ALONE)


def rows(db: Database) -> tuple[int, int]:
    """Debit requests and stored API answers in the ledger."""
    with db.reader() as s:
        return (s.scalar(select(func.count()).select_from(DebitRequest)) or 0,
                s.scalar(select(func.count()).select_from(ApiIdempotency)) or 0)


def test_a_group_is_enqueued_in_one_transaction_with_every_answer_stored(api: Api) -> None:
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [call(n) for n in range(1, 6)]
    batcher._run(group)
    answers = [c.done.result() for c in group]
    assert [a.status_code for a in answers] == [201] * 5
    assert [json.loads(a.body)["amount"] for a in answers] == ["1.00", "2.00", "3.00", "4.00", "5.00"]
    assert rows(api.db) == (5, 5)
    replay = api.client.post("/v1/creditors/pressimmo/debit-requests", content=body(3),
                             headers={**api.auth(), "Idempotency-Key": "k-3", "Content-Type": "application/json"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == json.loads(answers[2].body)


def test_a_group_with_a_bad_call_or_a_repeated_key_leaves_every_call_to_run_alone(api: Api) -> None:
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    for group in ([call(1), call(2, "RUM-NOBODY")], [call(3), call(4, key="k-3")]):
        batcher._run(group)
        assert [c.done.result() for c in group] == [ALONE, ALONE]
    assert rows(api.db) == (0, 0)


def test_a_group_with_a_key_the_services_already_know_writes_nothing_before_every_call_runs_alone(api: Api) -> None:
    # The key came another way (a file, the Python API): the group rolls back whole, so the
    # other call's request is not left committed without its stored answer (it would then
    # answer 200 "created": false when run alone).
    from sepa_engine.services import registry

    with api.db.transaction() as session:
        registry.enqueue_request(session, "pressimmo", DebitRequestInput(mandate="RUM-PRE-AG-1", amount="2.00", on_account=True),
                                 idempotency_key="k-2", clock=api.clock)
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [call(1), call(2)]
    batcher._run(group)
    assert [c.done.result() for c in group] == [ALONE, ALONE]
    assert rows(api.db) == (1, 0)


def test_a_group_with_a_key_another_route_stored_rolls_back_and_every_call_runs_alone(api: Api) -> None:
    # No lookup before the group: the answers' INSERT meets the stored (scope, key) and the
    # whole group, its debit requests included, rolls back.
    stored = api.post("/v1/creditors/pressimmo/debtor-accounts", {"reference": "AG-2", "name": "Agence Deux"}, key="k-2")
    assert stored.status_code == 201
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [call(1), call(2)]
    batcher._run(group)
    assert [c.done.result() for c in group] == [ALONE, ALONE]
    assert rows(api.db) == (0, 1)
    conflict = api.client.post("/v1/creditors/pressimmo/debit-requests", content=body(2),
                               headers={**api.auth(), "Idempotency-Key": "k-2", "Content-Type": "application/json"})
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_conflict"
