"""``sepa-engine reconcile`` shows its progress bar on a terminal only."""

from __future__ import annotations

from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.exit_codes import ExitCode
from tests.cli.test_reconcile_cli import _answers, _config


def test_reconcile_off_a_terminal_writes_no_progress_to_stderr(db, database_url, tmp_path):
    sim = _answers(db, database_url, tmp_path)
    config = _config(tmp_path, database_url)

    result = CliRunner().invoke(app, ["reconcile", str(sim.pain002_path), str(sim.camt054_path), "--json", "--config", config])

    assert result.exit_code == ExitCode.OK, result.output
    assert "Reconciling" not in result.stderr
    assert "━" not in result.stderr and "\r" not in result.stderr
    # stderr carries only the JSON log lines, one event per line.
    assert all(line.startswith("{") for line in result.stderr.splitlines())

