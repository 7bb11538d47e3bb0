"""The published JSON Schemas of the inputs (``schemas/``, ``schemas/accounts/``), generated
from the input models, and the request bodies of the OpenAPI document from the same models.

    python -m sepa_engine.services.input_schemas --write   # or: make schemas
    python -m sepa_engine.services.input_schemas --check   # exit 1 when a file differs

The files keep their names and ``$id``s (README, docs and API docs link them). A model
nested in another is a ``$ref`` to its own file when it has one (an address, an e-signed
mandate), inlined otherwise; the OpenAPI bodies inline everything, so each stands alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from sepa_engine import json_schemas
from sepa_engine.services import account_inputs as accounts
from sepa_engine.services import inputs

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://sepa-engine.example/schemas/"
COMMAND = "python -m sepa_engine.services.input_schemas --write (make schemas)"


@dataclass(frozen=True, slots=True)
class Published:
    folder: str  # "" or "accounts"
    file: str
    model: type[BaseModel]

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.file}" if self.folder else self.file


PUBLISHED: tuple[Published, ...] = (
    Published("", "address.schema.json", inputs.AddressInput),
    Published("", "creditor.schema.json", inputs.CreditorRecord),
    Published("", "debtor-account.schema.json", inputs.DebtorAccountRecord),
    Published("", "mandate.schema.json", inputs.MandateRecord),
    Published("", "debit-request.schema.json", inputs.DebitRequestRecord),
    Published("accounts", "account-details.schema.json", accounts.AccountDetailsInput),
    Published("accounts", "creditor-settings.schema.json", accounts.CreditorSettingsInput),
    Published("accounts", "dispute-transition.schema.json", accounts.DisputeTransitionInput),
    Published("accounts", "dispute.schema.json", accounts.DisputeInput),
    Published("accounts", "esigned-mandate.schema.json", accounts.ESignedMandateInput),
    Published("accounts", "group-payment.schema.json", accounts.GroupPaymentInput),
    Published("accounts", "ledger-entry.schema.json", accounts.LedgerEntryInput),
    Published("accounts", "mode-change.schema.json", accounts.ModeChangeInput),
    Published("accounts", "pay-now.schema.json", accounts.PayNowInput),
)

# Models nested in others that have a file of their own: referred to, not repeated.
_OWN_FILE = {"AddressInput": "address.schema.json", "ESignedMandateInput": "esigned-mandate.schema.json"}

_FIRST_KEYS = ("$schema", "$id", "title", "description", "type", "additionalProperties", "required", "properties")


class _Generator(GenerateJsonSchema):
    """pydantic's generator, written the way the hand-made schemas were: no titles on
    fields, ``"type": ["string", "null"]`` for an optional scalar, no ``default: null``."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        kind = inner.get("type")
        if isinstance(kind, str) and "$ref" not in inner and "anyOf" not in inner:
            merged = dict(inner)
            merged["type"] = [kind, "null"]
            if "enum" in merged:
                merged["enum"] = [*merged["enum"], None]
            return merged
        return {"anyOf": [inner, {"type": "null"}]}

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        generated = super().default_schema(schema)
        if generated.get("default", ...) is None:
            generated.pop("default")
        return generated


def _raw(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(schema_generator=_Generator, mode="validation")


def _resolve(node: Any, definitions: dict[str, Any], refer: bool) -> Any:
    """``node`` with every ``#/$defs/X`` replaced: by X's own file (``refer``) or by X inlined."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            rest = {key: _resolve(value, definitions, refer) for key, value in node.items() if key != "$ref"}
            if refer and name in _OWN_FILE:
                return {"$ref": _OWN_FILE[name], **rest}
            inlined = _resolve(definitions[name], definitions, refer)
            inlined.pop("title", None)
            if "description" in rest:
                inlined.pop("description", None)
            return {**inlined, **rest}
        return {key: _resolve(value, definitions, refer) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_resolve(item, definitions, refer) for item in node]
    return node


def _keys_in_order(node: Any) -> Any:
    """Keywords in the order a reader wants them (what, then its type, then its bounds)."""
    if isinstance(node, list):
        return [_keys_in_order(item) for item in node]
    if not isinstance(node, dict):
        return node
    ordered = {key: node[key] for key in _FIRST_KEYS if key in node}
    ordered.update({key: node[key] for key in sorted(node, key=_rank) if key not in ordered})
    # "properties" maps names to schemas: its keys are field names, kept in declaration order.
    return {
        key: ({name: _keys_in_order(spec) for name, spec in value.items()} if key == "properties" else _keys_in_order(value))
        for key, value in ordered.items()
    }


_ORDER = ("$ref", "anyOf", "oneOf", "enum", "const", "format", "pattern", "minLength", "maxLength", "minimum",
          "maximum", "items", "minItems", "uniqueItems", "minProperties", "default")


def _rank(key: str) -> tuple[int, str]:
    return (_ORDER.index(key), key) if key in _ORDER else (len(_ORDER), key)


def _ordered(document: dict[str, Any], first_properties: Sequence[str] = ()) -> dict[str, Any]:
    ordered: dict[str, Any] = _keys_in_order(document)
    if "properties" in ordered:
        properties = ordered["properties"]
        ordered["properties"] = {
            **{name: properties[name] for name in first_properties if name in properties},
            **{name: spec for name, spec in properties.items() if name not in first_properties},
        }
    if "required" in ordered and first_properties:
        ordered["required"] = [
            *[name for name in first_properties if name in ordered["required"]],
            *[name for name in ordered["required"] if name not in first_properties],
        ]
    return ordered


def published(entry: Published) -> dict[str, Any]:
    """The JSON Schema file of ``entry``, as it is committed."""
    raw = _raw(entry.model)
    document = _resolve(raw, raw.get("$defs", {}), refer=True)
    document["$schema"] = DRAFT
    document["$id"] = ID_BASE + entry.path
    return _ordered(document, getattr(entry.model, "OUTSIDE", ()))


def body(model: type[BaseModel]) -> dict[str, Any]:
    """The standalone schema of a request body: every nested model inlined, no ``$id``."""
    raw = _raw(model)
    return _ordered(_resolve(raw, raw.get("$defs", {}), refer=False))


def text_of(entry: Published) -> str:
    return json.dumps(published(entry), indent=2, ensure_ascii=False) + "\n"


def differing(root: Path | None = None) -> list[str]:
    """The committed files that differ from what the models generate (or are missing)."""
    where = root or json_schemas.directory()
    return [
        entry.path for entry in PUBLISHED
        if not (where / entry.path).is_file() or (where / entry.path).read_text("utf-8") != text_of(entry)
    ]


def write(root: Path | None = None) -> list[str]:
    """Write every file that differs; returns their paths."""
    where = root or json_schemas.directory()
    changed = differing(where)
    for entry in PUBLISHED:
        if entry.path in changed:
            target = where / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text_of(entry), "utf-8")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sepa_engine.services.input_schemas", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the files that differ from the models")
    action.add_argument("--check", action="store_true", help="exit 1 when a committed file differs")
    options = parser.parse_args(argv)
    if options.write:
        for path in write():
            print(f"wrote schemas/{path}")
        return 0
    stale = differing()
    for path in stale:
        print(f"schemas/{path} differs from the models: run {COMMAND}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
