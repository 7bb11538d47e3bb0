from __future__ import annotations

from sqlalchemy import func, select

from sepa_engine.db.models import DebitRequest
from tests.api.conftest import Api

BASE = "/v1/creditors/pressimmo"
REQUEST = {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "remittance": "Facture F-1", "on_account": True}


def count_requests(api: Api) -> int:
    with api.db.reader() as s:
        return s.scalar(select(func.count()).select_from(DebitRequest)) or 0


def test_enqueue_creates_a_pending_request_with_its_end_to_end_id(api: Api) -> None:
    response = api.post(f"{BASE}/debit-requests", REQUEST, key="req-1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["amount"] == "76.00"
    assert body["end_to_end_id"].startswith("PRESSIMMO-")
    assert body["requested_date"] == "2026-11-23"
    read = api.get(f"{BASE}/debit-requests/{body['id']}")
    assert read.status_code == 200
    assert read.json()["end_to_end_id"] == body["end_to_end_id"]


def test_same_key_and_body_returns_the_first_response_without_acting_again(api: Api) -> None:
    first = api.post(f"{BASE}/debit-requests", REQUEST, key="req-1")
    second = api.post(f"{BASE}/debit-requests", REQUEST, key="req-1")
    assert second.status_code == first.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count_requests(api) == 1


def test_same_key_with_another_body_is_refused_with_409(api: Api) -> None:
    api.post(f"{BASE}/debit-requests", REQUEST, key="req-1")
    response = api.post(f"{BASE}/debit-requests", {**REQUEST, "amount": "77.00"}, key="req-1")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_conflict"
    assert count_requests(api) == 1


def test_a_write_without_an_idempotency_key_is_refused(api: Api) -> None:
    response = api.client.post(f"{BASE}/debit-requests", json=REQUEST, headers=api.auth())
    assert response.status_code == 422
    assert any(e["field"] == "Idempotency-Key" and e["rule"] == "is required" for e in response.json()["errors"])
    assert count_requests(api) == 0


def test_every_bad_field_of_a_body_is_listed_with_its_rule(api: Api) -> None:
    response = api.post(f"{BASE}/debit-requests", {"amount": 76.0, "remittance": "x" * 141, "colour": "red"}, key="bad")
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_body"
    assert problem["type"].endswith("/invalid_body")
    fields = {e["field"] for e in problem["errors"]}
    assert {"amount", "remittance"} <= fields
    assert {"field": "mandate", "rule": "is required", "code": "missing"} in problem["errors"]
    assert {"field": "colour", "rule": "is not a known field", "code": "extra_forbidden"} in problem["errors"]
    assert count_requests(api) == 0


def test_engine_errors_carry_their_stable_code_field_and_rule(api: Api) -> None:
    response = api.post(f"{BASE}/debit-requests", {**REQUEST, "mandate": "RUM-UNKNOWN"}, key="unknown")
    assert response.status_code == 404
    problem = response.json()
    assert (problem["code"], problem["field"], problem["rule"]) == ("not_found", "mandate", "is not a mandate of creditor pressimmo")


def test_a_request_the_run_will_refuse_is_stored_with_its_problems(api: Api) -> None:
    response = api.post(f"{BASE}/debit-requests", {**REQUEST, "amount": "0.00"}, key="zero")
    assert response.status_code == 201
    assert [p["reason_code"] for p in response.json()["problems"]] == ["AM01"]


def test_a_pending_request_is_cancelled_and_a_cancelled_one_stays_so(api: Api) -> None:
    created = api.post(f"{BASE}/debit-requests", REQUEST, key="req-1").json()
    response = api.delete(f"{BASE}/debit-requests/{created['id']}", key="cancel-1")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    again = api.delete(f"{BASE}/debit-requests/{created['id']}", key="cancel-2")
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"


def test_a_request_no_longer_pending_cannot_be_cancelled(api: Api) -> None:
    created = api.post(f"{BASE}/debit-requests", REQUEST, key="req-1").json()
    with api.db.transaction() as s:
        s.get(DebitRequest, created["id"]).status = "submitted"  # type: ignore[union-attr]
    response = api.delete(f"{BASE}/debit-requests/{created['id']}", key="cancel-1")
    assert response.status_code == 409
    assert response.json()["code"] == "request_not_cancellable"


def test_lists_are_paginated_with_a_cursor(api: Api) -> None:
    for n in range(5):
        api.post(f"{BASE}/debit-requests", {**REQUEST, "amount": f"{n + 1}.00"}, key=f"req-{n}")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get(f"{BASE}/debit-requests", params=params).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen)
    assert pages == 3
    assert api.get(f"{BASE}/debit-requests", params={"cursor": "garbage!"}).status_code == 422


def test_a_read_token_cannot_write(api: Api) -> None:
    response = api.post(f"{BASE}/debit-requests", REQUEST, key="req-1", token="read")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert api.get(f"{BASE}/debit-requests", token="read").status_code == 200


def test_no_token_or_an_unknown_token_is_refused_with_401(api: Api) -> None:
    assert api.client.get(f"{BASE}/debit-requests").status_code == 401
    response = api.client.get(f"{BASE}/debit-requests", headers={"Authorization": "Bearer sek_nope"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_bodies_over_the_configured_size_are_refused_with_413(api: Api) -> None:
    response = api.post(f"{BASE}/debit-requests", {**REQUEST, "remittance": "x" * 70_000}, key="big")
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_an_unexpected_failure_is_a_problem_document_without_details(api: Api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from sepa_engine.services import api_views

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret detail FR7630006000011234567890189")

    monkeypatch.setattr(api_views, "get_request", broken)
    with TestClient(api.client.app, raise_server_exceptions=False) as client:
        response = client.get(f"{BASE}/debit-requests/1", headers=api.auth())
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text and "FR76" not in response.text
