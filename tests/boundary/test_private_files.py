"""Regressions of issue 15: the SQLite ledger was 0644 under umask 022, ``var/outbox`` and
``outbox/pending`` 0755, the rejects file 0644 and written over whatever was there (a
configuration file included); CSV exports carried formulas (``=...``) as they were."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time
from typer.testing import CliRunner

from sepa_engine import errors, outbox, private_files
from sepa_engine.cli.main import app
from sepa_engine.db.session import Database
from sepa_engine.domain import text
from tests import accounts_world as world
from tests.api.test_tokens_cli import config_file

runner = CliRunner()
MANDATE = "RUM-PRE-AG-1"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_sqlite_ledger_and_its_folder_are_owner_only_under_umask_022(tmp_path: Path, loose_umask: None) -> None:
    var = tmp_path / "srv" / "var"
    config = tmp_path / "sepa-engine.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{var}/sepa-engine.db"\n[paths]\nvar_dir = "{var}"\n')
    result = runner.invoke(app, ["init-db", "--config", str(config)], env={"SEPA_ENGINE_DATABASE_URL": ""})
    assert result.exit_code == 0, result.output
    assert _mode(var / "sepa-engine.db") == 0o600
    assert _mode(var) == 0o700 and _mode(tmp_path / "srv") == 0o700
    for sidecar in var.glob("sepa-engine.db-*"):  # -wal and -shm copy the ledger's mode
        assert _mode(sidecar) == 0o600, sidecar


def test_outbox_and_pending_folders_are_0700_at_every_level_under_umask_022(tmp_path: Path, loose_umask: None) -> None:
    final = tmp_path / "var" / "outbox" / outbox.PENDING_FOLDER / "pressimmo" / "MSG-1.xml"
    outbox.stage(final, lambda fh: fh.write(b"<x/>"))
    for folder in (tmp_path / "var", tmp_path / "var" / "outbox", final.parent.parent, final.parent):
        assert _mode(folder) == 0o700, folder


def test_write_new_creates_a_0600_file_and_never_writes_over_an_existing_one(tmp_path: Path, loose_umask: None) -> None:
    created = private_files.write_new(tmp_path / "out" / "export.csv", "a,b\n")
    assert _mode(created) == 0o600 and created.read_text() == "a,b\n"
    with pytest.raises(errors.InvalidFormat, match="already exists"):
        private_files.write_new(created, "other")
    assert created.read_text() == "a,b\n"


def _setup(db: Database) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    # What the good lines pay (the account gate refuses a debit of money not due).
    world.entry(db, "F-1", "100.00")


def test_enqueue_rejects_over_an_existing_file_is_refused_before_anything_is_applied(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    _setup(db)
    config = config_file(tmp_path, database_url)
    precious = Path(config)
    before = precious.read_text()
    file = tmp_path / "requests.jsonl"
    good = json.dumps({"idempotency_key": "k-1", "mandate": MANDATE, "amount": "1.00"})
    file.write_text(good + "\n{bad\n")
    result = runner.invoke(app, ["enqueue", str(file), "--creditor", "pressimmo", "--skip-bad", "--rejects", config, "--config", config])
    assert result.exit_code == 64, result.output
    assert "--rejects" in result.stderr and "never overwritten" in result.stderr
    assert precious.read_text() == before
    listed = runner.invoke(app, ["requests", "list", "--json", "--config", config])
    assert json.loads(listed.stdout)["requests"] == []


def test_enqueue_rejects_file_is_0600_takes_a_free_name_and_neutralises_formulas(
    db: Database, database_url: str, tmp_path: Path, loose_umask: None
) -> None:
    _setup(db)
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.csv"
    file.write_text(
        "idempotency_key,mandate,amount,remittance\n"
        f"c-1,{MANDATE},10.00,ok\n"
        f'c-2,{MANDATE},-3,"=HYPERLINK(""http://x"",""y"")"\n'
        f"@c-3,{MANDATE},abc,+cmd\n"
    )
    first = runner.invoke(app, ["enqueue", str(file), "--creditor", "pressimmo", "--skip-bad", "--config", config])
    second = runner.invoke(app, ["enqueue", str(file), "--creditor", "pressimmo", "--skip-bad", "--config", config])
    assert (first.exit_code, second.exit_code) == (1, 1), (first.output, second.output)
    rejects, again = tmp_path / "requests.rejects.csv", tmp_path / "requests.rejects.2.csv"
    assert _mode(rejects) == 0o600 and _mode(again) == 0o600
    rows = list(csv.reader(io.StringIO(rejects.read_text())))
    assert rows == [
        ["idempotency_key", "mandate", "amount", "remittance"],
        ["c-2", MANDATE, "'-3", "'=HYPERLINK(\"http://x\",\"y\")"],
        ["'@c-3", MANDATE, "abc", "'+cmd"],
    ]
    assert again.read_text() == rejects.read_text()


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_csv_cell_starting_a_formula_is_made_inert(start: str) -> None:
    assert text.csv_cell(f"{start}1+1") == f"'{start}1+1"
    assert text.csv_cell("F-2026-1") == "F-2026-1"


def test_accounts_statement_csv_neutralises_invoice_numbers_and_labels_but_not_its_own_amounts(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "=1+1", "100.00")
    world.entry(db, "@SUM(A1)", "30.00", kind="credit_note", applies_to="=1+1")
    config = config_file(tmp_path, database_url)
    with freeze_time(world.NOW):
        result = runner.invoke(app, ["accounts", "statement", "AG-1", "--creditor", "pressimmo", "--all", "--csv", "--config", config])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["number"] for row in rows] == ["'=1+1", "'@SUM(A1)"]
    assert all(not cell.startswith(text.CSV_FORMULA_STARTS) for row in rows for name, cell in row.items() if name != "balance")
