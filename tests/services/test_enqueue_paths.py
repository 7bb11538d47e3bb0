"""Every door a debit request comes in by gives the same answers and stores the same rows.

One request (``registry.enqueue_request``, which ``load``, pay-now, the schedule and
retries use), the batch path (``batch_enqueue.enqueue_requests``: ``enqueue FILE``, the
API's group commit, ``Engine.enqueue_many``) and the HTTP API (the fast path, the route and
its batcher) run the same steps, each for its own creditor of the same ledger: new
requests, business problems stored, every kind of refusal, replays and conflicting
replays. A rule written for one door and not the others makes this test fail.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from sepa_engine import errors
from sepa_engine.api.app import create_app
from sepa_engine.api.settings import ApiSettings
from sepa_engine.config import Settings
from sepa_engine.db.models import Creditor, DebitRequest, Mandate
from sepa_engine.db.session import Database
from sepa_engine.domain.money import format_cents
from sepa_engine.services import batch_enqueue, registry
from sepa_engine.services.inputs import DebitRequestInput
from tests import accounts_world as world
from tests.api.conftest import make_token

MANDATE = "RUM-SAME-1"
GOOD: dict[str, Any] = {"mandate": MANDATE, "amount": "12.00", "remittance": "Rent November", "on_account": True}

# (idempotency key, body): the same for every door.
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("new", GOOD),
    ("new", GOOD),  # replay
    ("new", {**GOOD, "amount": "13.00"}),  # conflicting replay
    ("zero", {**GOOD, "amount": "0.00"}),  # stored, with its problem
    ("zero", {**GOOD, "amount": "0.00"}),  # replay of a request with a problem
    ("dated", {**GOOD, "requested_date": "2026-12-01", "final": True}),
    ("ultimate", {**GOOD, "ultimate_creditor_name": "Agence du Centre"}),
    ("unknown-mandate", {**GOOD, "mandate": "RUM-NONE"}),
    ("third-decimal", {**GOOD, "amount": "1.234"}),
    ("long-remittance", {**GOOD, "remittance": "x" * 141}),
    ("two-ways", {**GOOD, "invoices": ["F-1"]}),
    ("unknown-invoice", {"mandate": MANDATE, "amount": "5.00", "invoices": ["F-NONE"]}),
    ("over-balance", {"mandate": MANDATE, "amount": "5.00"}),
    ("after-refusals", {**GOOD, "amount": "7.50"}),
    ("new", GOOD),  # still a replay after everything else
]

Outcome = tuple[Any, ...]


def _error(exc: errors.SepaEngineError) -> Outcome:
    return ("refused", exc.code, exc.field, exc.rule, exc.reason_code)


def _answer(result: registry.RequestResult) -> Outcome:
    problems = tuple((p["code"], p["field"], p["reason_code"]) for p in result.problems)
    return ("stored", result.created, result.mandate_reference, format_cents(result.amount_cents),
            result.requested_date.isoformat(), result.status, problems)


def _one_by_one(db: Database, creditor: str) -> Callable[[str, dict[str, Any]], Outcome]:
    def step(key: str, body: dict[str, Any]) -> Outcome:
        try:
            with db.transaction() as s:
                return _answer(registry.enqueue_request(s, creditor, DebitRequestInput.from_mapping(body),
                                                        idempotency_key=key, clock=world.clock()))
        except errors.SepaEngineError as exc:
            return _error(exc)

    return step


def _batch(db: Database, creditor: str) -> Callable[[str, dict[str, Any]], Outcome]:
    def step(key: str, body: dict[str, Any]) -> Outcome:
        try:
            with db.transaction() as s:
                item = batch_enqueue.EnqueueItem(key, DebitRequestInput.from_mapping(body))
                result = batch_enqueue.enqueue_requests(s, creditor, [item], clock=world.clock())
        except errors.SepaEngineError as exc:
            assert exc.location in {"items[0]", None}  # the batch names the item where it can
            return _error(exc)
        assert (result.created, result.replayed) == ((1, 0) if result.results[0].created else (0, 1))
        return _answer(result.results[0])

    return step


def _http(client: TestClient, token: str, creditor: str) -> Callable[[str, dict[str, Any]], Outcome]:
    def step(key: str, body: dict[str, Any]) -> Outcome:
        answer = client.post(f"/v1/creditors/{creditor}/debit-requests", content=json.dumps(body).encode(),
                             headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key,
                                      "Content-Type": "application/json"})
        document = answer.json()
        if answer.status_code >= 400:
            # The key travels in a header, and the API names it so.
            field = "idempotency_key" if document["field"] == "Idempotency-Key" else document["field"]
            return ("refused", document["code"], field, document["rule"], document["reason_code"])
        # A replay is the first answer again, word for word, marked by its header.
        replayed = answer.headers.get("Idempotent-Replayed") == "true"
        assert answer.status_code == (201 if document["created"] else 200)
        problems = tuple((p["code"], p["field"], p["reason_code"]) for p in document["problems"])
        return ("stored", document["created"] and not replayed, document["mandate"], document["amount"],
                document["requested_date"], document["status"], problems)

    return step


def _plain(outcome: Outcome, creditor: str) -> Outcome:
    return tuple(v.replace(creditor, "<creditor>") if isinstance(v, str) else v for v in outcome)


def _stored(db: Database, creditor: str) -> list[dict[str, Any]]:
    with db.reader() as s:
        creditor_id = s.scalar(select(Creditor.id).where(Creditor.code == creditor))
        rows = s.execute(
            select(DebitRequest, Mandate.reference).join(Mandate, Mandate.id == DebitRequest.mandate_id)
            .where(DebitRequest.creditor_id == creditor_id).order_by(DebitRequest.id)
        ).all()
    stored = []
    for row, reference in rows:
        values = {column.key: getattr(row, column.key) for column in DebitRequest.__table__.columns}
        assert values.pop("end_to_end_id") == registry.end_to_end_id(creditor, values["id"])
        for own in ("id", "creditor_id", "mandate_id"):
            values.pop(own)
        stored.append({**values, "mandate": reference})
    return stored


@pytest.fixture
def client(db: Database, tmp_path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", inbox_dir=tmp_path / "inbox")
    app = create_app(settings, db, world.clock(), ApiSettings(max_body_bytes=64 * 1024, token_cache_seconds=60))
    with TestClient(app) as test_client:
        yield test_client


def test_every_enqueue_path_gives_the_same_answers_and_stores_the_same_rows(db: Database, client: TestClient) -> None:
    doors = {"registry": "pressimmo", "batch": "belles-demeures", "http": "poliris"}
    for creditor in doors.values():
        world.creditor(db, creditor)
        world.account(db, creditor, "AG-1", mandate=MANDATE)
    token = make_token(db, "billing", [doors["http"]], "write")
    client.get("/v1/creditors", headers={"Authorization": f"Bearer {token}"})  # cached: the fast path serves
    paths = {
        "registry": _one_by_one(db, doors["registry"]),
        "batch": _batch(db, doors["batch"]),
        "http": _http(client, token, doors["http"]),
    }
    transcripts = {name: [step(key, body) for key, body in STEPS] for name, step in paths.items()}

    expected = transcripts["registry"]
    kinds = [outcome[:2] for outcome in expected]
    # The steps do cover what they claim: news, replays, a conflict, and refusals of several kinds.
    assert kinds.count(("stored", True)) == 5 and kinds.count(("stored", False)) == 3
    refusals = [outcome[1] for outcome in expected if outcome[0] == "refused"]
    assert sorted(refusals) == ["idempotency_conflict", "invalid_amount", "invalid_format", "invalid_length",
                                "not_found", "not_found", "nothing_due"]
    for name, transcript in transcripts.items():
        for (key, _body), got, want in zip(STEPS, transcript, expected, strict=True):
            if name == "http" and got[1] == "invalid_body":
                # The API's JSON Schema refuses a malformed field before the services see it:
                # the same field, as 422 like every format error.
                assert want[0] == "refused" and want[1] in {"invalid_amount", "invalid_length"}
                assert got[2] == want[2], (name, key)
                continue
            # The creditor's code is the only word that differs (each door has its own).
            assert _plain(got, doors[name]) == _plain(want, doors["registry"]), (name, key)

    rows = {name: _stored(db, creditor) for name, creditor in doors.items()}
    assert len(rows["registry"]) == 5
    assert rows["batch"] == rows["registry"]
    assert rows["http"] == rows["registry"]
