"""JSON documents the portals send about accounts, checked against their JSON Schemas
(``schemas/accounts/``) before an input is built from them.

A document that breaks its schema raises ``InvalidFormat`` naming the JSON path and the
rule in words (``services/schema_words``), e.g. ``invoices[0].amount '12,50' must be an amount
in euros: digits, then at most 2 decimals after a point (e.g. 12.50)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sepa_engine import errors, json_input, json_schemas
from sepa_engine.services import schema_words

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
    return json_schemas.directory(SUBDIR)


def check(document: object, schema: str) -> dict[str, Any]:
    """``document`` when it matches ``schema``; else the first problem (by path) as an error."""
    found = sorted(json_schemas.validator(schema, SUBDIR).iter_errors(document), key=lambda e: (e.json_path, e.message))
    if found:
        error = found[0]
        path = error.json_path.removeprefix("$").removeprefix(".") or "document"
        raise errors.InvalidFormat(path, schema_words.value_of(error), schema_words.in_words(error), location=schema)
    assert isinstance(document, dict)
    return document


def parse(text: str | bytes, schema: str, source: str = "document") -> dict[str, Any]:
    """Read JSON text through ``json_input`` (bounded, strict, text rules) and check it against ``schema``."""
    document = json_input.loads(text, source)
    json_input.check_text(document)
    return check(document, schema)

