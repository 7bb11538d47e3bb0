from __future__ import annotations

import json
from pathlib import Path

from sepa_engine import json_schemas
from sepa_engine.api import bodies
from sepa_engine.api.server import openapi_document

CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_checked_in_openapi_document_is_the_one_the_app_serves() -> None:
    # Regenerate with: sepa-engine api openapi > docs/openapi.json
    assert json.loads(CHECKED_IN.read_text("utf-8")) == openapi_document()


def test_every_json_success_answer_is_described_by_its_published_schema() -> None:
    from sepa_engine.api import response_schemas

    document = openapi_document()
    assert response_schemas.uncovered(document) == []
    answer = document["paths"]["/v1/creditors/{creditor}/debit-requests/{request_id}"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DebitRequestDocument"}


def test_the_served_document_is_at_openapi_json(api) -> None:  # type: ignore[no-untyped-def]
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == openapi_document()


def test_request_bodies_are_the_published_json_schemas_without_the_fields_that_travel_outside() -> None:
    published = json.loads((json_schemas.directory() / "debit-request.schema.json").read_text("utf-8"))
    body = openapi_document()["components"]["schemas"]["DebitRequest"]
    assert body["properties"] == {k: v for k, v in published["properties"].items() if k not in ("idempotency_key", "creditor")}
    assert body == bodies.schema("DebitRequest")
    operation = openapi_document()["paths"]["/v1/creditors/{creditor}/debit-requests"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DebitRequest"}


def test_every_write_documents_its_idempotency_key_and_every_route_its_problems() -> None:
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            if method in ("post", "put", "delete", "patch"):
                headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
                assert headers == ["Idempotency-Key"], (method, path)
            if path != "/v1/health":
                assert "application/problem+json" in operation["responses"]["401"]["content"], (method, path)


def test_creating_routes_also_document_the_200_they_answer_for_a_record_already_there() -> None:
    document = openapi_document()
    creating = [
        (path, method, operation["responses"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "201" in operation.get("responses", {})
    ]
    assert creating
    for path, method, responses in creating:
        assert responses["200"]["content"] == responses["201"]["content"], (method, path)


def test_every_route_that_reads_the_ledger_documents_its_503_and_when_to_send_again() -> None:
    # Before: the document named no 503, though any route answers ledger_busy or
    # database_unavailable (api/problems.py), and a client had to find Retry-After by itself.
    for path, operations in openapi_document()["paths"].items():
        if path == "/v1/health":
            continue
        for method, operation in operations.items():
            unavailable = operation["responses"]["503"]
            assert "ledger_busy" in unavailable["description"] and "database_unavailable" in unavailable["description"]
            assert unavailable["headers"]["Retry-After"]["schema"] == {"type": "integer"}, (method, path)
            assert "application/problem+json" in unavailable["content"], (method, path)
