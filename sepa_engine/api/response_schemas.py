"""Success responses of the HTTP API in the OpenAPI document: the JSON Schemas of
``schemas/responses/``, one file per resource document, put under ``components/schemas``.

``RESPONSES`` is the one table that says which document each operation answers with
(``(METHOD, path template) -> schema file``). ``attach(document)`` takes the dictionary
FastAPI generates and, for every operation in the table, points each 2xx
``application/json`` response at its component. The files refer to each other by file name
(``{"$ref": "money.schema.json"}``); in the OpenAPI document those references become
``#/components/schemas/<Name>``, and ``$schema``/``$id`` are dropped (an ``$id`` would move
the base URI that ``#/components/...`` is resolved against).

An operation with a JSON success response and no entry in the table is listed by
``uncovered(document)``; the tests fail on it, so a new route cannot be forgotten.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from sepa_engine import json_schemas

DIRECTORY = "responses"
SUFFIX = ".schema.json"
JSON = "application/json"

# (METHOD, path template as in the OpenAPI document) -> schema file in schemas/responses/.
RESPONSES: dict[tuple[str, str], str] = {
    ("GET", "/v1/health"): "health.schema.json",
    # creditors
    ("GET", "/v1/creditors"): "creditor-list.schema.json",
    ("GET", "/v1/creditors/{creditor}"): "creditor.schema.json",
    ("PUT", "/v1/creditors/{creditor}/settings"): "account-change.schema.json",
    ("POST", "/v1/group-payments"): "group-payment.schema.json",
    # registry
    ("POST", "/v1/creditors/{creditor}/debtor-accounts"): "debtor-account-registration.schema.json",
    ("POST", "/v1/creditors/{creditor}/mandates"): "mandate-registration.schema.json",
    ("GET", "/v1/creditors/{creditor}/mandates"): "mandate-list.schema.json",
    ("POST", "/v1/creditors/{creditor}/mandate-revocations"): "mandate-revocation.schema.json",
    ("POST", "/v1/creditors/{creditor}/debit-requests"): "debit-request-receipt.schema.json",
    ("GET", "/v1/creditors/{creditor}/debit-requests"): "debit-request-list.schema.json",
    ("GET", "/v1/creditors/{creditor}/debit-requests/{request_id}"): "debit-request.schema.json",
    ("DELETE", "/v1/creditors/{creditor}/debit-requests/{request_id}"): "debit-request.schema.json",
    # accounts
    ("GET", "/v1/creditors/{creditor}/debtor-accounts/{account}"): "debtor-account.schema.json",
    ("PUT", "/v1/creditors/{creditor}/debtor-accounts/{account}/details"): "account-change.schema.json",
    ("GET", "/v1/creditors/{creditor}/debtor-accounts/{account}/history"): "account-history.schema.json",
    ("PUT", "/v1/creditors/{creditor}/debtor-accounts/{account}/collection-mode"): "account-change.schema.json",
    ("POST", "/v1/creditors/{creditor}/debtor-accounts/{account}/bank-details"): "account-change.schema.json",
    ("POST", "/v1/creditors/{creditor}/debtor-accounts/{account}/entries"): "ledger-entry.schema.json",
    ("POST", "/v1/creditors/{creditor}/debtor-accounts/{account}/payments"): "payment.schema.json",
    ("GET", "/v1/creditors/{creditor}/debtor-accounts/{account}/statement"): "statement.schema.json",
    ("POST", "/v1/creditors/{creditor}/debtor-accounts/{account}/disputes"): "dispute.schema.json",
    ("GET", "/v1/creditors/{creditor}/disputes"): "dispute-list.schema.json",
    ("GET", "/v1/creditors/{creditor}/disputes/{dispute_id}"): "dispute.schema.json",
    ("POST", "/v1/creditors/{creditor}/disputes/{dispute_id}/transitions"): "dispute.schema.json",
    ("GET", "/v1/creditors/{creditor}/prenotifications"): "prenotification-list.schema.json",
    # batches and files (the file itself is application/xml: no entry)
    ("GET", "/v1/creditors/{creditor}/batches"): "batch-list.schema.json",
    ("GET", "/v1/creditors/{creditor}/batches/{batch_id}"): "batch-detail.schema.json",
    # return exceptions
    ("GET", "/v1/creditors/{creditor}/return-exceptions"): "return-exception-list.schema.json",
    ("POST", "/v1/creditors/{creditor}/return-exceptions/{exception_id}/resolution"): "return-exception.schema.json",
}


def directory() -> Path:
    return json_schemas.directory(DIRECTORY)


def component_name(file_name: str) -> str:
    """``debit-request.schema.json`` -> ``DebitRequestDocument`` (the suffix keeps them apart
    from the request bodies, e.g. ``DebitRequest``)."""
    stem = file_name.removesuffix(SUFFIX)
    return "".join(part.capitalize() for part in stem.split("-")) + "Document"


@functools.cache
def _files() -> dict[str, dict[str, Any]]:
    # Read-only here: schema_file() hands out copies.
    return {name: json_schemas.schema(name, DIRECTORY) for name in json_schemas.names(DIRECTORY)}


def schema_file(name: str) -> dict[str, Any]:
    """The published JSON Schema of ``name`` (a file of schemas/responses/), as it is."""
    return copy.deepcopy(_files()[name])


def schema_id(name: str) -> str:
    return str(_files()[name]["$id"])


def _referenced(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str):
            found.add(target.partition("#")[0])
        for value in node.values():
            found |= _referenced(value)
    elif isinstance(node, list):
        for value in node:
            found |= _referenced(value)
    return found


def _closure(names: list[str]) -> list[str]:
    """``names`` and every file they refer to, directly or not, in a stable order."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in _files():
            raise KeyError(f"schemas/{DIRECTORY}/{name} does not exist")
        seen.add(name)
        todo.extend(_referenced(_files()[name]) - seen)
    return sorted(seen)


