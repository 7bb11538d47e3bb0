"""The API's /metrics: Prometheus text, every name sepa_engine_*, traffic and ledger facts."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sepa_engine.services import disputes
from sepa_engine.services.account_inputs import DisputeInput
from tests import accounts_world as world
from tests.api.conftest import Api

BASE = "/v1/creditors/pressimmo"
REQUEST = {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "remittance": "Facture F-1", "on_account": True}


def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith("sepa_engine_"), family.name
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_route_template_enqueues_and_refusals_by_reason_code(api: Api) -> None:
    assert api.post(f"{BASE}/debit-requests", REQUEST, key="m-1").status_code == 201
    assert api.post(f"{BASE}/debit-requests", REQUEST, key="m-1").status_code == 201  # a replay enqueues nothing
    refused = api.post(f"{BASE}/debit-requests", {**REQUEST, "mandate": "RUM-UNKNOWN"}, key="m-2")
    assert refused.status_code >= 400
    problem = refused.json()
    api.get(f"{BASE}/debit-requests/999999")

    samples = scrape(api)
    route = "/v1/creditors/{creditor}/debit-requests"
    assert value(samples, "sepa_engine_http_requests_total", method="POST", route=route, status="201") == 2
    assert value(samples, "sepa_engine_api_enqueued_total", route=route) == 1
    assert value(
        samples, "sepa_engine_api_refusals_total", code=problem["code"], reason_code=problem.get("reason_code") or "none"
    ) == 2  # the unknown mandate and the unknown request: every problem answered counts
    # Route templates, never raw paths: ids would make one series per request.
    assert not any("999999" in dict(labels).get("route", "") for _, labels in samples)
    assert value(samples, "sepa_engine_http_request_duration_seconds_count", method="POST", route=route) == 3


def test_metrics_carry_the_ledger_facts(api: Api) -> None:
    samples = scrape(api)
    assert ("sepa_engine_open_exceptions", ()) in samples
    assert value(samples, "sepa_engine_open_exceptions") == 0


def test_a_refusal_by_the_account_gate_is_counted_under_its_iso_reason_code(api: Api) -> None:
    # Until now only problems without a reason code (label "none") were proven. Money under
    # dispute is refused by the account gate with MS02, and the counter must carry MS02, once.
    world.entry(api.db, "F1", "1450.00")
    world.entry(api.db, "F2", "552.50")
    with api.db.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("not ordered", "F1"), actor="portal",
                              idempotency_key="d-1", clock=world.clock())
    refused = api.post(f"{BASE}/debit-requests", {"mandate": "RUM-PRE-AG-1", "amount": "2002.50"}, key="m-disputed")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["code"], problem["reason_code"]) == ("amount_exceeds_balance", "MS02")

    samples = scrape(api)
    assert value(samples, "sepa_engine_api_refusals_total", code="amount_exceeds_balance", reason_code="MS02") == 1
    assert value(samples, "sepa_engine_api_enqueued_total", route="/v1/creditors/{creditor}/debit-requests") == 0


def test_every_metric_is_documented_in_the_readme_and_every_documented_one_exists(api: Api) -> None:
    api.post(f"{BASE}/debit-requests", REQUEST, key="doc-1")
    api.post(f"{BASE}/debit-requests", {**REQUEST, "mandate": "RUM-UNKNOWN"}, key="doc-2")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    table = readme.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    documented = {name.removesuffix("_total") for name in re.findall(r"^\| `(sepa_engine_[a-z_]+)` \|", table, re.MULTILINE)}
    source = (Path(__file__).resolve().parents[2] / "sepa_engine" / "metrics.py").read_text("utf-8")
    defined = {f"sepa_engine_{name}" for name in re.findall(r'f"\{PREFIX\}_([a-z_]+)"', source)}
    exposed = {family.name for family in text_string_to_metric_families(api.client.get("/metrics").text)}
    assert exposed <= documented, f"exposed but not in README's table: {exposed - documented}"
    assert documented == defined, (documented ^ defined)
