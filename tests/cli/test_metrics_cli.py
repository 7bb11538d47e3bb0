"""Metrics outside the API: run-nightly's node_exporter textfile and serve's own endpoint."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from sepa_engine import errors, metrics
from sepa_engine.cli.main import app
from sepa_engine.config import load_settings
from tests import ledger

runner = CliRunner()


def _config(tmp_path: Path, database_url: str, metrics_section: str) -> str:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{tmp_path / "outbox"}"\ninbox_dir = "{tmp_path / "inbox"}"\n'
        f"[metrics]\n{metrics_section}\n"
    )
    return str(path)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("sepa_engine_"), family.name
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_run_nightly_writes_the_ledger_facts_as_a_node_exporter_textfile(db, database_url, tmp_path):
    creditor = ledger.creditor(db)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 12_345)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 0)
    textfile = tmp_path / "node_exporter" / "sepa_engine.prom"
    config = _config(tmp_path, database_url, f'textfile = "{textfile}"')

    result = runner.invoke(app, ["run-nightly", "--config", config])

    assert result.exit_code == 4, result.output  # partial: one refused
    samples = _samples(textfile.read_text())
    assert samples[("sepa_engine_job_last_run_outcome", (("job", "nightly"), ("outcome", "partial")))] == 1
    assert samples[("sepa_engine_job_last_run_outcome", (("job", "nightly"), ("outcome", "ok")))] == 0
    assert samples[("sepa_engine_job_last_run_exit_code", (("job", "nightly"),))] == 4
    assert samples[("sepa_engine_job_last_run_timestamp_seconds", (("job", "nightly"),))] > 0
    assert samples[("sepa_engine_files_written_total", (("creditor", "martin"),))] == 1
    assert samples[("sepa_engine_transactions_written_total", (("creditor", "martin"),))] == 1
    assert samples[("sepa_engine_amount_written_cents_total", (("creditor", "martin"),))] == 12_345
    assert samples[("sepa_engine_open_exceptions", ())] == 0
    # Written atomically: no temporary file is left beside it.
    assert [p.name for p in textfile.parent.iterdir()] == ["sepa_engine.prom"]


def test_serve_endpoint_answers_the_same_facts_on_loopback(db, database_url, tmp_path):
    creditor = ledger.creditor(db, requires_approval=True)
    ledger.request(db, creditor, ledger.mandate(db, creditor), 5_000)
    runner.invoke(app, ["collect", "--date", "2026-11-23", "--config", _config(tmp_path, database_url, "")])
    server, _thread = metrics.serve_ledger_metrics(db, 0, "127.0.0.1")
    try:
        port = server.server_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            samples = _samples(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert samples[("sepa_engine_files_awaiting_approval", (("creditor", "martin"),))] == 1
    assert samples[("sepa_engine_files", (("creditor", "martin"), ("status", "awaiting_approval")))] == 1


def test_metrics_settings_are_off_by_default_on_loopback_and_checked(tmp_path):
    settings = load_settings(_config(tmp_path, "sqlite:///x.db", ""))
    assert (settings.metrics.port, settings.metrics.address, settings.metrics.textfile) == (0, "127.0.0.1", None)
    with pytest.raises(errors.ConfigurationError, match=r"metrics\.textfile"):
        load_settings(_config(tmp_path, "sqlite:///x.db", 'textfile = "metrics.txt"'))
    with pytest.raises(errors.ConfigurationError, match=r"metrics\.port"):
        load_settings(_config(tmp_path, "sqlite:///x.db", "port = 70000"))


def test_the_serve_command_exposes_its_endpoint_while_it_runs(db, database_url, tmp_path):
    import signal
    import socket
    import subprocess

    from tests.cli.test_service import SCRIPT, _env, _wait_for

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = _config(tmp_path, database_url, f"port = {port}")
    with open(config, "a") as extra:
        extra.write('[scheduler.jobs.nightly]\ncron = "0 3 1 1 *"\n')
    service = subprocess.Popen([str(SCRIPT), "serve", "--config", config], cwd=tmp_path, env=_env(database_url),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert service.stderr is not None
        _wait_for(lambda: "serve.started" in service.stderr.readline() or service.poll() is not None)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            samples = _samples(response.read().decode())
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    finally:
        if service.poll() is None:
            service.kill()
    assert samples[("sepa_engine_open_exceptions", ())] == 0
    assert service.returncode == 0



def test_a_ledger_that_does_not_answer_is_ledger_up_0_not_a_failed_scrape(tmp_path):
    # serve's endpoint and the API's /metrics read the ledger at each scrape: during an outage
    # they still answer, and say so.
    from prometheus_client import generate_latest

    from sepa_engine import metrics
    from sepa_engine.db.session import Database

    down = Database("postgresql://postgres@127.0.0.1:1/sepa")  # nothing listens on port 1
    try:
        samples = _samples(generate_latest(metrics.ledger_registry(down)).decode())
    finally:
        down.dispose()
    assert samples == {("sepa_engine_ledger_up", ()): 0}