def _component(node: Any) -> Any:
    """``node`` with file references turned into ``#/components/schemas/<Name>``."""
    if isinstance(node, dict):
        converted = {}
        for key, value in node.items():
            if key in ("$schema", "$id"):
                continue
            if key == "$ref" and isinstance(value, str) and value.partition("#")[0].endswith(SUFFIX):
                file_name, _, pointer = value.partition("#")
                value = f"#/components/schemas/{component_name(file_name)}{pointer}"
            converted[key] = _component(value)
        return converted
    if isinstance(node, list):
        return [_component(value) for value in node]
    return node


def components() -> dict[str, dict[str, Any]]:
    """Every schema the table needs, as OpenAPI components, by component name."""
    return {component_name(name): _component(_files()[name]) for name in _closure(sorted(set(RESPONSES.values())))}


def json_success_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation of ``document`` with a 2xx application/json response."""
    found = set()
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if str(status).startswith("2") and JSON in response.get("content", {}):
                    found.add((method.upper(), path))
    return found


def uncovered(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Operations answering JSON on success that the table does not describe."""
    return sorted(json_success_operations(document) - set(RESPONSES))


def attach(document: dict[str, Any]) -> dict[str, Any]:
    """Put the success responses' schemas into ``document`` (FastAPI's OpenAPI dictionary,
    changed in place and returned). Applying it twice gives the same document."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in components().items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"components/schemas/{name} already holds another schema")
        schemas[name] = schema
    for (method, path), file_name in RESPONSES.items():
        operation = document["paths"][path][method.lower()]
        target = {"$ref": f"#/components/schemas/{component_name(file_name)}"}
        responses = operation["responses"]
        if "201" in responses and "200" not in responses:
            # Every creating route answers 200 with the same document when its service found
            # the record already there under that key (a file loaded it first, say).
            responses["200"] = {
                "description": "Already there: the record this key created earlier, unchanged.",
                "content": {JSON: {}},
            }
        for status, response in responses.items():
            if str(status).startswith("2") and JSON in response.get("content", {}):
                response["content"][JSON]["schema"] = dict(target)
    return document
