"""``sepa-engine returns inspect``: the JSON document, the table, and the exit codes
(0 read, 1 refused by --strict, 2 unreadable) with one line on stderr, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.exit_codes import ExitCode
from tests.shared_files import samples_dir

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
GROUP_AM10 = TESTDATA / "pain.002" / "pain.002.001.03-group-rjct-am10.xml"
ANSWERS_PAIN001 = TESTDATA / "pain.002" / "pain.002.001.10-answers-pain001.xml"
RETURN_LUMP_SUM = TESTDATA / "camt.054" / "camt.054.001.08-return-lump-sum-and-transfer.xml"
CAMT053_NL = "camt.053/oca-bankstatementimport__nl-testbank-sdd-batch-return-AC06__test-camt053.xml"
PAIN002_BOI = "pain.002/oca-accountpayment__boi-sdd-reject-4tx-AC01-MS02-MD06-AM04__test-sepa-pain-unpaid.xml"
PAIN008_SAMPLE = "pain.008/sepaking__example-2tx-pain.008.001.02__pain.008.001.02.xml"

RECORD_KEYS = {
    "scope",
    "kind",
    "end_to_end_id",
    "mandate_reference",
    "original_message_id",
    "amount",
    "currency",
    "reason_code",
    "booking_date",
}

runner = CliRunner()


def inspect(*args: str | Path):
    # A wide terminal, so that the table does not fold identifiers over two lines.
    return runner.invoke(app, ["returns", "inspect", *(str(a) for a in args)], env={"COLUMNS": "200"})


def assert_one_clear_line(result) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_json_is_one_document_with_message_records_skipped_and_warnings():
    result = inspect(RETURN_LUMP_SUM, "--json")
    assert result.exit_code == ExitCode.OK, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"message", "records", "skipped", "warnings"}
    assert document["message"] == "camt.054.001.08"
    assert document["skipped"] == 1
    returned, lump_sum = document["records"]
    assert RECORD_KEYS <= set(returned)
    assert {key: returned[key] for key in RECORD_KEYS} == {
        "scope": "transaction",
        "kind": "returned",
        "end_to_end_id": "E2E-70",
        "mandate_reference": "MANDATE-70",
        "original_message_id": "SEPA-20261120-0003",
        "amount": "276.00",
        "currency": "EUR",
        "reason_code": "AM04",
        "booking_date": "2026-11-27",
    }
    assert returned["fees"] == "3.00"
    assert (lump_sum["scope"], lump_sum["kind"], lump_sum["amount"], lump_sum["reason_code"]) == (
        "entry",
        "settled",
        "1234.50",
        None,
    )
    assert lump_sum["end_to_end_id"] is None


def test_json_of_a_dutch_statement_lists_its_two_returns_and_counts_what_it_skipped():
    result = inspect(samples_dir() / CAMT053_NL, "--json")
    assert result.exit_code == ExitCode.OK
    document = json.loads(result.stdout)
    assert document["message"] == "camt.053.001.02"
    assert document["skipped"] == 2
    assert [(r["end_to_end_id"], r["amount"], r["reason_code"]) for r in document["records"]] == [
        ("TESTBANK/NL/20141229/01206408", "564.05", "AC06"),
        ("TESTBANK/NL/20141229/01206407", "100.00", "AC06"),
    ]
    assert document["warnings"] == []


def test_json_of_a_group_reject_has_the_control_sum_and_no_currency():
    result = inspect(GROUP_AM10, "--json")
    assert result.exit_code == ExitCode.OK
    (record,) = json.loads(result.stdout)["records"]
    assert (record["scope"], record["kind"], record["reason_code"], record["amount"], record["currency"]) == (
        "group",
        "rejected",
        "AM10",
        "276.00",
        None,
    )
    assert record["booking_date"] is None


def test_report_about_a_credit_transfer_file_exits_0_with_no_record_and_says_why():
    result = inspect(ANSWERS_PAIN001, "--json")
    assert result.exit_code == ExitCode.OK
    document = json.loads(result.stdout)
    assert document["records"] == []
    assert document["skipped"] == 2
    # Without ../shared the XSD is not checked, which adds its own warning.
    (warning,) = [w for w in document["warnings"] if w["code"] != "schema_not_checked"]
    assert warning["code"] == "not_ours"
    assert "pain.001.001.03" in warning["message"]


def test_table_shows_the_records_a_person_looks_for():
    result = inspect(RETURN_LUMP_SUM)
    assert result.exit_code == ExitCode.OK
    assert "camt.054.001.08" in result.stdout
    assert "E2E-70" in result.stdout
    assert "276.00" in result.stdout
    assert "AM04" in result.stdout
    assert "1 skipped (credit_transfer 1)" in result.stdout


def test_table_says_when_a_report_is_not_ours():
    result = inspect(ANSWERS_PAIN001)
    assert result.exit_code == ExitCode.OK
    assert "not ours" in result.stdout


def test_xsd_deviation_is_a_warning_and_exit_0():
    result = inspect(samples_dir() / PAIN002_BOI, "--json")
    assert result.exit_code == ExitCode.OK
    document = json.loads(result.stdout)
    assert len(document["records"]) == 4
    assert [w["code"] for w in document["warnings"]] == ["schema_violation"]


def test_strict_refuses_an_xsd_deviation_with_exit_1_and_one_line():
    result = inspect(samples_dir() / PAIN002_BOI, "--strict", "--json")
    assert result.exit_code == ExitCode.INVALID
    assert_one_clear_line(result)
    assert "AddtlInf" in result.stderr


def test_strict_accepts_a_file_that_keeps_to_its_xsd():
    samples_dir()  # the XSD comes from ../shared too
    result = inspect(RETURN_LUMP_SUM, "--strict", "--json")
    assert result.exit_code == ExitCode.OK
    assert json.loads(result.stdout)["warnings"] == []


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("truncated.xml", RETURN_LUMP_SUM.read_text(encoding="utf-8")[:1500], "not well-formed"),
        ("empty.xml", "", "is empty"),
        (
            "xxe.xml",
            (
                '<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">&xxe;</Document>'
            ),
            "DOCTYPE",
        ),
        (
            "camt.053.001.09.xml",
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.09"><BkToCstmrStmt/></Document>',
            "camt.053.001.09",
        ),
    ],
)
def test_unreadable_file_exits_2_with_one_line_and_no_traceback(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    for extra in ([], ["--json"]):
        result = inspect(path, *extra)
        assert result.exit_code == ExitCode.UNREADABLE
        assert_one_clear_line(result)
        assert expected in result.stderr
        assert result.stderr.startswith(str(path))


def test_missing_file_exits_2(tmp_path):
    result = inspect(tmp_path / "nowhere.xml")
    assert result.exit_code == ExitCode.UNREADABLE
    assert_one_clear_line(result)
    assert "cannot be opened" in result.stderr


def test_directory_exits_2(tmp_path):
    result = inspect(tmp_path)
    assert result.exit_code == ExitCode.UNREADABLE
    assert_one_clear_line(result)


def test_pain008_file_is_not_a_return_file_and_exits_2():
    result = inspect(samples_dir() / PAIN008_SAMPLE)
    assert result.exit_code == ExitCode.UNREADABLE
    assert_one_clear_line(result)
    assert "pain.008.001.02" in result.stderr
