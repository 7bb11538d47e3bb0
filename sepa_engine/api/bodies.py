"""Request bodies of the HTTP API: the project's JSON Schemas (``schemas/``), checked before
any service sees a body, with every bad field reported at once.

One source of truth: the body schemas are *derived* from the published files, never copied.

* The registry's record schemas (``debit-request``, ``mandate``, ``debtor-account``) carry
  ``idempotency_key`` and ``creditor`` for the files ``sepa-engine load`` reads; over HTTP
  the key is the ``Idempotency-Key`` header and the creditor is in the path, so both
  properties are removed from the derived schema.
* The account documents (``schemas/accounts/``) are used as they are.
* ``$ref``s between the files are inlined, so each body schema stands alone: the same
  dictionary validates the body (jsonschema, draft 2020-12) and describes it in the
  OpenAPI document (3.1, whose schemas are draft 2020-12).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from sepa_engine import errors, json_input, json_schemas
from sepa_engine.domain import text

# body name -> (schema file relative to schemas/, properties that travel outside the body)
_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "DebitRequest": ("debit-request.schema.json", ("idempotency_key", "creditor")),
    "Mandate": ("mandate.schema.json", ("idempotency_key", "creditor")),
    "DebtorAccount": ("debtor-account.schema.json", ("idempotency_key", "creditor")),
    "LedgerEntry": ("accounts/ledger-entry.schema.json", ()),
    "PayNow": ("accounts/pay-now.schema.json", ()),
    "GroupPayment": ("accounts/group-payment.schema.json", ()),
    "Dispute": ("accounts/dispute.schema.json", ()),
    "DisputeTransition": ("accounts/dispute-transition.schema.json", ()),
    "ESignedMandate": ("accounts/esigned-mandate.schema.json", ()),
    "ModeChange": ("accounts/mode-change.schema.json", ()),
    "AccountDetails": ("accounts/account-details.schema.json", ()),
    "CreditorSettings": ("accounts/creditor-settings.schema.json", ()),
}

# Bodies of the API's own (no file in schemas/ describes them).
_OWN: dict[str, dict[str, Any]] = {
    "MandateRevocation": {
        "title": "Mandate revocation",
        "description": "Revoke the mandate in force under a reference; its pending requests are cancelled. Revoking a revoked mandate changes nothing.",
        "type": "object",
        "additionalProperties": False,
        "required": ["reference", "reason"],
        "properties": {
            "reference": {"type": "string", "minLength": 1, "maxLength": 35, "description": "The mandate reference (UMR)."},
            "reason": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "Why (kept with the mandate)."},
        },
    },
    "ExceptionResolution": {
        "title": "Resolution of a return exception",
        "description": "Close an exception: \"ignored\", or the id of a debit request of the creditor the record is then applied to.",
        "type": "object",
        "additionalProperties": False,
        "required": ["resolution"],
        "properties": {
            "resolution": {"type": "string", "pattern": "^(ignored|[1-9][0-9]{0,9})$"},
            "note": {"type": ["string", "null"], "maxLength": 2000},
        },
    },
}


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    rule: str
    code: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "code": self.code}


class InvalidBody(errors.InvalidFormat):
    """A body that breaks its schema; ``field_errors`` lists every bad field."""

    code = "invalid_body"
    problem = "breaks its JSON Schema"
    field_errors: tuple[FieldError, ...] = ()


def _file(name: str) -> dict[str, Any]:
    return json_schemas.schema(name)


def _inline(node: Any, base: str) -> Any:
    """``node`` with every ``$ref`` to a sibling file replaced by that file's schema."""
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].endswith(".schema.json"):
            target = f"{base}/{node['$ref']}" if base else node["$ref"]
            inlined = _inline(_file(target), base)
            inlined.pop("$schema", None)
            inlined.pop("$id", None)
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**inlined, **rest}
        return {key: _inline(value, base) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, base) for item in node]
    return node


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """The standalone JSON Schema of body ``name`` (see the module's docstring)."""
    if name in _OWN:
        return copy.deepcopy(_OWN[name])
    path, outside = _SOURCES[name]
    document = _file(path)
    base = path.rpartition("/")[0]
    derived: dict[str, Any] = _inline(document, base)
    derived.pop("$schema", None)
    derived.pop("$id", None)
    for prop in outside:
        derived["properties"].pop(prop, None)
    if "required" in derived:
        derived["required"] = [field for field in derived["required"] if field not in outside]
    return derived


def names() -> list[str]:
    return sorted([*_SOURCES, *_OWN])


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


def parse(raw: bytes, name: str) -> dict[str, Any]:
    """The JSON object in ``raw`` when it matches schema ``name``; else ``InvalidBody``
    listing every problem, by JSON path. The reader is ``json_input``: bounded depth, no
    duplicate keys, no NaN."""
    try:
        document = json_input.loads(raw, "body")
    except errors.InvalidFormat as exc:
        failure = InvalidBody("body", None, exc.rule)
        failure.field_errors = (FieldError("body", exc.rule, "invalid_json"),)
        raise failure from None
    return check(document, name)


def check(document: object, name: str) -> dict[str, Any]:
    # Text rules first: a schema message quotes the value, and a value holding an unpaired
    # surrogate cannot even be encoded into the answer.
    unstorable = tuple(FieldError(path, rule, "invalid_characters") for path, rule in text.problems_in(document))
    if unstorable:
        failure = InvalidBody(unstorable[0].field, None, unstorable[0].rule)
        failure.field_errors = unstorable
        raise failure
    found = sorted(_validator(name).iter_errors(document), key=lambda e: (e.json_path, e.message))
    if found:
        field_errors = tuple(
            FieldError(e.json_path.removeprefix("$").removeprefix(".") or "body", e.message, f"schema.{e.validator}")
            for e in found
        )
        first = field_errors[0]
        failure = InvalidBody(first.field, None, f"{first.rule} ({len(field_errors)} problem(s) in the body)")
        failure.field_errors = field_errors
        raise failure
    assert isinstance(document, Mapping)
    return dict(document)
