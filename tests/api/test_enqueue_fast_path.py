"""The enqueue fast path (api/fastpath.py) answers exactly as the FastAPI route does.

The shared ``api`` fixture runs with the token cache off, so the fast path never serves its
calls; here the cache is on, and every call, plain or not, is sent both to an app with the
fast path and to one without it (the middleware taken out), and their answers compared."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from sepa_engine.api.app import create_app
from sepa_engine.api.fastpath import EnqueueFastPath
from sepa_engine.api.settings import ApiSettings
from sepa_engine.config import Settings
from sepa_engine.db.session import Database
from tests.api.conftest import MAX_BODY, Api

PATH = "/v1/creditors/pressimmo/debit-requests"
GOOD = {"mandate": "RUM-PRE-AG-1", "amount": "12.00", "remittance": "Invoice 1", "on_account": True}


@pytest.fixture
def clients(api: Api, db: Database, tmp_path) -> Iterator[tuple[TestClient, TestClient]]:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", inbox_dir=tmp_path / "inbox")
    cached = ApiSettings(max_body_bytes=MAX_BODY, token_cache_seconds=60)
    fast = create_app(settings, db, api.clock, cached)
    slow = create_app(settings, db, api.clock, cached)
    slow.user_middleware = [m for m in slow.user_middleware if m.cls is not EnqueueFastPath]
    assert len(slow.user_middleware) == len(fast.user_middleware) - 1
    with TestClient(fast) as fast_client, TestClient(slow) as slow_client:
        for client in (fast_client, slow_client):
            for token in api.tokens.values():  # every token in the cache, as after a first call
                client.get("/v1/creditors", headers={"Authorization": f"Bearer {token}"})
        yield fast_client, slow_client


def _answer(response, prefix: str) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    text = response.text.replace(prefix, "<p>")
    try:
        document = json.loads(text)
    except ValueError:
        document = text
    if isinstance(document, dict):
        for volatile in ("id", "end_to_end_id"):
            document.pop(volatile, None)
    headers = {name: response.headers.get(name, "").replace(prefix, "<p>")
               for name in ("content-type", "idempotency-key", "idempotent-replayed", "www-authenticate")}
    return response.status_code, headers, document


def _calls(api: Api) -> list[tuple[str, str, list[tuple[str, str]], bytes]]:
    """(name, path, headers, body); ``{p}`` in a key stands for the app's own key prefix."""
    write = f"Bearer {api.tokens['write']}"
    good = json.dumps(GOOD).encode()
    plain = [("authorization", write), ("content-type", "application/json")]
    return [
        ("plain", PATH, [*plain, ("idempotency-key", "{p}1")], good),
        ("replay", PATH, [*plain, ("idempotency-key", "{p}1")], good),
        ("conflict", PATH, [*plain, ("idempotency-key", "{p}1")], json.dumps({**GOOD, "amount": "13.00"}).encode()),
        ("plain again", PATH, [*plain, ("idempotency-key", "{p}2")], json.dumps({**GOOD, "amount": "14.00"}).encode()),
        ("not json", PATH, [*plain, ("idempotency-key", "{p}3")], b"{not json"),
        ("schema", PATH, [*plain, ("idempotency-key", "{p}4")], json.dumps({**GOOD, "amount": 12}).encode()),
        ("extra field", PATH, [*plain, ("idempotency-key", "{p}5")], json.dumps({**GOOD, "x": 1}).encode()),
        ("bad amount", PATH, [*plain, ("idempotency-key", "{p}6")], json.dumps({**GOOD, "amount": "1.234"}).encode()),
        ("nul", PATH, [*plain, ("idempotency-key", "{p}7")], json.dumps({**GOOD, "remittance": "a\x00b"}).encode()),
        ("unknown mandate", PATH, [*plain, ("idempotency-key", "{p}8")], json.dumps({**GOOD, "mandate": "RUM-NONE"}).encode()),
        ("no token", PATH, [("idempotency-key", "{p}9")], good),
        ("unknown token", PATH, [("authorization", "Bearer sek_nope"), ("idempotency-key", "{p}10")], good),
        ("lower-case scheme", PATH, [("authorization", f"bearer {api.tokens['write']}"), ("idempotency-key", "{p}11")], good),
        ("spaces", PATH, [("authorization", f"Bearer  {api.tokens['write']} "), ("idempotency-key", "{p}12")], good),
        ("read token", PATH, [("authorization", f"Bearer {api.tokens['read']}"), ("idempotency-key", "{p}13")], good),
        ("other creditor", PATH, [("authorization", f"Bearer {api.tokens['other']}"), ("idempotency-key", "{p}14")], good),
        ("no key", PATH, plain, good),
        ("empty key", PATH, [*plain, ("idempotency-key", "")], good),
        ("long key", PATH, [*plain, ("idempotency-key", "{p}" + "k" * 100)], good),
        ("two keys", PATH, [*plain, ("idempotency-key", "{p}15"), ("idempotency-key", "{p}16")], good),
        ("two tokens", PATH, [*plain, ("authorization", write), ("idempotency-key", "{p}17")], good),
        ("query", PATH + "?x=1", [*plain, ("idempotency-key", "{p}18")], json.dumps({**GOOD, "amount": "15.00"}).encode()),
        ("other creditor path", "/v1/creditors/other/debit-requests", [*plain, ("idempotency-key", "{p}19")], good),
        ("bad creditor path", "/v1/creditors/Bad_Code/debit-requests", [*plain, ("idempotency-key", "{p}20")], good),
        ("too large", PATH, [*plain, ("idempotency-key", "{p}21")], b" " * (MAX_BODY + 1)),
    ]


def test_every_enqueue_gets_the_answer_the_route_gives(api: Api, clients: tuple[TestClient, TestClient]) -> None:
    fast, slow = clients
    for name, path, headers, body in _calls(api):
        answers = []
        for client, prefix in ((fast, "fast-"), (slow, "slow-")):
            sent = [(header, value.replace("{p}", prefix)) for header, value in headers]
            answers.append(_answer(client.post(path, content=body, headers=sent), prefix))
        assert answers[0] == answers[1], name
        assert answers[0][0] < 500, name


def test_plain_enqueues_are_served_without_the_route(api: Api, clients: tuple[TestClient, TestClient], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fast, _slow = clients

    def route_reached(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the FastAPI route was reached")

    # The route parses its body through routes.common.parsed; the fast path does not.
    monkeypatch.setattr("sepa_engine.api.routes.registry.parsed", route_reached)
    headers = {"Authorization": f"Bearer {api.tokens['write']}", "Idempotency-Key": "fast-only"}
    answer = fast.post(PATH, json=GOOD, headers=headers)
    assert answer.status_code == 201
    replay = fast.post(PATH, json=GOOD, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == answer.json()
