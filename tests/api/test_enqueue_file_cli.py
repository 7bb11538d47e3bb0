from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.db.models import DebitRequest
from sepa_engine.db.session import Database
from tests import accounts_world as world
from tests.api.test_tokens_cli import config_file

runner = CliRunner()
MANDATE = "RUM-PRE-AG-1"


def setup(db: Database) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")


def line(key: str, amount: str = "10.00", **extra: object) -> str:
    return json.dumps({"idempotency_key": key, "mandate": MANDATE, "amount": amount, "on_account": True, **extra})


def count(db: Database) -> int:
    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(DebitRequest)) or 0


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["enqueue", *args])


def test_a_jsonl_file_is_enqueued_and_rerunning_it_changes_nothing(db: Database, database_url: str, tmp_path: Path) -> None:
    setup(db)
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.jsonl"
    file.write_text("\n".join([line("k-1"), "", line("k-2", "20.50", remittance="Loyer")]) + "\n")
    first = run(str(file), "--creditor", "pressimmo", "--json", "--config", config)
    second = run(str(file), "--creditor", "pressimmo", "--json", "--config", config)
    assert first.exit_code == 0, first.output
    assert (json.loads(first.stdout)["created"], json.loads(first.stdout)["unchanged"]) == (2, 0)
    assert (json.loads(second.stdout)["created"], json.loads(second.stdout)["unchanged"]) == (0, 2)
    assert count(db) == 2


def test_a_file_mixing_new_lines_lines_already_stored_and_repeated_lines_counts_each_line_once(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    setup(db)
    config = config_file(tmp_path, database_url)
    earlier, file = tmp_path / "earlier.jsonl", tmp_path / "requests.jsonl"
    earlier.write_text(line("k-1") + "\n")
    file.write_text("\n".join([line("k-2"), line("k-1"), line("k-2"), line("k-3", "30.00"), line("k-1")]) + "\n")
    assert run(str(earlier), "--creditor", "pressimmo", "--json", "--config", config).exit_code == 0
    result = run(str(file), "--creditor", "pressimmo", "--json", "--config", config)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # k-2 and k-3 are new; k-1 twice and k-2's repeat change nothing.
    assert (report["created"], report["unchanged"]) == (2, 3)
    assert count(db) == 3


def test_every_bad_line_is_reported_with_its_number_field_and_rule_and_nothing_is_applied(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    setup(db)
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.jsonl"
    file.write_text("\n".join([
        line("k-1"),
        line("k-2", "12,50"),                                     # 2: amount pattern
        json.dumps({"mandate": MANDATE, "amount": "1.00"}),       # 3: no key
        line("k-4", mandate="RUM-NOBODY"),                        # 4: unknown mandate (engine)
        "{not json",                                              # 5
        line("k-6"),
    ]) + "\n")
    result = run(str(file), "--creditor", "pressimmo", "--json", "--config", config)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["applied"] is False
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (2, "amount"), (3, "idempotency_key"), (4, "mandate"), (5, "line"),
    ]
    assert report["errors"][1]["rule"] == "is required"
    assert report["errors"][2]["code"] == "not_found"
    assert count(db) == 0


def test_skip_bad_applies_the_good_lines_and_writes_the_bad_ones_to_the_rejects_file(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    setup(db)
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.csv"
    file.write_text(
        "idempotency_key,mandate,amount,remittance,final,on_account\n"
        f"c-1,{MANDATE},10.00,Loyer,false,true\n"
        f"c-2,RUM-NOBODY,11.00,,,true\n"
        f"c-3,{MANDATE},-3,,,true\n"
        f"c-4,{MANDATE},13.00,,,true\n"
    )
    rejects = tmp_path / "rejects.csv"
    result = run(str(file), "--creditor", "pressimmo", "--skip-bad", "--rejects", str(rejects), "--json", "--config", config)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["applied"], report["created"]) == (True, 2)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(3, "mandate"), (4, "amount")]
    assert rejects.read_text() == (
        "idempotency_key,mandate,amount,remittance,final,on_account\n"
        # The cell a spreadsheet would read as a formula is made inert (issue 15).
        "c-2,RUM-NOBODY,11.00,,,true\nc-3,RUM-PRE-AG-1,'-3,,,true\n"
    )
    assert count(db) == 2


def test_a_line_naming_another_creditor_than_the_one_given_is_bad(db: Database, database_url: str, tmp_path: Path) -> None:
    setup(db)
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.jsonl"
    file.write_text(line("k-1", creditor="other") + "\n")
    result = run(str(file), "--creditor", "pressimmo", "--json", "--config", config)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"][0]["field"] == "creditor"


def test_a_key_reused_with_other_content_in_a_later_file_is_a_bad_line(db: Database, database_url: str, tmp_path: Path) -> None:
    setup(db)
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.jsonl"
    file.write_text(line("k-1") + "\n")
    assert run(str(file), "--creditor", "pressimmo", "--config", config).exit_code == 0
    file.write_text(line("k-1", "99.00") + "\n" + line("k-2") + "\n")
    result = run(str(file), "--creditor", "pressimmo", "--json", "--config", config)
    assert result.exit_code == 1
    assert [(e["line"], e["code"]) for e in json.loads(result.stdout)["errors"]] == [(1, "idempotency_conflict")]
    assert count(db) == 1


def test_a_csv_line_names_the_invoices_it_pays_separated_by_semicolons(db: Database, database_url: str, tmp_path: Path) -> None:
    setup(db)
    world.entry(db, "F-1", "10.00")
    world.entry(db, "F-2", "5.00")
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.csv"
    file.write_text(f"idempotency_key,mandate,amount,invoices\ni-1,{MANDATE},15.00,F-1;F-2\n")
    result = run(str(file), "--creditor", "pressimmo", "--json", "--config", config)
    assert result.exit_code == 0, result.stdout
    assert world.position(db).collectable_cents == 0 and count(db) == 1
