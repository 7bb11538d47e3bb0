from __future__ import annotations

from tests.api.conftest import Api

BASE = "/v1/creditors/pressimmo"


def test_text_no_column_can_store_is_refused_in_bodies_paths_and_queries(api: Api) -> None:
    raw = b'{"reference": "A\\u0000", "name": "x\\ud800"}'  # JSON escapes: valid JSON, unstorable text
    body = api.client.post(f"{BASE}/debtor-accounts", content=raw,
                           headers={**api.auth(), "Idempotency-Key": "nul", "Content-Type": "application/json"})
    assert body.status_code == 422
    assert {(e["field"], e["code"]) for e in body.json()["errors"]} == {
        ("reference", "invalid_characters"), ("name", "invalid_characters")
    }
    path = api.get(f"{BASE}/debtor-accounts/AG%00-1")
    assert path.status_code == 422 and path.json()["field"] == "account"
    query = api.get(f"{BASE}/disputes", params={"account": "A\u0000"})
    assert query.status_code == 422 and query.json()["code"] == "invalid_characters"


def test_bidi_character_in_debtor_name_is_refused_naming_the_field_by_the_api(api: Api) -> None:
    body = {"reference": "AG-9", "name": "Jean\u202etnoD", "address": {"country": "FR", "town": "Paris\u200b"}}
    response = api.post(f"{BASE}/debtor-accounts", body, key="bidi")
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("name", "invalid_characters"), ("address.town", "invalid_characters")
    ]
    assert "U+202E" in response.json()["errors"][0]["rule"]
    assert api.get(f"{BASE}/debtor-accounts/AG-9").status_code == 404
