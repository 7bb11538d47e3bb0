"""JSON documents about accounts: their schemas, the inputs built from them, and the jobs."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.db.models import DebitRequest, LedgerEntry
from sepa_engine.jobs import accounts as jobs
from sepa_engine.services import account_documents as documents
from sepa_engine.services import accounts, on_demand
from sepa_engine.services.account_inputs import (
    DetailsInput,
    DisputeInput,
    ESignedMandateInput,
    GroupPaymentInput,
    LedgerEntryInput,
    ModeChangeInput,
    PayNowInput,
)
from tests import accounts_world as world
from tests.concurrency import at_once

EXAMPLES = {
    documents.LEDGER_ENTRY: {"kind": "invoice", "number": "F-2026-001", "issue_date": "2026-11-02",
                             "due_date": "2026-12-02", "amount": "120.50", "label": "Annonces novembre"},
    documents.PAY_NOW: {"invoices": ["F-2026-001", "F-2026-002"]},
    documents.GROUP_PAYMENT: {"customer_reference": "AGENCE-77", "selections": [
        {"creditor": "pressimmo", "invoices": ["PRE-1"]}, {"creditor": "poliris", "invoices": ["POL-1", "POL-2"]}]},
    documents.DISPUTE: {"reason": "Annonce non parue", "invoices": ["F-1", {"number": "F-2", "amount": "20.00"}]},
    documents.DISPUTE_TRANSITION: {"status": "accepted", "note": "geste commercial", "credit_note_number": "AV-1"},
    documents.ESIGNED_MANDATE: {"reference": "RUM-E-1", "signed_at": "2026-11-20T10:15:00+01:00",
                                "iban": "DE89370400440532013000", "signer_name": "Jeanne Martin", "evidence_id": "ev-1"},
    documents.MODE_CHANGE: {"mode": "automatic", "frequency": "monthly", "day": 5, "mandate": {
        "reference": "RUM-E-1", "signed_at": "2026-11-20T09:15:00Z", "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX", "signer_name": "Jeanne Martin", "evidence_id": "ev-1"}},
    documents.ACCOUNT_DETAILS: {"contact_name": "Jeanne Martin", "email": "compta@agence.fr", "fax": None},
    documents.CREDITOR_SETTINGS: {"prenotification_days": 10, "group_code": "seloger"},
}


def _properties(schema: dict) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    """Every property of a schema, nested ones included."""
    found = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, spec in node.get("properties", {}).items():
                found.append((name, spec))
            stack.extend(value for key, value in node.items() if key != "properties")
            stack.extend(node.get("properties", {}).values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_the_account_schemas_are_valid_draft_2020_12_and_describe_every_property():
    directory = documents.schemas_dir()
    names = sorted(path.name for path in directory.glob("*.schema.json"))
    assert names == sorted(EXAMPLES)
    for name in names:
        schema = json.loads((directory / name).read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith("/accounts/" + name) and schema["title"] and schema["description"]
        undescribed = [prop for prop, spec in _properties(schema) if not spec.get("description")]
        assert undescribed == [], name


@pytest.mark.parametrize("schema", sorted(EXAMPLES))
def test_the_examples_match_their_schema(schema):
    assert documents.check(EXAMPLES[schema], schema) == EXAMPLES[schema]


def test_the_inputs_are_built_from_valid_documents():
    entry = LedgerEntryInput.from_mapping(EXAMPLES[documents.LEDGER_ENTRY])
    assert (entry.issue_date, entry.due_date, entry.amount) == (dt.date(2026, 11, 2), dt.date(2026, 12, 2), "120.50")
    assert PayNowInput.from_mapping(EXAMPLES[documents.PAY_NOW]).invoices == ("F-2026-001", "F-2026-002")
    group = GroupPaymentInput.from_mapping(EXAMPLES[documents.GROUP_PAYMENT])
    assert [(s.creditor, s.invoices) for s in group.selections] == [("pressimmo", ("PRE-1",)), ("poliris", ("POL-1", "POL-2"))]
    dispute = DisputeInput.from_mapping(EXAMPLES[documents.DISPUTE])
    assert [(line.number, line.amount) for line in dispute.invoices] == [("F-1", None), ("F-2", "20.00")]
    mode = ModeChangeInput.from_mapping(EXAMPLES[documents.MODE_CHANGE])
    assert mode.mandate is not None and mode.mandate.signed_at == dt.datetime(2026, 11, 20, 9, 15, tzinfo=dt.timezone.utc)
    assert dict(DetailsInput.from_mapping(EXAMPLES[documents.ACCOUNT_DETAILS]).changes)["fax"] is None


@pytest.mark.parametrize(
    ("build", "field", "rule"),
    [
        (lambda: PayNowInput(), "amount", "either an amount or a list of invoices"),
        (lambda: PayNowInput(amount="1.00", invoices=("F1",)), "amount", "either an amount"),
        (lambda: PayNowInput.from_mapping({"amount": "1", "tip": "2"}), "tip", "is not a known field"),
        (lambda: PayNowInput.from_mapping({"invoices": "F1"}), "invoices", "must be a list"),
        (lambda: LedgerEntryInput.from_mapping({"kind": "invoice"}), "number", "is required"),
        (lambda: LedgerEntryInput.from_mapping({"kind": "invoice", "number": "F", "issue_date": "2026-13-01",
                                                "amount": "1"}), "issue_date", "is not a date"),
        (lambda: ESignedMandateInput.from_mapping({**EXAMPLES[documents.ESIGNED_MANDATE],
                                                   "signed_at": "2026-11-20T10:15:00"}), "signed_at", "UTC offset"),
        (lambda: GroupPaymentInput.from_mapping({"customer_reference": "A", "selections": [{"creditor": "x"}]}),
         "selections[0].invoices", "is required"),
        (lambda: DisputeInput.from_mapping({"reason": "r", "invoices": [{"number": "F", "amount": 2.5}]}),
         "invoices[0].amount", "floats are not accepted"),
        (lambda: DetailsInput({}), "changes", "at least one field"),
        (lambda: DetailsInput.from_mapping({"iban": "x"}), "iban", "is not a known field"),
    ],
)
def test_malformed_documents_are_refused_with_the_field_and_rule(build, field, rule):
    with pytest.raises(errors.SepaEngineError) as caught:
        build()
    assert caught.value.field == field and rule in caught.value.rule


def test_a_document_breaking_its_schema_names_the_path_and_the_schema():
    with pytest.raises(errors.InvalidFormat) as caught:
        documents.parse('{"invoices": [""]}', documents.PAY_NOW)
    assert caught.value.field == "invoices[0]" and caught.value.location == documents.PAY_NOW
    with pytest.raises(errors.InvalidFormat) as caught:
        documents.parse('{"amount": NaN}', documents.PAY_NOW, source="pay.json")
    assert caught.value.field == "pay.json" and "not valid JSON" in caught.value.rule


# --- jobs and concurrent booking -----------------------------------------------------------
def _submitted(db, count: int) -> None:  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "1000.00")
    for n in range(count):
        with db.transaction() as s:
            paid = on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(amount="10.00"), idempotency_key=f"c{n}",
                                    clock=world.clock())
            row = s.get_one(DebitRequest, paid.request_id)
            row.status, row.collection_date = "submitted", dt.date(2026, 11, 24)


def _book(db):  # type: ignore[no-untyped-def]
    """``Engine.book_payments``: its own transaction."""
    with db.transaction() as s:
        return accounts.book_submitted_payments(s, world.clock())


def test_payments_are_booked_once_and_the_schedule_job_runs_in_its_own_transactions(db):
    _submitted(db, 2)
    assert _book(db).booked == 2
    assert _book(db).booked == 0
    assert jobs.run_schedule(db, world.clock(), dt.date(2026, 11, 23)).items == ()


def test_two_bookings_at_once_book_each_debit_once(db):
    _submitted(db, 6)
    booked = [outcome.booked for outcome in at_once(*[lambda: _book(db)] * 2)]
    assert sum(booked) == 6
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment")) == 6
    assert world.position(db).balance_due_cents == 100_000 - 6_000
