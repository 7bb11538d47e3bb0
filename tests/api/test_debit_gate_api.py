"""The account gate over HTTP (issue 12): POST .../debit-requests refuses, as every other
entry point does, a debit the account cannot give, naming field, rule and reason code."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sepa_engine.api.app import create_app
from sepa_engine.api.fastpath import EnqueueFastPath
from sepa_engine.api.settings import ApiSettings
from sepa_engine.config import Settings
from sepa_engine.db.models import DebitRequest
from sepa_engine.services import disputes
from sepa_engine.services.account_inputs import DisputeInput
from tests import accounts_world as world
from tests.api.conftest import MAX_BODY, Api, TestClient

URL = "/v1/creditors/pressimmo/debit-requests"


@pytest.fixture
def disputed(api: Api) -> Api:
    world.entry(api.db, "F1", "1450.00")
    world.entry(api.db, "F2", "552.50")
    with api.db.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("not ordered", "F1"), actor="portal",
                              idempotency_key="d-1", clock=world.clock())
    return api


def stored(api: Api) -> int:
    with api.db.reader() as s:
        return s.scalar(select(func.count()).select_from(DebitRequest)) or 0


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "route"])
def test_a_raw_request_taking_disputed_money_is_refused_with_its_reason_code(disputed: Api, tmp_path, fast_path) -> None:
    # Issue 12: "a raw request of 2,002.50 on that account's mandate was enqueued and collected in full".
    app = create_app(
        Settings(database_url=disputed.db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox"),
        disputed.db, disputed.clock, ApiSettings(max_body_bytes=MAX_BODY, token_cache_seconds=0),
    )
    if not fast_path:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not EnqueueFastPath]
    with TestClient(app) as client:
        response = client.post(URL, json={"mandate": "RUM-PRE-AG-1", "amount": "2002.50"},
                               headers={**disputed.auth(), "Idempotency-Key": "raw-1"})
    assert response.status_code == 409, response.text
    problem = response.json()
    assert (problem["code"], problem["field"], problem["reason_code"]) == ("amount_exceeds_balance", "amount", "MS02")
    assert stored(disputed) == 0


def test_a_request_carrying_its_invoice_is_stored_and_paying_it_again_is_refused(api: Api) -> None:
    body = {"mandate": "RUM-PRE-AG-1", "amount": "850.00", "invoice_number": "Q-2026-12-001",
            "invoice_issue_date": "2026-12-01", "invoice_due_date": "2026-12-08"}
    assert api.post(URL, body, key="rent-12").status_code == 201
    again = api.post(URL, body, key="rent-12-bis")
    assert again.status_code == 409
    assert (again.json()["field"], again.json()["reason_code"]) == ("invoices", "AM05")
