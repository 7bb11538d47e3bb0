from __future__ import annotations

from tests import accounts_world as world
from tests.api.conftest import Api, make_token

URL = "/v1/group-payments"


def setup_group(api: Api) -> str:
    world.creditor(api.db, "poliris")
    for code in ("pressimmo", "poliris"):
        world.account(api.db, code, f"{code[:3].upper()}-77", customer="AGENCE-77")
        world.entry(api.db, f"{code[:3].upper()}-F1", "100.00", creditor_code=code, reference=f"{code[:3].upper()}-77")
    return make_token(api.db, "group-portal", ["pressimmo", "poliris"], "write")


def body() -> dict[str, object]:
    return {"customer_reference": "AGENCE-77",
            "selections": [{"creditor": "pressimmo", "invoices": ["PRE-F1"]}, {"creditor": "poliris", "invoices": ["POL-F1"]}]}


def test_a_payment_across_the_creditors_of_a_group_makes_one_debit_per_creditor(api: Api) -> None:
    api.tokens["group"] = setup_group(api)
    response = api.post(URL, body(), key="basket-1", token="group")
    assert response.status_code == 201, response.text
    assert [(p["creditor"], p["amount"]) for p in response.json()["payments"]] == [("pressimmo", "100.00"), ("poliris", "100.00")]
    again = api.post(URL, body(), key="basket-1", token="group")
    assert again.json() == response.json() and again.headers["Idempotent-Replayed"] == "true"


def test_a_token_that_does_not_act_for_every_creditor_named_gets_404_and_nothing_is_paid(api: Api) -> None:
    setup_group(api)
    response = api.post(URL, body(), key="basket-1", token="write")  # pressimmo only
    assert response.status_code == 404
    assert response.json()["field"] == "selections[1].creditor"
    assert "POL" not in response.text
    assert api.get("/v1/creditors/pressimmo/debit-requests").json()["items"] == []
