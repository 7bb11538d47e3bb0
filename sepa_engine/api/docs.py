"""The OpenAPI document: FastAPI's, plus the request bodies taken from ``schemas/``
(``bodies.py``) and the problem document, under ``components/schemas``.

The checked-in copy is ``docs/openapi.json``; regenerate it with
``sepa-engine api openapi > docs/openapi.json`` (a test fails when the two differ).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sepa_engine.api import bodies
from sepa_engine.api.problems import MEDIA_TYPE, PROBLEM_SCHEMA

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    401: "No bearer token, or an unknown or revoked one.",
    403: "A read-only token on a write.",
    404: "Not found, or not a creditor of this token.",
    409: "The state refuses the action, or the Idempotency-Key was used with another request.",
    413: "The body is larger than api.max_body_bytes.",
    422: "Malformed input: every bad field is listed in errors.",
    503: "ledger_busy: a collection, a schedule or a reconciliation held what the call needs for longer than"
         " api.lock_wait_seconds; database_unavailable: the ledger's database does not answer. Nothing was done"
         " and the Idempotency-Key stored nothing: send the same call again after Retry-After.",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before sending the call again.", "schema": {"type": "integer"}},
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problems a route answers; every route that has any reads the ledger (a token at
    least), so each may also answer 503 (``problems.database_problem``)."""
    chosen = (*(statuses or (401, 404, 422)), 503)
    described: dict[int | str, dict[str, Any]] = {
        status: {"description": _DESCRIPTIONS[status], "content": {MEDIA_TYPE: {"schema": _PROBLEM_REF}}} for status in chosen
    }
    described[503]["headers"] = _RETRY_AFTER
    return described


def write_problems() -> dict[int | str, dict[str, Any]]:
    return problems(401, 403, 404, 409, 413, 422)


def body(name: str) -> dict[str, Any]:
    """``openapi_extra`` of a route whose body is the JSON Schema ``name`` (bodies.py)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }


def build(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes,
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in bodies.names():
        components[name] = bodies.schema(name)
    app.openapi_schema = document
    return document
