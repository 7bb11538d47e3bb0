from __future__ import annotations

import datetime as dt
import json

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from sepa_engine import json_schemas
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, Mandate
from sepa_engine.services import loading
from tests import records

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc)
MODELS = (Creditor, DebtorAccount, Mandate, DebitRequest)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def counts(db) -> list[int]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return [int(s.scalar(select(func.count()).select_from(model))) for model in MODELS]


def load(db, directory, clock) -> loading.LoadReport:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return loading.load_directory(s, directory, clock=clock)


def failed_load(db, directory, clock) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(loading.LoadFailed) as caught:
        load(db, directory, clock)
    return [str(error) for error in caught.value.load_errors]


def test_a_directory_loads_every_kind_in_dependency_order(db, tmp_path, clock):
    directory = records.write_directory(tmp_path / "in", records.valid_set(accounts=3))
    report = load(db, directory, clock)
    assert {kind: (c.created, c.unchanged) for kind, c in report.counts.items()} == {
        "creditors": (1, 0),
        "debtor_accounts": (3, 0),
        "mandates": (3, 0),
        "requests": (3, 0),
    }
    assert report.problems == ()
    assert counts(db) == [1, 3, 3, 3]


def test_loading_the_same_directory_twice_changes_nothing(db, tmp_path, clock):
    directory = records.write_directory(tmp_path / "in", records.valid_set())
    load(db, directory, clock)
    before = counts(db)
    clock.advance(dt.timedelta(days=1))
    again = load(db, directory, clock)
    assert {kind: (c.created, c.unchanged) for kind, c in again.counts.items()} == {
        "creditors": (0, 1),
        "debtor_accounts": (0, 2),
        "mandates": (0, 2),
        "requests": (0, 2),
    }
    assert counts(db) == before


def test_absent_files_are_fine_and_later_directories_build_on_earlier_ones(db, tmp_path, clock):
    full = records.valid_set()
    load(db, records.write_directory(tmp_path / "setup", {k: full[k] for k in ("creditors", "debtor_accounts", "mandates")}), clock)
    report = load(db, records.write_directory(tmp_path / "daily", {"requests": full["requests"]}), clock)
    assert report.counts["requests"].created == 2 and report.counts["creditors"].created == 0


def test_every_bad_record_is_reported_with_file_index_field_and_rule_and_nothing_is_loaded(db, tmp_path, clock):
    data = records.valid_set(accounts=3)
    data["debtor_accounts"].append(records.debtor_account(4, creditor="nobody"))
    data["mandates"][1]["iban"] = "FR76"
    data["mandates"][2]["signed_on"] = "2025-02-30"
    data["mandates"][2]["colour"] = "blue"
    data["mandates"].append(records.mandate(5))  # its debtor account CUST-5 does not exist
    data["requests"][0]["amount"] = 12.34
    data["requests"][1]["amount"] = "12,34"
    data["requests"].append(records.request(4, mandate_n=404, amount="1.00"))
    del data["requests"][2]["mandate"]
    directory = records.write_directory(tmp_path / "in", data)

    reported = failed_load(db, directory, clock)

    assert reported == [
        "debtor-accounts.json[3].creditor: 'nobody' is not a registered creditor",
        "mandates.json[1].iban: must be an IBAN: 2 capital letters, 2 check digits, then up to 30 letters or digits, without spaces [AC01]",
        "mandates.json[2].signed_on: '2025-02-30' is not a date in the form YYYY-MM-DD",
        "mandates.json[2].colour: is not a known field",
        "mandates.json[3].debtor_account: 'CUST-5' is not a debtor account of creditor martin",
        'requests.json[0].amount: 12.34 must be text, in quotes (e.g. "12.34"): floats are not accepted for money',
        "requests.json[1].amount: '12,34' uses a comma: write euros and cents with a dot, e.g. 12.34",
        "requests.json[2].mandate: is required",
        "requests.json[3].mandate: '******0404' is not a mandate of creditor martin",
    ]
    assert counts(db) == [0, 0, 0, 0]


def test_one_bad_record_among_good_ones_loads_nothing(db, tmp_path, clock):
    data = records.valid_set(accounts=3)
    data["requests"][2]["amount"] = "-5.00"
    directory = records.write_directory(tmp_path / "in", data)
    assert failed_load(db, directory, clock) == [
        "requests.json[2].amount: '-5.00' is negative"
    ]
    assert counts(db) == [0, 0, 0, 0]


def test_engine_rules_beyond_the_schema_are_reported_at_the_record(db, tmp_path, clock):
    data = records.valid_set()
    data["creditors"][0]["creditor_identifier"] = "FR73ZZZ123456"
    directory = records.write_directory(tmp_path / "in", {"creditors": data["creditors"]})
    assert failed_load(db, directory, clock) == [
        "creditors.json[0].creditor_identifier: 'FR73ZZZ123456' fails its ISO 7064 MOD 97-10 check digits"
    ]


def test_a_file_that_is_not_a_json_array_is_reported_as_a_whole(db, tmp_path, clock):
    directory = records.write_directory(tmp_path / "in", {"creditors": [records.creditor()]})
    (directory / "mandates.json").write_text('{"reference": "x"}')
    (directory / "requests.json").write_text("[NaN]")
    assert failed_load(db, directory, clock) == [
        "mandates.json: must be a JSON array of records",
        "requests.json: is not valid JSON: NaN is not allowed in JSON",
    ]
    assert counts(db) == [0, 0, 0, 0]


def test_records_stored_with_problems_are_reported_with_their_location(db, tmp_path, clock):
    data = records.valid_set()
    data["mandates"][1]["iban"] = "DE89370400440532013009"
    data["requests"][0]["amount"] = "0"
    directory = records.write_directory(tmp_path / "in", data)
    report = load(db, directory, clock)
    assert [(p.file, p.index, [(q["field"], q["reason_code"]) for q in p.problems]) for p in report.problems] == [
        ("mandates.json", 1, [("iban", "AC01")]),
        ("requests.json", 0, [("amount", "AM01")]),
        ("requests.json", 1, [("mandate.iban", "AC01")]),
    ]
    assert counts(db) == [1, 2, 2, 2]


def test_the_published_schemas_are_valid_and_describe_every_property():
    directory = json_schemas.directory()
    names = sorted(path.name for path in directory.glob("*.schema.json"))
    assert names == [
        "address.schema.json",
        "creditor.schema.json",
        "debit-request.schema.json",
        "debtor-account.schema.json",
        "mandate.schema.json",
    ]
    for name in names:
        schema = json.loads((directory / name).read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith("/" + name) and schema["title"] and schema["description"]
        undescribed = [prop for prop, spec in schema["properties"].items() if not spec.get("description")]
        assert undescribed == [], name
        if name != "address.schema.json":
            assert "idempotency_key" in schema["required"]


def test_the_example_records_match_their_schemas():
    for kind, rows in records.valid_set().items():
        validator = json_schemas.validator(next(k.schema for k in loading.KINDS if k.name == kind))
        for row in rows:
            assert list(validator.iter_errors(row)) == []
