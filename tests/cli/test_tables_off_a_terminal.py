"""Off a terminal (cron mail, a pipe, a log file) every table keeps each row on one line,
whole: file paths, message and end-to-end ids are never folded (issue 17, "tables stay
readable off a terminal"; reconcile has its own test in test_reconcile_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from tests import ledger

runner = CliRunner()


def _config(tmp_path: Path, database_url: str) -> str:
    # A deep outbox, as deployments have: the paths are longer than a terminal is wide.
    outbox = tmp_path / "var" / "a-rather-long-folder-name-as-deployments-have" / "sepa-engine" / "outbox"
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{outbox}"\ninbox_dir = "{tmp_path / "inbox"}"\n'
    )
    return str(path)


@pytest.fixture
def collected(db, database_url, tmp_path):
    creditor = ledger.creditor(db, name="Gestion Immobiliere Martin et Associes, Agence de la Part-Dieu")
    for amount in (1_000, 2_000, 0):
        ledger.request(db, creditor, ledger.mandate(db, creditor, debtor_name="Locataire au nom assez long pour deborder"), amount)
    config = _config(tmp_path, database_url)
    result = runner.invoke(app, ["collect", "--date", "2026-11-23", "--config", config])
    assert result.exit_code == 4, result.output  # one refused
    as_json = json.loads(runner.invoke(app, ["requests", "list", "--json", "--config", config]).stdout)
    return config, result.stdout, as_json


def _rows(document, key):
    return document[key] if isinstance(document, dict) else document


def test_collect_prints_each_file_path_whole_on_one_line(collected):
    config, output, _ = collected
    batches = json.loads(runner.invoke(app, ["batches", "list", "--json", "--config", config]).stdout)
    rows = _rows(batches, "batches")
    assert rows
    for batch in rows:
        name = Path(batch.get("path") or batch["file_name"]).name
        assert sum(name in line for line in output.splitlines()) == 1, output


@pytest.mark.parametrize("command", [["batches", "list"], ["requests", "list"], ["mandates", "list"], ["status"]])
def test_listings_keep_each_row_on_one_line(collected, command):
    config, _, requests = collected
    result = runner.invoke(app, [*command, "--config", config])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) < 1000 for line in lines)
    if command == ["requests", "list"]:
        for request in _rows(requests, "requests"):
            assert sum(request["end_to_end_id"] in line for line in lines) == 1, result.stdout
    # No cell folded: a table row is one line, so no line is a continuation of the one above
    # (rich prints a folded cell's rest on a line whose other cells are blank).
    table = [line for line in lines if line.startswith("│")]
    for line in table:
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        assert cells[0] or not any(cells), result.stdout
