"""Regressions of issue 15 over HTTP: a body nested 100,000 deep answered 500 on every write
route; a key given twice kept its last value. Both are now 4xx problem+json."""

from __future__ import annotations

import re

import pytest

from sepa_engine.api.app import all_routes
from tests.api.conftest import MAX_BODY, Api


def _write_routes(api: Api) -> list[tuple[str, str]]:
    """Every route that reads a body, from the app itself, its path parameters filled in."""
    routes: list[tuple[str, str]] = []
    for route in all_routes(api.client.app):  # type: ignore[arg-type]
        for method in sorted(route.methods):
            if method in ("POST", "PUT", "PATCH"):
                path = route.path.replace("{creditor}", "pressimmo")
                path = re.sub(r"\{[a-z_]*id\}", "1", path)
                routes.append((method, re.sub(r"\{[a-z_]+\}", "AG-1", path)))
    return routes


def test_json_nested_deep_answers_4xx_problem_json_on_every_write_route_never_500(api: Api) -> None:
    depth = (MAX_BODY - 64) // 2
    raw = ("[" * depth + "]" * depth).encode()
    routes = _write_routes(api)
    assert len(routes) >= 5
    for method, path in routes:
        answer = api.client.request(
            method, path, content=raw,
            headers={**api.auth(), "Idempotency-Key": f"deep-{method}-{path}", "Content-Type": "application/json"},
        )
        assert 400 <= answer.status_code < 500, (method, path, answer.status_code, answer.text[:200])
        assert answer.headers["content-type"].startswith("application/problem+json"), (method, path)


def test_a_key_given_twice_in_a_body_is_refused_not_last_one_wins(api: Api) -> None:
    raw = b'{"mandate": "RUM-PRE-AG-1", "amount": "1.00", "amount": "900.00"}'
    answer = api.client.post(
        "/v1/creditors/pressimmo/debit-requests", content=raw,
        headers={**api.auth(), "Idempotency-Key": "dup", "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert "the key 'amount' appears twice" in answer.text


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\x07"])
def test_bidi_zero_width_and_control_characters_in_a_body_are_refused_with_the_field(api: Api, char: str) -> None:
    answer = api.post("/v1/creditors/pressimmo/debtor-accounts", {"reference": "AG-9", "name": f"Du{char}pont"}, key=f"t-{ord(char)}")
    assert answer.status_code == 422, answer.text
    assert [(e["field"], e["code"]) for e in answer.json()["errors"]] == [("name", "invalid_characters")]


def test_http_crashers_answer_4xx_on_every_write_route(api: Api) -> None:
    from tests.boundary.test_crashers import crasher_files

    routes = _write_routes(api)
    for crasher in crasher_files("http"):
        raw = crasher.read_bytes()
        for method, path in routes:
            answer = api.client.request(
                method, path, content=raw,
                headers={**api.auth(), "Idempotency-Key": f"{crasher.name}-{method}-{path}", "Content-Type": "application/json"},
            )
            assert 400 <= answer.status_code < 500, (crasher.name, method, path, answer.status_code)
