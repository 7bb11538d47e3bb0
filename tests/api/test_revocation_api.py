from __future__ import annotations

from sepa_engine.services import api_tokens
from tests import accounts_world as world
from tests.api.conftest import Api


def test_a_revoked_token_is_refused_from_its_next_request_on(api: Api) -> None:
    assert api.get("/v1/creditors/pressimmo").status_code == 200
    with api.db.transaction() as s:
        token_id = api_tokens.authenticate(s, api.tokens["write"]).token_id  # type: ignore[union-attr]
        api_tokens.revoke_token(s, token_id, clock=world.clock())
    assert api.get("/v1/creditors/pressimmo").status_code == 401


def test_the_creditors_list_shows_only_the_tokens_creditors(api: Api) -> None:
    body = api.get("/v1/creditors").json()
    assert [c["code"] for c in body["items"]] == ["pressimmo"]
    assert "*" in body["items"][0]["iban"]  # masked


def test_with_a_token_cache_a_revocation_applies_once_the_cache_expires(api: Api) -> None:
    import datetime as dt

    from fastapi.testclient import TestClient

    from sepa_engine.api.app import create_app
    from sepa_engine.api.settings import ApiSettings

    app = create_app(api.client.app.state.context.settings, api.db, api.clock, ApiSettings(token_cache_seconds=30))
    with TestClient(app) as client:
        assert client.get("/v1/creditors/pressimmo", headers=api.auth()).status_code == 200
        with api.db.transaction() as s:
            token_id = api_tokens.authenticate(s, api.tokens["write"]).token_id  # type: ignore[union-attr]
            api_tokens.revoke_token(s, token_id, clock=world.clock())
        api.clock.advance(dt.timedelta(seconds=29))
        assert client.get("/v1/creditors/pressimmo", headers=api.auth()).status_code == 200  # still cached
        api.clock.advance(dt.timedelta(seconds=2))
        assert client.get("/v1/creditors/pressimmo", headers=api.auth()).status_code == 401
