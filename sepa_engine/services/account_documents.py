"""JSON documents the portals send about accounts, checked by their input models
(``account_inputs``; the JSON Schemas of ``schemas/accounts/`` are generated from them)
before an input is built from them.

A document that breaks its model raises ``InvalidFormat`` naming the JSON path and the
rule in words (``input_errors``), e.g. ``invoices[0].amount '12,50' must be an amount in
euros: digits, then at most 2 decimals after a point (e.g. 12.50)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sepa_engine import errors, json_input, json_schemas
from sepa_engine.services import input_schemas

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

_MODELS = {entry.file: entry.model for entry in input_schemas.PUBLISHED if entry.folder == SUBDIR}


def schemas_dir() -> Path:
    return json_schemas.directory(SUBDIR)


def check(document: object, schema: str) -> dict[str, Any]:
    """``document`` when its model accepts it; else the first problem (every one in ``problems``)."""
    model = _MODELS.get(schema)
    if model is None:
        raise errors.ConfigurationError("schema", schema, "is not an account document")
    if not isinstance(document, dict):
        raise errors.InvalidFormat("document", None, "must be a JSON object", location=schema)
    model.from_mapping(document, location=schema)  # type: ignore[attr-defined]
    return document


def parse(text: str | bytes, schema: str, source: str = "document") -> dict[str, Any]:
    """Read JSON text through ``json_input`` (bounded, strict) and check it against ``schema``'s model."""
    return check(json_input.loads(text, source), schema)
