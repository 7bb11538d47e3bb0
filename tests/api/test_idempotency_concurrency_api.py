"""Two calls with the same Idempotency-Key at the same time: one acts, the other gets the
stored response (same body) or 409 (another body); the action and its stored answer are
committed together."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from sepa_engine.api.routes import registry as routes
from sepa_engine.db.models import DebitRequest, DebtorAccount
from sepa_engine.db.service_models import ApiIdempotency
from sepa_engine.services import api_tokens
from tests.api.conftest import Api

URL = "/v1/creditors/pressimmo/debit-requests"
BODY = {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "on_account": True}
# Enqueues go through the group-commit writer; other writes run in the request's own thread
# (on PostgreSQL the second waits on the unique index of api_idempotency).
ROUTES = {
    "enqueue": (URL, BODY, {"mandate": "RUM-PRE-AG-1", "amount": "99.00", "on_account": True}, "enqueue_request", DebitRequest),
    "account": ("/v1/creditors/pressimmo/debtor-accounts", {"reference": "AG-9", "name": "Neuf"},
                {"reference": "AG-9", "name": "Autre"}, "register_debtor_account", DebtorAccount),
}


def counts(api: Api, model: type = DebitRequest) -> tuple[int, int]:
    with api.db.reader() as s:
        return (s.scalar(select(func.count()).select_from(model)) or 0,
                s.scalar(select(func.count()).select_from(ApiIdempotency)) or 0)


ARRIVED_WHILE_FIRST_ACTED: list[bool] = []


@pytest.fixture(params=sorted(ROUTES))
def route(request: pytest.FixtureRequest) -> tuple:  # type: ignore[type-arg]
    return ROUTES[request.param]


@pytest.fixture
def slow_first_enqueue(monkeypatch: pytest.MonkeyPatch, route: tuple) -> threading.Event:  # type: ignore[type-arg]
    """The first enqueue holds its transaction open after acting until a second call has
    arrived (and a moment more, for that call to reach the key); every call notes whether it
    arrived while the first was still inside its transaction. A fixed sleep alone was not
    enough: on a loaded CI machine the second call arrived after it (stop 33's CI run)."""
    acting, arrived, done = threading.Event(), threading.Event(), threading.Event()
    name = route[3]
    real = getattr(routes.registry, name)
    real_authenticate = api_tokens.authenticate
    ARRIVED_WHILE_FIRST_ACTED.clear()

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(*args, **kwargs)
        if not acting.is_set():
            acting.set()
            arrived.wait(10)
            time.sleep(0.3)
            done.set()
        return result

    def noted(*args, **kwargs):  # type: ignore[no-untyped-def]
        overlapping = acting.is_set() and not done.is_set()
        ARRIVED_WHILE_FIRST_ACTED.append(overlapping)
        if overlapping:
            arrived.set()
        return real_authenticate(*args, **kwargs)

    monkeypatch.setattr(routes.registry, name, slow)
    monkeypatch.setattr(api_tokens, "authenticate", noted)
    return acting


def test_the_same_key_twice_at_once_acts_once_and_both_get_the_first_response(
    api: Api, route: tuple, slow_first_enqueue: threading.Event  # type: ignore[type-arg]
) -> None:
    url, body, _other, _name, model = route
    before = counts(api, model)[0]
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(api.post, url, body, key="same")
        assert slow_first_enqueue.wait(10)
        second = pool.submit(api.post, url, body, key="same")
        a, b = first.result(), second.result()
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json() == b.json()
    assert b.headers["Idempotent-Replayed"] == "true"
    assert counts(api, model) == (before + 1, 1)
    assert ARRIVED_WHILE_FIRST_ACTED == [False, True]  # the two calls did overlap


def test_the_same_key_with_another_body_at_once_is_refused_with_409(
    api: Api, route: tuple, slow_first_enqueue: threading.Event  # type: ignore[type-arg]
) -> None:
    url, body, other, _name, model = route
    before = counts(api, model)[0]
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(api.post, url, body, key="same")
        assert slow_first_enqueue.wait(10)
        second = pool.submit(api.post, url, other, key="same")
        a, b = first.result(), second.result()
    assert a.status_code == 201
    assert b.status_code == 409 and b.json()["code"] == "idempotency_conflict"
    assert counts(api, model) == (before + 1, 1)


def test_a_refused_call_stores_nothing_and_the_key_can_be_used_once_the_cause_is_fixed(api: Api) -> None:
    refused = api.post(URL, {**BODY, "mandate": "RUM-NOT-YET"}, key="k")
    assert refused.status_code == 404
    assert counts(api) == (0, 0)
    accepted = api.post(URL, BODY, key="k")
    assert accepted.status_code == 201
    assert counts(api) == (1, 1)


def test_an_action_that_fails_after_acting_leaves_neither_the_action_nor_a_stored_answer(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sepa_engine.api.writes as writes

    def broken(document: object) -> str:
        raise RuntimeError("crash between the action and its stored answer")

    monkeypatch.setattr(writes, "dumps", broken)
    with pytest.raises(RuntimeError):
        api.post(URL, BODY, key="k")
    assert counts(api) == (0, 0)


def test_concurrent_enqueues_are_committed_together_each_with_its_own_answer(api: Api) -> None:
    bodies = [{"mandate": "RUM-PRE-AG-1", "amount": f"{n}.00", "on_account": True} for n in range(1, 41)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda n: api.post(URL, bodies[n], key=f"k-{n}"), range(40)))
    assert [a.status_code for a in answers] == [201] * 40
    assert [a.json()["amount"] for a in answers] == [b["amount"] for b in bodies]
    assert len({a.json()["end_to_end_id"] for a in answers}) == 40
    assert counts(api) == (40, 40)
    replays = [api.post(URL, bodies[n], key=f"k-{n}") for n in range(40)]
    assert [r.json() for r in replays] == [a.json() for a in answers]


def test_a_bad_call_in_a_group_does_not_change_the_answers_of_the_others(api: Api) -> None:
    calls = [({"mandate": "RUM-PRE-AG-1" if n % 5 else "RUM-NOBODY", "amount": "1.00", "on_account": True}, f"k-{n}") for n in range(30)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda call: api.post(URL, call[0], key=call[1]), calls))
    assert [a.status_code for a in answers] == [201 if n % 5 else 404 for n in range(30)]
    assert counts(api) == (24, 24)
