from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sepa_engine.cli.main import app
from tests import ledger

runner = CliRunner()


def _config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{tmp_path / "outbox"}"\n'
    )
    return path


def test_collect_reports_files_and_refusals_then_says_nothing_twice(db, database_url, tmp_path):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 12_345)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 0)
    config = str(_config(tmp_path, database_url))

    first = runner.invoke(app, ["collect", "--date", "2026-11-23", "--json", "--config", config])
    assert first.exit_code == 4, first.output  # partial: one refused
    report = json.loads(first.stdout)
    assert report["assigned"] == 1 and report["refused"] == 1
    (file,) = report["files"]
    assert file["control_sum"] == "123.45" and file["blocks"][0]["collection_date"] == "2026-11-24"
    assert report["refusals"][0]["reason_code"] == "AM01"

    second = runner.invoke(app, ["collect", "--date", "2026-11-23", "--config", config])
    assert second.exit_code == 3
    assert "nothing to collect" in second.stdout


def test_batches_list_and_batch_show_describe_the_file_and_the_refused(db, database_url, tmp_path):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 5_000)
    ledger.request(db, creditor, ledger.mandate(db, creditor, status="revoked"), 5_000)
    config = str(_config(tmp_path, database_url))
    runner.invoke(app, ["collect", "--date", "2026-11-23", "--config", config])

    listed = json.loads(runner.invoke(app, ["batches", "list", "--json", "--config", config]).stdout)
    assert [(b["status"], b["transactions"]) for b in listed] == [("published", 1)]
    shown = runner.invoke(app, ["batch", "show", str(listed[0]["id"]), "--json", "--config", config])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert [r["status"] for r in document["requests"]] == ["submitted"]
    assert [r["reason_code"] for r in document["refused_in_run"]] == ["MD01"]


def test_unknown_batch_is_one_clear_line_and_a_non_zero_exit(db, database_url, tmp_path):
    result = runner.invoke(app, ["batch", "show", "999", "--config", str(_config(tmp_path, database_url))])
    assert result.exit_code != 0
    assert "batch 999 does not exist" in result.output
    assert "Traceback" not in result.output


def test_bad_date_is_a_usage_error(db, database_url, tmp_path):
    result = runner.invoke(app, ["collect", "--date", "23/11/2026", "--config", str(_config(tmp_path, database_url))])
    assert result.exit_code == 64
    assert "--date" in result.output


def test_sigterm_during_collect_finishes_the_file_in_progress_and_exits_143(db, database_url, tmp_path, monkeypatch):
    import datetime as dt
    import os
    import signal

    from sepa_engine import engine as engine_module
    from sepa_engine.exit_codes import ExitCode
    from sepa_engine.services.collection import CollectionReport

    heard: list[bool] = []

    def run_collection(*_args, should_stop, **_kwargs):
        # What the real run does between two files: ask whether to stop.
        before = should_stop()
        os.kill(os.getpid(), signal.SIGTERM)
        heard.extend([before, should_stop()])
        return CollectionReport(run_id=None, business_date=dt.date(2026, 11, 23), dry_run=False, interrupted=True)

    monkeypatch.setattr(engine_module, "run_collection", run_collection)
    result = runner.invoke(app, ["collect", "--config", str(_config(tmp_path, database_url))])
    assert heard == [False, True]
    assert result.exit_code == ExitCode.INTERRUPTED == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone after the run
