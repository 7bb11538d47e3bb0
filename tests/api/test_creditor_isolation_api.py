"""A token never sees another creditor's data: every route of the app is tried with a token
of the wrong creditor, pointing at objects that exist at that creditor. The routes are read
from the app itself, so a new route cannot be forgotten."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from sepa_engine.api.app import all_routes, create_app
from sepa_engine.clock import SystemClock
from sepa_engine.config import Settings
from sepa_engine.db.service_models import ApiIdempotency
from sepa_engine.db.session import Database
from sepa_engine.services import disputes, registry
from sepa_engine.services.account_inputs import DisputeInput
from sepa_engine.services.inputs import DebitRequestInput
from tests import accounts_world as world
from tests.api.conftest import Api

# The creditors list shows only the token's own; a group payment checks every creditor it
# names (test_group_payment_api.py); health shows nothing.
UNSCOPED = {"/v1/creditors", "/v1/health", "/v1/group-payments"}


def _routes() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite://"), Database("sqlite://"), SystemClock())
    found = [(method, route.path) for route in all_routes(app) for method in sorted(route.methods)]
    # The walk finds exactly what the OpenAPI document describes: no route hides from it.
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert set(found) == documented
    return found


ROUTES = _routes()
SCOPED = [(method, path) for method, path in ROUTES if path not in UNSCOPED]


def test_every_route_but_the_creditor_list_and_health_is_under_a_creditor() -> None:
    assert {path for _, path in ROUTES} - {path for _, path in SCOPED} == UNSCOPED
    assert all(path.startswith("/v1/creditors/{creditor}") for _, path in SCOPED)
    assert {(m, p) for m, p in ROUTES if p in UNSCOPED} == {
        ("GET", "/v1/creditors"), ("GET", "/v1/health"), ("POST", "/v1/group-payments")
    }


def _other_objects(api: Api) -> dict[str, str]:
    """Objects of creditor "other" that a naive route would happily return or change."""
    with api.db.transaction() as s:
        request = registry.enqueue_request(
            s, "other", DebitRequestInput(mandate="RUM-OTH-OT-1", amount="50.00", on_account=True), idempotency_key="other-1",
            clock=api.clock,
        )
    world.entry(api.db, "OT-F-1", "80.00", creditor_code="other", reference="OT-1")
    with api.db.transaction() as s:
        dispute = disputes.open_dispute(
            s, "other", "OT-1", DisputeInput.of("not ordered", "OT-F-1"), actor="portal", idempotency_key="d-1",
            clock=api.clock,
        )
    return {"creditor": "other", "account": "OT-1", "request_id": str(request.id), "dispute_id": str(dispute.id),
            "batch_id": "1", "exception_id": "1"}


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


@pytest.mark.parametrize(("method", "path"), SCOPED, ids=[f"{m} {p}" for m, p in SCOPED])
def test_a_token_of_another_creditor_gets_404_and_no_data(api: Api, method: str, path: str) -> None:
    values = _other_objects(api)
    url = _fill(path, values)
    with api.db.reader() as s:
        stored_before = s.scalar(select(func.count()).select_from(ApiIdempotency))
    response = api.client.request(
        method, url, json={}, headers={**api.auth("write"), "Idempotency-Key": f"probe-{method}-{path}"[:100]}
    )
    assert response.status_code in (403, 404), (method, url, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    text = response.text
    for secret in ("OT-1", "RUM-OTH", "OT-F-1", "not ordered", "OTHER-0"):
        assert secret not in text
    with api.db.reader() as s:
        assert s.scalar(select(func.count()).select_from(ApiIdempotency)) == stored_before
    # The same route for the token's own creditor is not refused for scope.
    own = _fill(path, {**values, "creditor": "pressimmo", "account": "AG-1"})
    answer = api.client.request(method, own, json={}, headers={**api.auth("write"), "Idempotency-Key": "own-probe"})
    assert not (answer.status_code == 404 and answer.json().get("field") == "creditor")


WRITES = [(m, p) for m, p in SCOPED if m in ("POST", "PUT", "DELETE", "PATCH")]


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
def test_a_read_token_is_refused_every_write_with_403(api: Api, method: str, path: str) -> None:
    url = _fill(path, {"creditor": "pressimmo", "account": "AG-1", "request_id": "1", "dispute_id": "1",
                       "batch_id": "1", "exception_id": "1"})
    response = api.client.request(method, url, json={}, headers={**api.auth("read"), "Idempotency-Key": "k"})
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"
