"""The logs of a whole month, read as cron would keep them: JSON lines, no debtor in clear.

Runs the real console script in subprocesses (stderr is a pipe, not a terminal, exactly as
under cron), at debug level so that every event any code path emits is in the output, and
then looks for every IBAN, debtor name and mandate reference of the fixtures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "demo"
ENGINE = [sys.executable, "-c", "from sepa_engine.cli.main import main; main()"]


def _fixture_secrets() -> dict[str, set[str]]:
    """Every debtor IBAN, debtor name and mandate reference the demo fixtures contain."""
    secrets: dict[str, set[str]] = {"iban": set(), "name": set(), "mandate": set()}
    for month in ("october", "november"):
        for row in json.loads((FIXTURES / month / "mandates.json").read_text()):
            secrets["iban"].add(row["iban"])
            secrets["mandate"].add(row["reference"])
        for row in json.loads((FIXTURES / month / "debtor-accounts.json").read_text()):
            secrets["name"].add(row["name"])
    return secrets


def _run(args: list[str], config: Path, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEPA_ENGINE_LOG_LEVEL": "debug", "SEPA_ENGINE_CONFIG": str(config)}
    env.pop("SEPA_ENGINE_DATABASE_URL", None)
    result = subprocess.run(ENGINE + args + ["--config", str(config)] if args[0] != "simulate-bank" else ENGINE + args,
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode in ok, (args, result.returncode, result.stderr[-2000:])
    return result


@pytest.fixture(scope="module")
def month_of_logs(tmp_path_factory: pytest.TempPathFactory) -> str:
    # Once per module, on SQLite: what is logged does not depend on the backend, and the month
    # takes a few seconds of subprocesses.
    tmp_path = tmp_path_factory.mktemp("month")
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = tmp_path / "sepa-engine.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{tmp_path / "outbox"}"\ninbox_dir = "{tmp_path / "inbox"}"\n'
    )
    stderr: list[str] = []
    stderr.append(_run(["init-db"], config).stderr)
    stderr.append(_run(["load", str(FIXTURES / "october")], config).stderr)
    stderr.append(_run(["collect", "--date", "2026-10-22"], config, ok=(0, 4)).stderr)
    stderr.append(_run(["load", str(FIXTURES / "november")], config).stderr)
    stderr.append(_run(["collect", "--date", "2026-11-23"], config, ok=(0, 4)).stderr)
    files = sorted((tmp_path / "outbox").glob("*/*.xml"))
    assert files, "the month wrote no file"
    answers = tmp_path / "answers"
    stderr.append(_run(["simulate-bank", str(files[-1]), "--reject-rate", "0.3", "--return-rate", "0.5",
                        "--seed", "7", "--out", str(answers)], config).stderr)
    stderr.append(_run(["reconcile", *map(str, sorted(answers.glob("*.xml")))], config, ok=(0, 1)).stderr)
    return "".join(stderr)


def _events(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_no_debtor_iban_name_or_mandate_reference_appears_in_clear(month_of_logs):
    secrets = _fixture_secrets()
    assert len(_events(month_of_logs)) > 10, "the flow logged (almost) nothing: the check would prove nothing"
    for iban in secrets["iban"]:
        spaced = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        assert iban not in month_of_logs and spaced not in month_of_logs, f"IBAN {iban[:4]}... in clear"
    for name in secrets["name"]:
        assert name not in month_of_logs, f"debtor name {name!r} in clear"
    for reference in secrets["mandate"]:
        assert re.search(rf"\b{re.escape(reference)}\b", month_of_logs) is None, f"mandate reference {reference} in clear"


def test_every_log_line_is_one_json_event_with_a_level_and_a_time(month_of_logs):
    lines = [line for line in month_of_logs.splitlines() if line.strip()]
    events = _events(month_of_logs)
    assert len(events) == len(lines), [line for line in lines if not line.startswith("{")][:3]
    assert all({"event", "level", "timestamp"} <= event.keys() for event in events)



def test_business_events_name_their_creditor_batch_and_file(month_of_logs):
    events = _events(month_of_logs)
    published = [e for e in events if e["event"] == "batch.published"]
    assert published and all({"creditor", "batch_id", "message_id"} <= e.keys() for e in published)
    files = [e for e in events if e["event"] == "return_file.applied"]
    assert files and all({"file_id", "message", "records", "applied"} <= e.keys() for e in files)
    about_records = [e for e in events if e["event"] in ("return.applied", "return.exception", "mandate.blocked")]
    assert about_records and all("file_id" in e for e in about_records)
    moved = [e for e in events if e["event"] == "batch.status"]
    assert moved and all({"batch_id", "message_id", "status"} <= e.keys() for e in moved)
