"""JSON documents the portals send about accounts, checked against their JSON Schemas
(``schemas/accounts/``) before an input is built from them.

A document that breaks its schema raises ``InvalidFormat`` naming the JSON path and the
rule, e.g. ``invoices[0].amount '12,50' does not match '^[0-9]+(\\.[0-9]{1,2})?$'``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from sepa_engine import errors, json_input
from sepa_engine.services import loading

SUBDIR = "accounts"

# input name -> schema file
LEDGER_ENTRY = "ledger-entry.schema.json"
PAY_NOW = "pay-now.schema.json"
GROUP_PAYMENT = "group-payment.schema.json"
DISPUTE = "dispute.schema.json"
DISPUTE_TRANSITION = "dispute-transition.schema.json"
ESIGNED_MANDATE = "esigned-mandate.schema.json"
MODE_CHANGE = "mode-change.schema.json"
ACCOUNT_DETAILS = "account-details.schema.json"
CREDITOR_SETTINGS = "creditor-settings.schema.json"


def schemas_dir() -> Path:
    return loading.schemas_dir() / SUBDIR


@functools.cache
def _schemas() -> Mapping[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text("utf-8")) for path in sorted(schemas_dir().glob("*.schema.json"))}


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    schemas = _schemas()
    if name not in schemas:
        raise errors.ConfigurationError("schema", name, "is not installed: the installation is incomplete")
    resources = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    return Draft202012Validator(schemas[name], registry=resources, format_checker=Draft202012Validator.FORMAT_CHECKER)


def check(document: object, schema: str) -> dict[str, Any]:
    """``document`` when it matches ``schema``; else the first problem (by path) as an error."""
    found = sorted(_validator(schema).iter_errors(document), key=lambda e: (e.json_path, e.message))
    if found:
        error = found[0]
        path = error.json_path.removeprefix("$").removeprefix(".") or "document"
        raise errors.InvalidFormat(path, None, error.message, location=schema)
    assert isinstance(document, dict)
    return document


def parse(text: str | bytes, schema: str, source: str = "document") -> dict[str, Any]:
    """Read JSON text through ``json_input`` (bounded, strict, text rules) and check it against ``schema``."""
    document = json_input.loads(text, source)
    json_input.check_text(document)
    return check(document, schema)

