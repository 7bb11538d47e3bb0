"""Every JSON success response of the API matches its JSON Schema in schemas/responses/, and
the table of sepa_engine/api/response_schemas.py names one for every operation of the app.

One walk through a seeded ledger calls every operation of the table (reads and writes, with
Idempotency-Key headers) and validates each answer twice: against the published files (a
``referencing`` registry over schemas/) and against the OpenAPI document with the schemas
attached, so the document describes what the API returns."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import warnings
from collections.abc import Iterator
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # Starlette's TestClient is httpx-based and announces a future move to "httpx2".
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sepa_engine import json_schemas
from sepa_engine.api import response_schemas
from sepa_engine.api.app import create_app
from sepa_engine.api.server import openapi_document
from sepa_engine.api.settings import ApiSettings
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.returns_models import ReturnFile
from sepa_engine.domain.accounts import (
    CollectionMode,
    DisputeStatus,
    EntryKind,
    Frequency,
)
from sepa_engine.domain.directdebit import LocalInstrument, SequenceType
from sepa_engine.domain.mandate import MandateKind, MandateStatus
from sepa_engine.domain.statuses import BatchStatus, RequestStatus
from sepa_engine.ids import SequentialIds
from sepa_engine.iso20022.returns import Kind, ReturnRecord, Scope
from sepa_engine.iso20022.versions import VERSIONS
from sepa_engine.services import schedule
from sepa_engine.services.collection import run_collection
from sepa_engine.services.reconciliation import add_exception
from tests import accounts_world as world
from tests.api.conftest import MAX_BODY, Api

BASE = "/v1/creditors/{creditor}"
WRITABLE_VERSIONS = sorted(name for name, version in VERSIONS.items() if version.writable)
OPENAPI_URI = "urn:sepa-engine:openapi"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339 date-time, offset required (jsonschema checks it only with an extra package)."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    return dt.datetime.fromisoformat(value.replace("z", "Z")).tzinfo is not None


def _file_registry() -> Registry:  # type: ignore[type-arg]
    resources = []
    for path in sorted(json_schemas.directory().rglob("*.schema.json")):
        contents = json.loads(path.read_text("utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


FILES = _file_registry()


def _openapi_registry() -> tuple[dict[str, Any], Registry]:  # type: ignore[type-arg]
    document = response_schemas.attach(openapi_document())
    return document, Registry().with_resource(OPENAPI_URI, Resource(contents=document, specification=DRAFT202012))


class Walk:
    """Calls operations by their path template and checks each answer against its schemas."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.document, self.openapi = _openapi_registry()
        self.called: set[tuple[str, str]] = set()
        self.keys = itertools.count(1)

    def __call__(self, method: str, template: str, body: object = None, *, key: str | None = None,
                 params: dict[str, object] | None = None, expect: int = 200, **path: object) -> Any:
        url = template.format(creditor="pressimmo", **path)
        headers = self.api.auth()
        if method != "GET":
            headers["Idempotency-Key"] = key or f"walk-{next(self.keys)}"
        response = self.api.client.request(method, url, json=body, headers=headers, params=params)
        assert response.status_code == expect, (method, url, response.text)
        assert response.headers["content-type"].startswith("application/json"), (method, url)
        document = response.json()
        self.check(method, template, document)
        return document

    def check(self, method: str, template: str, document: object) -> None:
        operation = (method, template)
        file_name = response_schemas.RESPONSES[operation]
        by_file = Draft202012Validator(
            {"$ref": response_schemas.schema_id(file_name)}, registry=FILES, format_checker=FORMATS,
        )
        errors = [f"{e.json_path}: {e.message}" for e in by_file.iter_errors(document)]
        assert not errors, (operation, file_name, errors, document)
        ref = self.document["paths"][template][method.lower()]["responses"]
        schema = next(r["content"]["application/json"]["schema"] for s, r in ref.items() if s.startswith("2"))
        by_openapi = Draft202012Validator(
            {"$ref": OPENAPI_URI + schema["$ref"]}, registry=self.openapi, format_checker=FORMATS,
        )
        errors = [f"{e.json_path}: {e.message}" for e in by_openapi.iter_errors(document)]
        assert not errors, (operation, "openapi", errors, document)
        self.called.add(operation)


