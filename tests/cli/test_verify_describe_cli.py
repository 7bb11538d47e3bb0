"""``sepa-engine verify`` and ``sepa-engine describe``: exit codes, JSON and what is printed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.exit_codes import ExitCode
from tests.shared_files import samples_dir

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "pain.008"
GOLDEN_08 = TESTDATA / "pain.008.001.08-two-blocks-amendments.xml"
GOLDEN_02 = TESTDATA / "pain.008.001.02-two-blocks-amendments.xml"
ABN_AMRO = "dutchsepa__abn-amro-bank-sample-pain.008.001.02__pain.008.001.02_voorbeeldbestand.xml"
SEPA_KING_003_02 = "sepaking__example-german-pain.008.003.02__pain.008.003.02.xml"

runner = CliRunner()


def run(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def json_of(result) -> dict:
    return json.loads(result.stdout)


def test_verify_of_our_own_file_exits_0_and_says_valid():
    result = run("verify", GOLDEN_08)
    assert result.exit_code == ExitCode.OK
    assert "VALID" in result.stdout and "INVALID" not in result.stdout
    assert "4 transactions" in result.stdout


def test_verify_json_of_valid_files_lists_each_file():
    result = run("verify", "--json", GOLDEN_08, GOLDEN_02)
    assert result.exit_code == ExitCode.OK
    files = json_of(result)["files"]
    assert [(f["message"], f["valid"], f["transactions"], f["control_sum"], f["findings"]) for f in files] == [
        ("pain.008.001.08", True, 4, "1000000000.30", []),
        ("pain.008.001.02", True, 4, "1000000000.30", []),
    ]
    assert result.stderr == ""


def test_verify_exits_0_when_a_file_has_only_warnings(tmp_path):
    path = tmp_path / "no-group-sum.xml"
    path.write_text(GOLDEN_08.read_text().replace("<CtrlSum>1000000000.30</CtrlSum>\n", "", 1))
    result = run("verify", "--json", path)
    assert result.exit_code == ExitCode.OK
    (report,) = json_of(result)["files"]
    assert report["valid"] is True
    assert [(f["severity"], f["code"]) for f in report["findings"]] == [("warning", "control_sum_missing")]


def test_verify_exits_1_when_a_file_has_an_error(tmp_path):
    path = tmp_path / "off-by-one-cent.xml"
    path.write_text(GOLDEN_08.read_text().replace("<CtrlSum>0.30</CtrlSum>", "<CtrlSum>0.31</CtrlSum>", 1))
    result = run("verify", "--json", GOLDEN_02, path)
    assert result.exit_code == ExitCode.INVALID
    good, bad = json_of(result)["files"]
    assert good["valid"] is True and bad["valid"] is False
    assert bad["findings"] == [
        {
            "severity": "error",
            "code": "control_sum_mismatch",
            "location": "/Document/CstmrDrctDbtInitn/PmtInf[1]/CtrlSum",
            "field": "CtrlSum",
            "message": "CtrlSum '0.31' does not match the sum of the payment block's transactions (0.30)",
        }
    ]


def test_verify_table_shows_each_finding_and_a_verdict_per_file(tmp_path):
    path = tmp_path / "accent.xml"
    path.write_text(GOLDEN_08.read_text().replace("<Nm>Debiteur 1</Nm>", "<Nm>Débiteur 1</Nm>", 1), encoding="utf-8")
    result = run("verify", path, GOLDEN_02)
    assert result.exit_code == ExitCode.INVALID
    assert "invalid_characters" in result.stdout
    verdicts = [line for line in result.stdout.splitlines() if line.startswith(("VALID", "INVALID"))]
    assert verdicts == [
        f"INVALID {path}: pain.008.001.08, 4 transactions, 1000000000.30 EUR, 1 errors, 0 warnings",
        f"VALID {GOLDEN_02}: pain.008.001.02, 4 transactions, 1000000000.30 EUR, 0 errors, 0 warnings",
    ]


def test_verify_of_all_samples_reports_their_defects_and_exits_1():
    paths = sorted((samples_dir() / "pain.008").glob("*.xml"))
    result = run("verify", "--json", *paths)
    assert result.exit_code == ExitCode.INVALID
    files = {Path(f["path"]).name: f for f in json_of(result)["files"]}
    assert len(files) == len(paths)
    abn = files[ABN_AMRO]
    assert (abn["message"], abn["transactions"], abn["control_sum"], abn["valid"]) == ("pain.008.001.02", 1, "1600.00", False)
    assert {f["code"] for f in abn["findings"]} >= {"invalid_checksum", "collection_date_before_creation"}
    german = files[SEPA_KING_003_02]
    assert german["findings"][0]["message"] == "no XSD shipped for pain.008.003.02; schema not checked"
    # IBANs are masked in every message.
    assert "DE12345678901234567890" not in result.stdout


def test_verify_with_an_unreadable_file_exits_2_and_still_checks_the_others(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text(GOLDEN_08.read_text()[:500])
    result = run("verify", "--json", broken, GOLDEN_08)
    assert result.exit_code == ExitCode.UNREADABLE
    first, second = json_of(result)["files"]
    assert first["path"] == str(broken) and first["readable"] is False
    assert second["valid"] is True
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"{broken}: ")


def test_unreadable_wins_over_invalid_in_the_exit_code(tmp_path):
    invalid = tmp_path / "invalid.xml"
    invalid.write_text(GOLDEN_08.read_text().replace("<CtrlSum>0.30</CtrlSum>", "<CtrlSum>0.31</CtrlSum>", 1))
    result = run("verify", invalid, tmp_path / "missing.xml")
    assert result.exit_code == ExitCode.UNREADABLE
    assert result.stderr == f"{tmp_path / 'missing.xml'}: cannot be opened: No such file or directory\n"
    assert "INVALID" in result.stdout


def test_describe_json_lists_blocks_and_transactions():
    result = run("describe", "--json", GOLDEN_08)
    assert result.exit_code == ExitCode.OK
    doc = json_of(result)
    assert (doc["message"], doc["message_id"], doc["transactions"], doc["control_sum"]) == (
        "pain.008.001.08", "MSG000001", 4, "1000000000.30",
    )  # fmt: skip
    assert doc["creditors"] == [
        {"name": "Gestion Immobiliere Martin", "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP", "creditor_id": "FR72ZZZ123456"}
    ]
    first_block = doc["payment_blocks"][0]
    assert (first_block["sequence_type"], first_block["collection_date"], first_block["local_instrument"]) == ("FRST", "2026-11-26", "CORE")
    assert [t["end_to_end_id"] for t in first_block["transactions"]] == ["E2E-00000001", "E2E-00000002"]
    assert [t["amended"] for t in first_block["transactions"]] == [False, True]


def test_describe_mask_hides_debtor_names_and_ibans():
    plain = run("describe", "--json", GOLDEN_08).stdout
    result = run("describe", "--json", "--mask", GOLDEN_08)
    assert result.exit_code == ExitCode.OK
    assert "NL91ABNA0417164300" in plain and "Debiteur 1" in plain
    assert "NL91ABNA0417164300" not in result.stdout and "Debiteur 1" not in result.stdout
    tx = json_of(result)["payment_blocks"][0]["transactions"][0]
    assert (tx["debtor_iban"], tx["debtor_name"]) == ("NL91**********4300", "D******* 1")


def test_describe_on_a_terminal_prints_the_blocks_and_amounts():
    path = samples_dir() / "pain.008" / ABN_AMRO
    result = run("describe", path)
    assert result.exit_code == ExitCode.OK
    assert "1000004207" in result.stdout
    assert "CORE RCUR, collection 2012-02-21, 1 transactions, 1600.00 EUR" in result.stdout
    assert "NL89ZZZ011234567890" in result.stdout


def test_describe_of_another_message_exits_2_with_one_line():
    path = next((samples_dir() / "camt.053").glob("*.xml"))
    result = run("describe", path)
    assert result.exit_code == ExitCode.UNREADABLE
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "is not a supported pain.008 version" in result.stderr


def test_verify_without_files_is_a_usage_error():
    result = run("verify")
    assert result.exit_code not in (ExitCode.OK, ExitCode.INVALID)
    assert "Traceback" not in result.output
