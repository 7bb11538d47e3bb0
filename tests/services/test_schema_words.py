"""Schema violations said in words: the rule, never a raw regular expression."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sepa_engine import errors
from sepa_engine.services import account_documents, schema_words

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


ALL_PATTERNS = sorted({p for path in SCHEMAS.rglob("*.schema.json") for p in _patterns(json.loads(path.read_text("utf-8")))})


@pytest.mark.parametrize("pattern", ALL_PATTERNS)
def test_every_pattern_of_the_published_schemas_has_its_rule_in_words(pattern):
    assert pattern in schema_words.PATTERNS


def test_an_amount_that_breaks_its_pattern_is_told_in_words():
    # The issue: "'abc' does not match '^[0-9]{1,15}(\\.[0-9]{1,2})?$'".
    schema = {"type": "object", "properties": {"amount": {"type": "string", "pattern": r"^[0-9]{1,15}(\.[0-9]{1,2})?$"}}}
    (error,) = Draft202012Validator(schema).iter_errors({"amount": "abc"})
    assert schema_words.in_words(error) == "must be an amount in euros: digits, then at most 2 decimals after a point (e.g. 12.50)"
    assert schema_words.value_of(error) == "abc"


@pytest.mark.parametrize(
    ("schema", "document", "words"),
    [
        ({"type": "object", "required": ["mandate"]}, {}, "mandate is required"),
        ({"type": "object", "properties": {}, "additionalProperties": False}, {"colour": 1}, "colour: not a field of this record"),
        ({"enum": ["read", "write"]}, "admin", "must be one of read, write"),
        ({"type": "string", "maxLength": 3}, "abcd", "must be at most 3 characters long"),
        ({"type": "string", "minLength": 1}, "", "must not be empty"),
        ({"type": "integer", "minimum": 1}, 0, "must be at least 1"),
        ({"type": "boolean"}, "yes", "must be true or false"),
    ],
)
def test_other_keywords_are_phrased_from_the_schema(schema, document, words):
    (error,) = Draft202012Validator(schema).iter_errors(document)
    assert schema_words.in_words(error) == words


def test_a_portal_document_error_names_the_field_the_value_and_the_rule():
    with pytest.raises(errors.InvalidFormat) as caught:
        account_documents.check({"amount": "12,50"}, account_documents.PAY_NOW)
    message = str(caught.value)
    assert message == (
        "pay-now.schema.json: amount '12,50' must be an amount in euros: digits, then at most 2 decimals after a point (e.g. 12.50)"
    )