@pytest.fixture
def walk(api: Api) -> Iterator[Walk]:
    yield Walk(api)


def test_every_json_success_response_matches_its_published_schema(walk: Walk, api: Api, tmp_path: Path) -> None:
    creditors = walk("GET", "/v1/creditors")
    assert [c["code"] for c in creditors["items"]] == ["pressimmo"]
    walk("GET", "/v1/health")
    walk("GET", BASE)
    walk("PUT", BASE + "/settings", {"prenotification_days": 20})

    # registry: an account, a mandate, a second one superseding it, requests, a revocation
    walk("POST", BASE + "/debtor-accounts", {"reference": "AG-2", "name": "Agence Deux"}, expect=201)
    walk("POST", BASE + "/mandates", {"reference": "RUM-2", "debtor_account": "AG-2", "signed_on": "2025-03-01",
                                      "iban": world.DEBTOR_IBAN}, expect=201)
    superseding = walk("POST", BASE + "/mandates", {"reference": "RUM-2B", "debtor_account": "AG-2",
                                                    "signed_on": "2025-06-01", "iban": world.NEW_IBAN,
                                                    "supersedes": "RUM-2"}, expect=201)
    assert superseding["supersedes_id"] is not None
    zero = walk("POST", BASE + "/debit-requests", {"mandate": "RUM-2B", "amount": "0.00", "on_account": True}, key="zero", expect=201)
    assert [p["reason_code"] for p in zero["problems"]] == ["AM01"]
    assert walk("GET", BASE + "/debit-requests/{request_id}", request_id=zero["id"])["problems"]
    walk("DELETE", BASE + "/debit-requests/{request_id}", request_id=zero["id"])
    walk("POST", BASE + "/debit-requests", {"mandate": "RUM-2B", "amount": "10.00", "remittance": "Loyer", "on_account": True},
         key="ten", expect=201)
    revoked = walk("POST", BASE + "/mandate-revocations", {"reference": "RUM-2B", "reason": "tenant left"})
    assert revoked["cancelled_requests"] == 1
    first = walk("GET", BASE + "/mandates", params={"limit": 1})
    assert first["next_cursor"] is not None
    walk("GET", BASE + "/mandates", params={"cursor": first["next_cursor"]})
    walk("GET", BASE + "/mandates", params={"status": "superseded"})

    # the account: entries, details, payments on demand (alone and across the group), disputes
    for number, amount in (("F-1", "100.00"), ("F-2", "40.00"), ("F-3", "25.00")):
        walk("POST", BASE + "/debtor-accounts/{account}/entries",
             {"kind": "invoice", "number": number, "issue_date": "2026-10-01", "amount": amount, "due_date": "2026-10-31"},
             account="AG-1", expect=201)
    walk("POST", BASE + "/debtor-accounts/{account}/entries",
         {"kind": "credit_note", "number": "A-1", "issue_date": "2026-10-05", "amount": "10.00", "applies_to": "F-2"},
         account="AG-1", expect=201)
    walk("POST", BASE + "/debtor-accounts/{account}/entries",
         {"kind": "fee", "number": "FEE-1", "issue_date": "2026-10-06", "amount": "5.00", "label": "Frais"},
         account="AG-1", expect=201)
    walk("PUT", BASE + "/debtor-accounts/{account}/details",
         {"customer_reference": "CUST-1", "email": "compta@agence.example", "billing_country": "FR"}, account="AG-1")
    paid = walk("POST", BASE + "/debtor-accounts/{account}/payments", {"invoices": ["F-1"]}, account="AG-1", expect=201)
    assert paid["invoices"] == [{"number": "F-1", "amount": "100.00"}]
    group = walk("POST", "/v1/group-payments",
                 {"customer_reference": "CUST-1", "selections": [{"creditor": "pressimmo", "invoices": ["F-3"]}]},
                 expect=201)
    assert group["amount"] == "25.00"
    walk("POST", BASE + "/debtor-accounts/{account}/payments", {"amount": "5.00"}, account="AG-1", expect=201)
    dispute = walk("POST", BASE + "/debtor-accounts/{account}/disputes",
                   {"reason": "ad not published", "invoices": ["F-2"]}, account="AG-1", expect=201)
    walk("GET", BASE + "/debtor-accounts/{account}", account="AG-1")
    walk("GET", BASE + "/debtor-accounts/{account}/statement", account="AG-1")
    walk("POST", BASE + "/disputes/{dispute_id}/transitions", {"status": "under_review"}, dispute_id=dispute["id"])
    accepted = walk("POST", BASE + "/disputes/{dispute_id}/transitions", {"status": "accepted", "note": "agreed"},
                    dispute_id=dispute["id"])
    assert accepted["credit_note"] is not None
    walk("GET", BASE + "/disputes")
    walk("GET", BASE + "/disputes", params={"status": "accepted", "account": "AG-1"})
    walk("GET", BASE + "/disputes/{dispute_id}", dispute_id=dispute["id"])
    statement = walk("GET", BASE + "/debtor-accounts/{account}/statement", params={"all": "true", "limit": 2},
                     account="AG-1")
    assert statement["next_cursor"] is not None
    everything = walk("GET", BASE + "/debtor-accounts/{account}/statement", params={"all": "true"}, account="AG-1")
    assert any(line["signed_amount"].startswith("-") for line in everything["lines"])
    walk("GET", BASE + "/debtor-accounts/{account}/statement", params={"document": "F-2"}, account="AG-1")

    # automatic mode, the schedule's pre-notification, new bank details
    walk("POST", BASE + "/debtor-accounts/{account}/entries",
         {"kind": "invoice", "number": "F-4", "issue_date": "2026-11-01", "amount": "150.00"}, account="AG-1",
         expect=201)
    mandate = {"reference": "RUM-E-AG-1", "signed_at": "2026-11-20T09:00:00+00:00", "iban": world.NEW_IBAN,
               "signer_name": "Jeanne Martin", "evidence_id": "ev-1"}
    walk("PUT", BASE + "/debtor-accounts/{account}/collection-mode",
         {"mode": "automatic", "frequency": "monthly", "day": 7, "mandate": mandate}, account="AG-1")
    with api.db.transaction() as session:
        schedule.schedule_automatic(session, dt.date(2026, 11, 23), world.clock(), creditor_code="pressimmo")
    notices = walk("GET", BASE + "/prenotifications")
    assert len(notices["items"]) == 1
    walk("GET", BASE + "/prenotifications", params={"from": "2026-12-01", "to": "2026-12-31"})
    shown = walk("GET", BASE + "/debtor-accounts/{account}", account="AG-1")
    assert shown["schedule"] is not None and shown["mandate"]["signed_electronically"] is True
    walk("POST", BASE + "/debtor-accounts/{account}/bank-details",
         {**mandate, "reference": "RUM-E2-AG-1", "evidence_id": "ev-2", "iban": world.DEBTOR_IBAN}, account="AG-1")
    walk("GET", BASE + "/debtor-accounts/{account}/history", account="AG-1")
    walk("GET", BASE + "/debtor-accounts/{account}/history", params={"limit": 1}, account="AG-1")

    # a collection run: batches, and the requests it took
    settings = Settings(database_url=api.db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    report = run_collection(api.db, settings, FixedClock(world.NOW), SequentialIds("RS"), business_date=dt.date(2026, 11, 24))
    assert report.files
    batches = walk("GET", BASE + "/batches")
    assert batches["items"]
    walk("GET", BASE + "/batches", params={"status": "published"})
    walk("GET", BASE + "/batches/{batch_id}", batch_id=batches["items"][0]["id"])
    requests = walk("GET", BASE + "/debit-requests")
    walk("GET", BASE + "/debit-requests", params={"status": "submitted", "limit": 1})
    submitted = [r for r in requests["items"] if r["status"] == "submitted"]
    assert len(submitted) >= 2
    taken = walk("GET", BASE + "/debit-requests/{request_id}", request_id=submitted[0]["id"])
    assert taken["sequence_type"] is not None and taken["collection_date"] is not None

    # return exceptions: bank records the reconciliation left for a person
    with api.db.transaction() as session:
        file = ReturnFile(sha256="1" * 64, path=str(tmp_path / "camt.054.xml"), status="applied", imported_at=world.NOW)
        session.add(file)
        session.flush()
        for request in submitted[:2]:
            record = ReturnRecord(
                scope=Scope.TRANSACTION, kind=Kind.RETURNED, location="Ntry[0]/NtryDtls[0]/TxDtls[0]", status="BOOK",
                booked=True, end_to_end_id=request["end_to_end_id"], amount_cents=int(Decimal(request["amount"]) * 100), currency="EUR",
                reason_code="AM04", booking_date=dt.date(2026, 11, 30), account_iban="FR7630006000011234567890189",
                credit_debit="DBIT", reversal_indicator=True,
            )
            add_exception(session, file.id, record.to_dict(), "the bank's account is not the creditor's", record.end_to_end_id,
                          clock=world.clock())
    listed = walk("GET", BASE + "/return-exceptions")
    assert len(listed["items"]) == 2
    # The bank's account is shown as every IBAN over HTTP is: masked.
    assert listed["items"][0]["record"]["account_iban"] == "FR76*******************0189"
    walk("POST", BASE + "/return-exceptions/{exception_id}/resolution", {"resolution": "ignored", "note": "seen"},
         exception_id=listed["items"][0]["id"])
    matched = walk("POST", BASE + "/return-exceptions/{exception_id}/resolution",
                   {"resolution": str(submitted[1]["id"])}, exception_id=listed["items"][1]["id"])
    assert matched["resolution"] == f"matched:{submitted[1]['id']}"
    walk("GET", BASE + "/return-exceptions", params={"status": "all"})

    assert set(response_schemas.RESPONSES) - walk.called == set()


def test_a_replayed_write_answers_the_same_document(walk: Walk) -> None:
    body = {"kind": "invoice", "number": "F-R", "issue_date": "2026-10-01", "amount": "12.00"}
    first = walk("POST", BASE + "/debtor-accounts/{account}/entries", body, key="replay", account="AG-1", expect=201)
    again = walk("POST", BASE + "/debtor-accounts/{account}/entries", body, key="replay", account="AG-1", expect=201)
    assert again == first


def test_the_table_names_a_schema_for_every_json_success_operation_of_the_app() -> None:
    document = openapi_document()
    assert response_schemas.uncovered(document) == []
    stale = set(response_schemas.RESPONSES) - response_schemas.json_success_operations(document)
    assert stale == set()


def test_an_operation_missing_from_the_table_is_reported() -> None:
    document = openapi_document()
    document["paths"]["/v1/creditors/{creditor}/brand-new"] = {
        "get": {"responses": {"200": {"description": "new", "content": {"application/json": {"schema": {}}}}}}
    }
    assert response_schemas.uncovered(document) == [("GET", "/v1/creditors/{creditor}/brand-new")]


def test_attached_document_points_every_success_response_at_a_component_and_every_ref_resolves() -> None:
    document = response_schemas.attach(openapi_document())
    schemas = document["components"]["schemas"]
    for (method, path), file_name in response_schemas.RESPONSES.items():
        for status, response in document["paths"][path][method.lower()]["responses"].items():
            if status.startswith("2"):
                name = response_schemas.component_name(file_name)
                assert response["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{name}"}
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
    for name in response_schemas.components():
        # an $id would move the base URI that "#/components/..." is resolved against
        assert "$id" not in schemas[name] and "$schema" not in schemas[name], name
    for target in _refs(document):
        assert target.startswith("#/"), target
        node: Any = document
        for part in target[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    assert response_schemas.attach(json.loads(json.dumps(document))) == document


def test_the_request_bodies_keep_their_components() -> None:
    plain = openapi_document()
    attached = response_schemas.attach(openapi_document())
    for name, schema in plain["components"]["schemas"].items():
        assert attached["components"]["schemas"][name] == schema


def test_every_response_schema_file_is_draft_2020_12_named_by_its_file() -> None:
    files = sorted(response_schemas.directory().glob("*.schema.json"))
    assert files
    used = set(response_schemas.components())
    for path in files:
        schema = json.loads(path.read_text("utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path.name
        assert schema["$id"] == f"https://sepa-engine.example/schemas/responses/{path.name}", path.name
        Draft202012Validator.check_schema(schema)
        assert response_schemas.component_name(path.name) in used, f"{path.name} is used by no response"


@pytest.mark.parametrize(
    ("file_name", "pointer", "values"),
    [
        ("debit-request.schema.json", "status", RequestStatus),
        ("debit-request-summary.schema.json", "status", RequestStatus),
        ("debit-request-receipt.schema.json", "status", RequestStatus),
        ("payment.schema.json", "status", RequestStatus),
        ("debit-request.schema.json", "sequence_type", SequenceType),
        ("batch.schema.json", "status", BatchStatus),
        ("batch.schema.json", "version", WRITABLE_VERSIONS),
        ("creditor.schema.json", "pain008_version", WRITABLE_VERSIONS),
        ("creditor.schema.json", "local_instrument", LocalInstrument),
        ("mandate.schema.json", "status", MandateStatus),
        ("mandate.schema.json", "kind", MandateKind),
        ("mandate-registration.schema.json", "status", MandateStatus),
        ("dispute.schema.json", "status", DisputeStatus),
        ("dispute-event.schema.json", "status", DisputeStatus),
        ("statement-line.schema.json", "kind", EntryKind),
        ("debtor-account.schema.json", "collection_mode", CollectionMode),
        ("return-record.schema.json", "scope", Scope),
        ("return-record.schema.json", "kind", Kind),
    ],
)
def test_response_enums_are_the_domains(file_name: str, pointer: str, values: Any) -> None:
    prop = response_schemas.schema_file(file_name)["properties"][pointer]
    expected = {v.value for v in values} if isinstance(values, type) and issubclass(values, StrEnum) else set(values)
    assert {v for v in prop["enum"] if v is not None} == expected


def test_the_schedule_frequency_enum_is_the_domains() -> None:
    account = response_schemas.schema_file("debtor-account.schema.json")
    schedule_schema = account["properties"]["schedule"]["anyOf"][0]
    assert set(schedule_schema["properties"]["frequency"]["enum"]) == {f.value for f in Frequency}


def test_masked_ibans_show_the_country_the_check_digits_and_the_last_four_characters_only() -> None:
    from sepa_engine.domain.masking import mask_iban

    validator = Draft202012Validator(response_schemas.schema_file("masked-iban.schema.json"))
    for iban in (world.DEBTOR_IBAN, "FR7630006000011234567890189", "MT84MALT011000012345MTLCAST001S", "NO9386011117947",
                 "FR761"):
        assert validator.is_valid(mask_iban(iban)), mask_iban(iban)
    assert not validator.is_valid(world.DEBTOR_IBAN)
    assert not validator.is_valid("DE89 3704 0044 0532 0130 00")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_an_enqueue_the_fast_path_answers_matches_the_same_schema(api: Api, tmp_path: Path) -> None:
    # The shared fixture has the token cache off, so its enqueues never take api/fastpath.py.
    settings = Settings(database_url=api.db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    app = create_app(settings, api.db, api.clock, ApiSettings(max_body_bytes=MAX_BODY, token_cache_seconds=60))
    with TestClient(app) as client:
        client.get("/v1/creditors", headers=api.auth())  # the token in the cache, as after a first call
        walk = Walk(Api(client, api.db, api.clock, api.tokens))
        body = {"mandate": "RUM-PRE-AG-1", "amount": "12.00", "remittance": "Invoice 1", "on_account": True}
        first = walk("POST", BASE + "/debit-requests", body, key="fast-1", expect=201)
        assert walk("POST", BASE + "/debit-requests", body, key="fast-1", expect=201) == first


def test_an_answer_that_breaks_its_schema_is_caught(walk: Walk) -> None:
    document = walk("GET", BASE + "/debtor-accounts/{account}", account="AG-1")
    for broken in (
        {**document, "position": {**document["position"], "collectable": 0}},
        {**document, "position": {**document["position"], "requested": "1.5"}},
        {**document, "mandate": {**document["mandate"], "iban": world.DEBTOR_IBAN}},
        {**document, "collection_mode": "sometimes"},
        {**document, "unexpected": True},
        {key: value for key, value in document.items() if key != "can_pay_now"},
    ):
        with pytest.raises(AssertionError):
            walk.check("GET", BASE + "/debtor-accounts/{account}", broken)
