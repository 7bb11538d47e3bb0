"""``sepa-engine simulate-bank``: exit codes, what is printed and where the answers go."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.exit_codes import ExitCode
from tests.shared_files import xsd_dir

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "pain.008"
GOLDEN_08 = TESTDATA / "pain.008.001.08-two-blocks-amendments.xml"
GOLDEN_02 = TESTDATA / "pain.008.001.02-two-blocks-amendments.xml"
MESSAGE_ID = "MSG000001"
SCRIPT = Path(sys.executable).with_name("sepa-engine")

runner = CliRunner()




def run(*args: str | Path):
    return runner.invoke(app, ["simulate-bank", *(str(a) for a in args)])


def rates(seed: int = 7) -> list[str]:
    return ["--reject-rate", "0.5", "--return-rate", "0.5", "--seed", str(seed)]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_answers_are_written_and_named_on_stdout(tmp_path):
    out = tmp_path / "inbox"
    result = run(GOLDEN_08, *rates(), "--out", out)
    assert result.exit_code == ExitCode.OK, result.output
    status, notification = out / f"{MESSAGE_ID}-pain002.xml", out / f"{MESSAGE_ID}-camt054.xml"
    assert status.is_file() and notification.is_file()
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"{status}: ") and "pain.008.001.08" in lines[0]
    assert lines[1].startswith(f"{notification}: ")


def test_json_names_both_answers_and_the_totals(tmp_path):
    out = tmp_path / "inbox"
    result = run(GOLDEN_02, "--reject-rate", "0", "--return-rate", "0", "--seed", "1", "--out", out, "--json")
    assert result.exit_code == ExitCode.OK, result.output
    document = json.loads(result.stdout)
    assert document["pain002"] == str(out / f"{MESSAGE_ID}-pain002.xml")
    assert document["camt054"] == str(out / f"{MESSAGE_ID}-camt054.xml")
    assert (document["original_message_name"], document["group_status"], document["transactions"]) == ("pain.008.001.02", "ACCP", 4)
    assert document["settled"] == {"count": 4, "sum": "1000000000.30"}
    assert document["rejected"] == {"count": 0, "sum": "0.00"}


def test_the_same_command_gives_the_same_bytes(tmp_path):
    for folder in ("a", "b"):
        assert run(GOLDEN_08, *rates(3), "--out", tmp_path / folder).exit_code == ExitCode.OK
    for name in (f"{MESSAGE_ID}-pain002.xml", f"{MESSAGE_ID}-camt054.xml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_answers_go_to_var_inbox_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(GOLDEN_08, *rates()).exit_code == ExitCode.OK
    assert sorted(p.name for p in (tmp_path / "var" / "inbox").iterdir()) == [
        f"{MESSAGE_ID}-camt054.xml",
        f"{MESSAGE_ID}-pain002.xml",
    ]


def test_xsd_dir_validates_the_answers_while_writing(tmp_path):
    xsd = xsd_dir()
    result = run(GOLDEN_08, *rates(), "--out", tmp_path, "--xsd-dir", xsd)
    assert result.exit_code == ExitCode.OK, result.output


def test_an_xsd_dir_without_the_schemas_is_a_usage_error(tmp_path):
    result = run(GOLDEN_08, *rates(), "--out", tmp_path / "inbox", "--xsd-dir", tmp_path)
    assert result.exit_code == ExitCode.USAGE
    assert "pain.002.001.03.xsd" in one_line(result.stderr)


def test_a_file_that_is_not_xml_exits_2_with_one_line(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("not xml at all")
    result = run(path, *rates(), "--out", tmp_path / "inbox")
    assert result.exit_code == ExitCode.UNREADABLE
    assert one_line(result.stderr).startswith(f"{path}: ")
    assert not (tmp_path / "inbox").exists()


def test_a_file_that_is_not_a_pain008_exits_2_naming_its_message(tmp_path):
    path = tmp_path / "camt.xml"
    path.write_text('<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"/>')
    result = run(path, *rates(), "--out", tmp_path / "inbox")
    assert result.exit_code == ExitCode.UNREADABLE
    line = one_line(result.stderr)
    assert "camt.054.001.02" in line and "not a supported pain.008" in line


def test_a_missing_file_exits_2(tmp_path):
    result = run(tmp_path / "nope.xml", *rates(), "--out", tmp_path / "inbox")
    assert result.exit_code == ExitCode.UNREADABLE
    assert one_line(result.stderr) == f"{tmp_path / 'nope.xml'}: does not exist"


@pytest.mark.parametrize("option", ["--reject-rate", "--return-rate"])
def test_a_rate_outside_zero_to_one_is_a_usage_error(tmp_path, option):
    args = {"--reject-rate": "0.1", "--return-rate": "0.1", option: "1.5"}
    result = run(GOLDEN_08, *(part for pair in args.items() for part in pair), "--seed", "1", "--out", tmp_path / "inbox")
    assert result.exit_code == ExitCode.USAGE
    assert one_line(result.stderr) == f"error: {option} 1.5 must be between 0 and 1"


def test_an_existing_answer_exits_5_and_is_kept(tmp_path):
    out = tmp_path / "inbox"
    assert run(GOLDEN_08, *rates(1), "--out", out).exit_code == ExitCode.OK
    before = (out / f"{MESSAGE_ID}-pain002.xml").read_bytes()
    result = run(GOLDEN_08, *rates(2), "--out", out)
    assert result.exit_code == ExitCode.FAILED
    assert "already exists" in one_line(result.stderr)
    assert (out / f"{MESSAGE_ID}-pain002.xml").read_bytes() == before


def test_console_script_usage_errors_exit_64_and_bad_input_exits_2(tmp_path):
    missing_seed = subprocess.run(
        [str(SCRIPT), "simulate-bank", str(GOLDEN_08), "--reject-rate", "0.1", "--return-rate", "0.1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing_seed.returncode == ExitCode.USAGE
    assert "--seed" in missing_seed.stderr
    path = tmp_path / "x.xml"
    path.write_text("not xml at all")
    unreadable = subprocess.run(
        [str(SCRIPT), "simulate-bank", str(path), *rates(), "--out", str(tmp_path / "inbox")],
        capture_output=True,
        text=True,
        check=False,
        env={"SEPA_ENGINE_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"},
    )
    assert unreadable.returncode == ExitCode.UNREADABLE
    assert one_line(unreadable.stderr).startswith(f"{path}: ")
