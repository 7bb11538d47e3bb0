"""``sepa-engine verify --profile P``: the rules of one bank profile, each naming its source
(issue 14, "every written file is checked against its profile's rules")."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.exit_codes import ExitCode

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "pain.008"
GOLDEN_08 = TESTDATA / "pain.008.001.08-two-blocks-amendments.xml"
GOLDEN_02 = TESTDATA / "pain.008.001.02-two-blocks-amendments.xml"

runner = CliRunner()


def verify(*args: str | Path) -> tuple[int, list[dict[str, str]]]:
    result = runner.invoke(app, ["verify", "--json", *(str(a) for a in args)])
    (report,) = json.loads(result.stdout)["files"]
    return result.exit_code, report["findings"]


def edited(tmp_path: Path, source: Path, *replacements: tuple[str, str]) -> Path:
    text = source.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    target = tmp_path / source.name
    target.write_text(text, encoding="utf-8")
    return target


def test_a_001_02_file_made_after_the_german_end_date_is_refused_under_de_with_its_source():
    code, findings = verify("--profile", "de", GOLDEN_02)

    assert code == ExitCode.INVALID
    (finding,) = findings
    assert finding["code"] == "version_no_longer_accepted"
    assert "since 2026-11-15" in finding["message"] and "bank profile de" in finding["message"]
    assert "Deutsche Kreditwirtschaft" in finding["message"]


def test_the_same_file_is_valid_under_a_profile_that_still_takes_001_02():
    assert verify("--profile", "nl", GOLDEN_02) == (ExitCode.OK, [])
    assert verify("--profile", "de", GOLDEN_08) == (ExitCode.OK, [])


def test_structured_addresses_in_a_001_02_file_break_the_epc_subset(tmp_path):
    # What the demo's pressimmo files looked like: ISO-valid, so plain verify said VALID.
    path = edited(tmp_path, GOLDEN_02, (
        "<Dbtr><Nm>Debiteur 1</Nm></Dbtr>",
        "<Dbtr><Nm>Debiteur 1</Nm><PstlAdr><PstCd>69001</PstCd><TwnNm>Lyon</TwnNm><Ctry>FR</Ctry></PstlAdr></Dbtr>",
    ))
    assert verify(path)[0] == ExitCode.OK

    code, findings = verify("--profile", "epc", path)

    assert code == ExitCode.INVALID
    assert [f["code"] for f in findings] == ["address_not_epc_subset"]
    assert findings[0]["location"].endswith("/PmtInf[1]/DrctDbtTxInf[1]/Dbtr/PstlAdr")
    assert "only Ctry and two AdrLine" in findings[0]["message"] and "EPC" in findings[0]["message"]


def test_a_swiss_debtor_without_bic_is_named_with_the_epc_country_list(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("NL91ABNA0417164300", "CH9300762011623852957"))

    code, findings = verify("--profile", "epc", path)

    assert code == ExitCode.INVALID
    by_code = {f["code"]: f["message"] for f in findings}
    assert "non_eea_debtor_bic_missing" in by_code
    assert "debtor in CH, outside the EEA [RC01]" in by_code["non_eea_debtor_bic_missing"]
    assert "EPC409-09" in by_code["non_eea_debtor_bic_missing"]


def test_a_collection_on_24_december_breaks_the_german_closing_days(tmp_path):
    path = edited(tmp_path, GOLDEN_08, ("<ReqdColltnDt>2026-11-26</ReqdColltnDt>", "<ReqdColltnDt>2026-12-24</ReqdColltnDt>"))

    assert verify("--profile", "epc", path) == (ExitCode.OK, [])
    code, findings = verify("--profile", "de", path)

    assert code == ExitCode.INVALID
    assert {f["code"] for f in findings} == {"bank_closing_day"}
    assert "24 and 31 December" in findings[0]["message"]


def test_an_unknown_profile_is_a_usage_error():
    result = runner.invoke(app, ["verify", "--profile", "xx", str(GOLDEN_08)])
    assert result.exit_code == ExitCode.USAGE
    assert "is not a known bank profile" in result.stderr
