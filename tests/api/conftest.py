"""An API over a small world: two creditors of one group and one of another, an account
with a mandate at each, and tokens: write and read for pressimmo, write for other."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

with warnings.catch_warnings():
    # Starlette's TestClient is httpx-based and announces a future move to "httpx2".
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from sepa_engine.api.app import create_app
from sepa_engine.api.settings import ApiSettings
from sepa_engine.config import Settings
from sepa_engine.db.session import Database
from sepa_engine.services import api_tokens
from tests import accounts_world as world

MAX_BODY = 64 * 1024


@dataclass
class Api:
    client: TestClient
    db: Database
    clock: world.FixedClock
    tokens: dict[str, str]

    def auth(self, token: str = "write") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[token]}"}

    def post(self, path: str, json: object, *, key: str, token: str = "write", **kwargs: object):  # type: ignore[no-untyped-def]
        headers = {**self.auth(token), "Idempotency-Key": key}
        return self.client.post(path, json=json, headers=headers, **kwargs)

    def put(self, path: str, json: object, *, key: str, token: str = "write"):  # type: ignore[no-untyped-def]
        return self.client.put(path, json=json, headers={**self.auth(token), "Idempotency-Key": key})

    def delete(self, path: str, *, key: str, token: str = "write"):  # type: ignore[no-untyped-def]
        return self.client.delete(path, headers={**self.auth(token), "Idempotency-Key": key})

    def get(self, path: str, *, token: str = "write", **kwargs: object):  # type: ignore[no-untyped-def]
        return self.client.get(path, headers=self.auth(token), **kwargs)


def make_token(db: Database, name: str, creditors: list[str], access: str) -> str:
    with db.transaction() as session:
        return api_tokens.create_token(session, name=name, creditors=creditors, access=access, clock=world.clock()).token


@pytest.fixture
def api(db: Database, tmp_path) -> Iterator[Api]:  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.creditor(db, "other", group="other-group")
    world.account(db, "pressimmo", "AG-1")
    world.account(db, "other", "OT-1")
    tokens = {
        "write": make_token(db, "billing", ["pressimmo"], "write"),
        "read": make_token(db, "portal-read", ["pressimmo"], "read"),
        "other": make_token(db, "other-billing", ["other"], "write"),
    }
    clock = world.clock()
    settings = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox", inbox_dir=tmp_path / "inbox")
    app = create_app(settings, db, clock, ApiSettings(max_body_bytes=MAX_BODY, token_cache_seconds=0))
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Api(client, db, clock, tokens)
