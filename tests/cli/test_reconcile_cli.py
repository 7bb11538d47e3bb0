"""``sepa-engine reconcile`` and ``returns exceptions``: exit codes, output, one transaction per file."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from sepa_engine.banksim import simulate
from sepa_engine.cli.main import app
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import DebitRequest
from sepa_engine.db.returns_models import ReturnFile
from sepa_engine.exit_codes import ExitCode
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.services.test_reconciliation import NOW, _pain002_tx, boi, somebody_elses_statement

runner = CliRunner()


def _config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{tmp_path / "outbox"}"\n'
    )
    return str(path)


def _answers(db, database_url: str, tmp_path: Path):
    creditor = ledger.creditor(db)
    for i in range(12):
        ledger.request(db, creditor, ledger.mandate(db, creditor), 2_000 + i)
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    (outcome,) = run_collection(db, settings, FixedClock(NOW), SequentialIds("CLI")).files
    return simulate(outcome.path, tmp_path / "inbox", 0.3, 0.3, seed=2)


def test_reconcile_applies_each_file_and_says_when_it_was_already_imported(db, database_url, tmp_path):
    sim = _answers(db, database_url, tmp_path)
    config = _config(tmp_path, database_url)

    first = runner.invoke(app, ["reconcile", str(sim.pain002_path), str(sim.camt054_path), "--json", "--config", config])
    assert first.exit_code == ExitCode.OK, first.output
    files = json.loads(first.stdout)["files"]
    assert [f["status"] for f in files] == ["applied", "applied"]
    assert files[0]["applied"] == sim.rejected_count

    again = runner.invoke(app, ["reconcile", str(sim.camt054_path), "--config", config])
    assert again.exit_code == ExitCode.OK
    assert "duplicate" in again.stdout


def test_records_sent_to_exceptions_exit_1_and_can_be_listed_and_resolved(db, database_url, tmp_path):
    _answers(db, database_url, tmp_path)
    config = _config(tmp_path, database_url)
    result = runner.invoke(app, ["reconcile", str(boi()), "--config", config])
    assert result.exit_code == ExitCode.INVALID, result.output

    listed = json.loads(runner.invoke(app, ["returns", "exceptions", "list", "--json", "--config", config]).stdout)
    assert [e["end_to_end_id"] for e in listed["exceptions"]] == ["E2EID1", "E2EID2", "E2EID3", "E2EID4"]
    first = listed["exceptions"][0]["id"]

    resolved = runner.invoke(
        app, ["returns", "exceptions", "resolve", str(first), "--as", "ignored", "--note", "not ours", "--json", "--config", config]
    )
    assert resolved.exit_code == 0, resolved.output
    assert json.loads(resolved.stdout)["resolution"] == "ignored"
    left = json.loads(runner.invoke(app, ["returns", "exceptions", "list", "--json", "--config", config]).stdout)
    assert len(left["exceptions"]) == 3


def test_resolving_as_a_request_applies_the_record_to_it(db, database_url, tmp_path):
    _answers(db, database_url, tmp_path)
    config = _config(tmp_path, database_url)
    with db.reader() as s:
        target = s.scalars(select(DebitRequest).where(DebitRequest.status == "submitted").order_by(DebitRequest.id)).first()
    path = _pain002_tx(tmp_path / "x.xml", "WHO", "MANGLED", target.amount_cents, "MS02")
    runner.invoke(app, ["reconcile", str(path), "--config", config])
    (exception,) = json.loads(runner.invoke(app, ["returns", "exceptions", "list", "--json", "--config", config]).stdout)["exceptions"]
    result = runner.invoke(app, ["returns", "exceptions", "resolve", str(exception["id"]), "--as", str(target.id), "--config", config])
    assert result.exit_code == 0, result.output
    with db.reader() as s:
        assert s.get(DebitRequest, target.id).status == "rejected"


def test_unreadable_file_exits_2_with_one_line_and_does_not_stop_the_others(db, database_url, tmp_path):
    sim = _answers(db, database_url, tmp_path)
    config = _config(tmp_path, database_url)
    broken = tmp_path / "broken.xml"
    broken.write_bytes(sim.pain002_path.read_bytes()[:-200])
    hostile = tmp_path / "hostile.xml"
    hostile.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Document>&a;</Document>')

    result = runner.invoke(app, ["reconcile", str(broken), str(hostile), str(sim.pain002_path), "--json", "--config", config])

    assert result.exit_code == ExitCode.UNREADABLE
    assert "Traceback" not in result.output
    statuses = [f["status"] for f in json.loads(result.stdout)["files"]]
    assert statuses == ["refused", "refused", "applied"]


def test_resolving_an_unknown_exception_fails_with_one_line(db, database_url, tmp_path):
    config = _config(tmp_path, database_url)
    result = runner.invoke(app, ["returns", "exceptions", "resolve", "999", "--as", "ignored", "--config", config])
    assert result.exit_code == ExitCode.INVALID
    assert "does not exist" in result.output


def test_import_inbox_reconciles_what_arrived_and_moves_it(db, database_url, tmp_path):
    from sepa_engine.cli.main import app as cli_app

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "broken.xml").write_text("<Document>")
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[paths]\ninbox_dir = "{inbox}"\n')
    result = CliRunner().invoke(cli_app, ["returns", "import-inbox", "--json", "--config", str(config)])
    assert result.exit_code == 2
    assert [p.name for p in (inbox / "failed").iterdir()] == ["broken.xml"]
    assert not (inbox / "broken.xml").exists()


def test_off_a_terminal_each_file_stays_on_one_line_and_the_header_is_whole(db, database_url, tmp_path):
    # The issue: under cron the table wrapped each file path over 6 lines and split its header.
    config = _config(tmp_path, database_url)
    deep = tmp_path / "var" / "inbox" / "a-rather-long-folder-name-as-deployments-have" / "2026-11"
    deep.mkdir(parents=True)
    paths = []
    for n in range(2):
        path = deep / f"not-a-bank-file-with-a-long-name-{n}.xml"
        path.write_text("not xml")
        paths.append(str(path))
    result = runner.invoke(app, ["reconcile", *paths, "--config", config])
    lines = result.stdout.splitlines()
    for path in paths:
        assert sum(path in line for line in lines) == 1, result.stdout
    header = next(line for line in lines if "file" in line and "status" in line)
    for column in ("message", "applied", "already applied", "exceptions", "skipped"):
        assert column in header, result.stdout


def test_a_statement_of_somebody_elses_account_is_refused_without_showing_or_storing_that_iban(
    db, database_url, tmp_path,
):
    # The refusal read "account 'FR1420041010050500013M02606' is not the account of any of our
    # creditors": another company's account number, whole, on the operator's terminal, in
    # cron's mail and in the refusal stored on the file's row, where every other IBAN is masked.
    sim = _answers(db, database_url, tmp_path)
    config = _config(tmp_path, database_url)
    theirs = "FR1420041010050500013M02606"
    statement = somebody_elses_statement(sim.camt054_path, tmp_path / "statement.xml", theirs, run_prefix="CLI")

    result = runner.invoke(app, ["reconcile", str(statement), "--json", "--config", config])

    assert result.exit_code == ExitCode.UNREADABLE, result.output
    (refused,) = json.loads(result.stdout)["files"]
    assert refused["status"] == "refused"
    assert "FR14*******************2606" in refused["error"]
    assert theirs not in result.output
    with db.reader() as s:
        (stored,) = s.scalars(select(ReturnFile.refusal)).all()
    assert "is not the account of any of our creditors" in stored and theirs not in stored
