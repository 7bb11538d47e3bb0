"""One model per input: the schemas are generated from it, its rules hold at every door,
and its errors name the field, the rule in words and the reason code."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from sepa_engine import errors, json_schemas
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import DebitRequest, DebtorAccount
from sepa_engine.services import file_enqueue, input_schemas, input_types, loading
from sepa_engine.services.account_inputs import DisputeInput, GroupPaymentInput, LedgerEntryInput
from sepa_engine.services.input_errors import InputRefused
from sepa_engine.services.inputs import CreditorInput, DebitRequestInput, DebtorAccountInput, MandateInput
from tests import accounts_world as world
from tests import records

BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "Trojan Source", CVE-2021-42574
CLOCK = FixedClock(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc))


# --- generated schemas ---------------------------------------------------------------------
def test_generated_schemas_match_committed_files():
    stale = input_schemas.differing()
    assert stale == [], f"schemas differ from the models: {stale}; run {input_schemas.COMMAND}"


def test_a_drifted_schema_file_is_found_and_rewritten_by_the_command(tmp_path: Path):
    root = tmp_path / "schemas"
    assert input_schemas.write(root) == [entry.path for entry in input_schemas.PUBLISHED]
    mandate = root / "mandate.schema.json"
    mandate.write_text(mandate.read_text().replace('"maxLength": 35', '"maxLength": 36', 1))
    assert input_schemas.differing(root) == ["mandate.schema.json"]
    assert input_schemas.write(root) == ["mandate.schema.json"] and input_schemas.differing(root) == []


def test_the_generated_schemas_keep_their_ids_and_are_valid_draft_2020_12():
    for entry in input_schemas.PUBLISHED:
        document = json_schemas.schema(entry.path)
        Draft202012Validator.check_schema(document)
        assert document["$id"] == "https://sepa-engine.example/schemas/" + entry.path
        assert document["additionalProperties"] is False


def test_the_generated_schemas_accept_the_fixtures_the_models_accept():
    for kind, rows in records.valid_set().items():
        name = next(k.schema for k in loading.KINDS if k.name == kind)
        validator = json_schemas.validator(name)
        model = next(k.record for k in loading.KINDS if k.name == kind)
        for row in rows:
            assert list(validator.iter_errors(row)) == []
            model.model_validate(row)


def _strings(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema of a string value under ``node`` (properties, items, anyOf), by path."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        kinds = node.get("type")
        if kinds == "string" or (isinstance(kinds, list) and "string" in kinds):
            found.append((path, node))
        for name, spec in node.get("properties", {}).items():
            found.extend(_strings(spec, f"{path}.{name}" if path else name))
        if "items" in node:
            found.extend(_strings(node["items"], f"{path}[]"))
        for option in node.get("anyOf", []) + node.get("oneOf", []):
            found.extend(_strings(option, path))
    return found


def test_every_free_text_field_has_a_maximum_length():
    documents = {entry.path: input_schemas.published(entry) for entry in input_schemas.PUBLISHED}
    documents |= {f"body {name}": input_schemas.body(model) for name, model in _bodies().items()}
    unbounded = [
        (where, path) for where, document in documents.items() for path, spec in _strings(document)
        # A pattern or a list of values bounds a string by itself (every pattern here is anchored and counted).
        if "maxLength" not in spec and "enum" not in spec and "pattern" not in spec
    ]
    assert unbounded == []


def test_every_pattern_is_anchored_and_bounded_and_has_its_rule_in_words():
    for regex, (words, _code) in input_types.PATTERN_WORDS.items():
        assert regex.startswith("^") and regex.endswith("$")
        assert "*" not in regex.replace(r"\*", ""), regex  # a "+" is fine only with a maxLength beside it
        assert not re.search(r"\^|\[0-9|\{\d|\\", words), words


def _bodies() -> dict[str, Any]:
    from sepa_engine.api import bodies

    return dict(bodies._MODELS)


# --- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "field", "rule", "reason_code"),
    [
        (lambda: DebitRequestInput.from_mapping({"mandate": "M", "amount": "12.5.0"}), "amount",
         "has more than one decimal point", None),
        (lambda: MandateInput.from_mapping({"reference": "R", "debtor_account": "C", "signed_on": "2025-01-15",
                                            "iban": "fr76 3000"}), "iban",
         "must be an IBAN: 2 capital letters, 2 check digits, then up to 30 letters or digits, without spaces", "AC01"),
        (lambda: CreditorInput.from_mapping({"code": "c", "name": "N", "creditor_identifier": "FR72ZZZ123456",
                                             "iban": "FR7630006000011234567890189", "bic": "AGRI"}), "bic",
         "must be a BIC: 8 or 11 letters and digits", "RC01"),
        (lambda: DebtorAccountInput.from_mapping({"reference": "C", "name": "N", "address": {"country": "FR",
                                                  "town": "T" * 36}}), "address.town",
         "is 36 characters long, more than the 35 allowed", None),
        (lambda: LedgerEntryInput.from_mapping({"kind": "invoice", "number": "F", "issue_date": "2026-11-02",
                                                "amount": 12}), "amount", 'must be text, in quotes (e.g. "12")', None),
        (lambda: GroupPaymentInput.from_mapping({"customer_reference": "A", "selections": [
            {"creditor": "a", "invoices": ["F1"]}, {"creditor": "B!", "invoices": ["F2"]}]}),
         "selections[1].creditor", "must be 1 to 32 lower-case letters, digits or hyphens", None),
        (lambda: DisputeInput.from_mapping({"reason": "r", "invoices": ["F1", {"number": "F2", "amount": "1,5"}]}),
         "invoices[1].amount", "uses a comma: write euros and cents with a dot, e.g. 12.34", None),
        (lambda: CreditorInput.from_mapping({"code": "c", "name": "N", "creditor_identifier": "FR72ZZZ123456",
                                             "iban": "FR7630006000011234567890189", "lead_days": True}),
         "lead_days", "must be a whole number", None),
    ],
)
def test_a_bad_field_is_named_by_its_json_path_with_the_rule_in_words_and_its_reason_code(build, field, rule, reason_code):
    with pytest.raises(errors.InvalidFormat) as caught:
        build()
    assert (caught.value.field, caught.value.rule, caught.value.reason_code) == (field, rule, reason_code)
    assert not re.search(r"\^|\[0-9\]|\{\d", caught.value.rule)  # never a raw regular expression


def test_every_bad_field_of_an_input_is_listed_not_only_the_first():
    with pytest.raises(InputRefused) as caught:
        MandateInput.from_mapping({"reference": "R" * 36, "debtor_account": "", "signed_on": "2025-13-01", "iban": "X"})
    assert [p.field for p in caught.value.problems] == ["reference", "debtor_account", "signed_on", "iban"]
    assert caught.value.problems[2].code == "invalid_date" and isinstance(caught.value, errors.InvalidLength)


def test_an_iban_is_never_echoed_in_an_error():
    with pytest.raises(errors.InvalidFormat) as caught:
        MandateInput(reference="R", debtor_account="C", signed_on=dt.date(2025, 1, 15), iban="FR76 3000 6000 0112")
    assert "3000" not in str(caught.value) and caught.value.value is None


def test_money_is_text_or_decimal_never_float_and_flags_are_never_numbers():
    assert DebitRequestInput(mandate="M", amount=Decimal("12.50")).amount == Decimal("12.50")
    with pytest.raises(errors.InvalidAmount, match="floats are not accepted"):
        DebitRequestInput(mandate="M", amount=12.5)
    with pytest.raises(errors.InvalidFormat) as flag:
        DebitRequestInput.from_mapping({"mandate": "M", "amount": "1", "final": 1})
    assert (flag.value.field, flag.value.rule) == ("final", "must be true or false")


def test_a_token_is_checked_by_its_model_before_the_ledger_is_read(db):  # type: ignore[no-untyped-def]
    from sepa_engine.services import api_tokens

    for values, field in [
        ({"name": "n" * 71, "creditors": ["pressimmo"], "access": "read"}, "name"),
        ({"name": "portal", "creditors": [], "access": "read"}, "creditors"),
        ({"name": "portal", "creditors": ["Press Immo"], "access": "read"}, "creditors[0]"),
        ({"name": "portal", "creditors": ["pressimmo"], "access": "admin"}, "access"),
    ]:
        with pytest.raises(errors.InvalidFormat) as caught, db.transaction() as s:
            api_tokens.create_token(s, **values, clock=CLOCK)
        assert caught.value.field == field


def test_inputs_are_frozen():
    data = DebitRequestInput(mandate="M", amount="1.00")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's own ValidationError for a frozen instance
        data.amount = "2.00"  # type: ignore[misc]


# --- the text rules at every door ----------------------------------------------------------
def test_bidi_character_in_debtor_name_is_refused_naming_the_field_in_a_python_call():
    with pytest.raises(errors.InvalidCharacters) as caught:
        DebtorAccountInput(reference="C-1", name=f"Jean{BIDI}tnoD")
    assert caught.value.field == "name" and "U+202E" in caught.value.rule
    with pytest.raises(errors.InvalidCharacters) as nested:
        DebtorAccountInput.from_mapping({"reference": "C-1", "name": "N", "address": {"country": "FR", "town": f"P{BIDI}"}})
    assert nested.value.field == "address.town"


def test_bidi_character_in_debtor_name_is_refused_naming_the_field_by_load(db, tmp_path):  # type: ignore[no-untyped-def]
    data = records.valid_set(accounts=1)
    data["debtor_accounts"][0]["name"] = f"Jean{BIDI}tnoD"
    directory = records.write_directory(tmp_path / "in", data)
    with pytest.raises(loading.LoadFailed) as caught, db.transaction() as s:
        loading.load_directory(s, directory, clock=CLOCK)
    # The mandates of that account then fail too (their account is not there): nothing loads.
    problem = caught.value.load_errors[0]
    assert (problem.location, problem.code) == ("debtor-accounts.json[0].name", "invalid_characters")
    assert "bidirectional formatting character (U+202E)" in problem.rule
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(DebtorAccount)) == 0


def test_bidi_character_in_a_remittance_is_refused_naming_the_line_and_field_by_enqueue(db, tmp_path):  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    lines = [{"idempotency_key": f"k-{n}", "mandate": "RUM-PRE-AG-1", "amount": "10.00", "on_account": True}
             for n in (1, 2)]
    lines[1]["remittance"] = f"Loyer{BIDI}"
    file = tmp_path / "requests.jsonl"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(file_enqueue.FileRejected) as caught, db.transaction() as s:
        file_enqueue.enqueue_file(s, file, creditor="pressimmo", clock=world.clock())
    assert [(b.line, b.field, b.code) for b in caught.value.report.bad] == [(2, "remittance", "invalid_characters")]
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(DebitRequest)) == 0


def test_a_revocation_reason_is_bounded_and_checked_like_the_http_body(db):  # type: ignore[no-untyped-def]
    from sepa_engine.services import registry

    for reason, error in [("x" * 2001, errors.InvalidLength), (f"fraud{BIDI}", errors.InvalidCharacters), ("", errors.InvalidLength)]:
        with pytest.raises(error) as caught, db.transaction() as s:
            registry.revoke_mandate(s, "pressimmo", "RUM-1", reason=reason, clock=CLOCK)
        assert caught.value.field == "reason"
