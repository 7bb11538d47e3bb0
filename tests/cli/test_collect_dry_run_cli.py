"""``collect --dry-run`` shows the plan, in words that say "would", and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.db.models import Batch, DebitRequest, PaymentBlock, Run
from tests import ledger
from tests.cli.test_collect_review_cli import table_header

runner = CliRunner()


def _config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path}"\noutbox_dir = "{tmp_path / "outbox"}"\n'
    )
    return str(path)


def _ledger(db) -> tuple:
    with db.reader() as s:
        return (
            sorted((r.id, r.status, r.batch_id, r.run_id, r.collection_date) for r in s.scalars(select(DebitRequest))),
            s.scalar(select(func.count()).select_from(Batch)),
            s.scalar(select(func.count()).select_from(PaymentBlock)),
            s.scalar(select(func.count()).select_from(Run)),
        )


def _world(db) -> None:
    martin = ledger.creditor(db)
    for amount in (1_000, 2_000, 3_000):
        ledger.request(db, martin, ledger.mandate(db, martin), amount)
    ledger.request(db, martin, ledger.mandate(db, martin), 0)  # AM01: a zero amount
    # A mandate the bank has seen: its debit goes into an RCUR block of the same file.
    ledger.request(db, martin, ledger.mandate(db, martin, first_collected_on=dt.date(2026, 10, 5)), 4_000)
    held = ledger.creditor(db, code="held", creditor_identifier="DE98ZZZ09999999999", requires_approval=True)
    ledger.request(db, held, ledger.mandate(db, held), 500)


def test_dry_run_prints_per_creditor_the_files_blocks_and_refusals_it_would_write(db, database_url, tmp_path):
    # The issue: `collect --dry-run` printed "5 collected, 1 refused, 0 file(s)", no plan.
    _world(db)
    config = _config(tmp_path, database_url)
    result = runner.invoke(app, ["collect", "--dry-run", "--date", "2026-11-23", "--config", config])
    out = result.stdout
    assert result.exit_code == 4, out  # partial: one request would be refused
    assert "collected" not in out
    assert "Would collect 5 debit(s) in 2 file(s) and refuse 1 request(s)" in out
    assert "files that would be written" in out and "Would refuse" in out
    assert "AM01" in out
    assert "would await approval" in out
    lines = [line for line in out.splitlines() if "martin" in line]
    # martin: one file, a FRST block for the three new mandates (60.00) and an RCUR block.
    assert any("file 1" in line and "2026-11-24" in line and "FRST" in line and "60.00" in line and " 3 " in line for line in lines), out
    assert any("file 1" in line and "2026-11-24" in line and "RCUR" in line and "40.00" in line for line in lines), out


def test_dry_run_json_holds_the_same_plan(db, database_url, tmp_path):
    _world(db)
    config = _config(tmp_path, database_url)
    result = runner.invoke(app, ["collect", "--dry-run", "--json", "--date", "2026-11-23", "--config", config])
    document = json.loads(result.stdout)
    assert (document["would_collect"], document["would_refuse"]) == (5, 1)
    assert document["files"] == []
    plan = {f["creditor"]: f for f in document["would_write"]}
    assert plan["martin"]["transactions"] == 4 and plan["martin"]["control_sum"] == "100.00"
    assert [(b["collection_date"], b["sequence_type"], b["transactions"], b["control_sum"]) for b in plan["martin"]["blocks"]] == [
        ("2026-11-24", "FRST", 3, "60.00"),
        ("2026-11-24", "RCUR", 1, "40.00"),
    ]
    assert plan["held"]["would_await_approval"] is True and plan["martin"]["would_await_approval"] is False
    assert [(r["creditor"], r["reason_code"]) for r in document["refusals"]] == [("martin", "AM01")]


def test_dry_run_changes_nothing_in_the_ledger_or_the_outbox(db, database_url, tmp_path):
    _world(db)
    config = _config(tmp_path, database_url)
    before = _ledger(db)
    runner.invoke(app, ["collect", "--dry-run", "--date", "2026-11-23", "--config", config])
    assert _ledger(db) == before
    assert not (tmp_path / "outbox").exists() or not any(p.is_file() for p in (tmp_path / "outbox").rglob("*"))
    # The real run then collects exactly what the plan said.
    real = json.loads(runner.invoke(app, ["collect", "--json", "--date", "2026-11-23", "--config", config]).stdout)
    assert (real["assigned"], real["refused"], len(real["files"])) == (5, 1, 2)


def test_a_dry_run_with_nothing_due_says_nothing_would_be_collected(db, database_url, tmp_path):
    result = runner.invoke(app, ["collect", "--dry-run", "--config", _config(tmp_path, database_url)])
    assert result.exit_code == 3
    assert "nothing would be collected" in result.stdout


def test_a_dry_run_shows_the_file_a_crashed_run_left_before_the_new_one(db, database_url, tmp_path):
    # The real run writes a file an earlier run left planned before it assigns anything new;
    # the dry run said "nothing would be collected" when that file was all there was to do.
    from sepa_engine.clock import FixedClock
    from sepa_engine.config import Settings
    from sepa_engine.ids import SequentialIds
    from sepa_engine.services.collection import run_collection

    martin = ledger.creditor(db)
    mandate = ledger.mandate(db, martin)
    ledger.request(db, martin, mandate, 1_000)
    config = _config(tmp_path, database_url)

    def crash(name: str) -> None:
        if name == "after_assign":
            raise RuntimeError(name)

    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    with pytest.raises(RuntimeError):
        run_collection(db, settings, FixedClock(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)), SequentialIds("CRASH"),
                       checkpoint=crash)
    only_left = runner.invoke(app, ["collect", "--dry-run", "--date", "2026-11-23", "--config", config])
    assert only_left.exit_code == 0, only_left.stdout
    assert "nothing would be collected" not in only_left.stdout
    assert "left by an earlier run" in only_left.stdout
    assert table_header(only_left.stdout)[-1] == "note"  # it had no name
    assert "Would write 1 file(s) an earlier run left, then collect 0 debit(s) in 0 file(s)" in only_left.stdout

    ledger.request(db, martin, mandate, 2_000)
    document = json.loads(runner.invoke(app, ["collect", "--dry-run", "--json", "--date", "2026-11-23", "--config", config]).stdout)
    assert [(f["left_by_earlier_run"], f["control_sum"], [b["sequence_type"] for b in f["blocks"]]) for f in document["would_write"]] == [
        (True, "10.00", ["FRST"]), (False, "20.00", ["RCUR"]),
    ]
