"""Regressions of issue 15: hostile text and structure in ``load`` and ``enqueue`` files
give one clear line per bad record, never a traceback, and change nothing they refuse."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.db.models import DebitRequest, DebtorAccount
from sepa_engine.db.session import Database
from tests import accounts_world as world
from tests import records
from tests.api.test_tokens_cli import config_file

runner = CliRunner()
MANDATE = "RUM-PRE-AG-1"


def _count(db: Database, model: type) -> int:
    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _line(key: str, **extra: object) -> str:
    # On account: the account owes nothing here (the account gate has its own tests).
    return json.dumps({"idempotency_key": key, "mandate": MANDATE, "amount": "10.00", "on_account": True, **extra})


def _enqueue(file: Path, config: str, *extra: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["enqueue", str(file), "--creditor", "pressimmo", "--json", "--config", config, *extra])


def test_lone_surrogate_in_an_enqueue_line_is_a_bad_line_and_skip_bad_still_applies_the_good_ones(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.jsonl"
    file.write_text("\n".join([_line("k-1"), _line("k-2", remittance="Loyer \ud800"), _line("k-3", remittance="a\x00b")]) + "\n")

    refused = _enqueue(file, config)
    assert refused.exit_code == 1, refused.output
    assert _count(db, DebitRequest) == 0
    skipped = _enqueue(file, config, "--skip-bad", "--rejects", str(tmp_path / "rejects.jsonl"))
    assert skipped.exit_code == 1, skipped.output
    report = json.loads(skipped.stdout)
    assert report["created"] == 1
    assert [(e["line"], e["field"], e["code"]) for e in report["errors"]] == [
        (2, "remittance", "invalid_characters"), (3, "remittance", "invalid_characters"),
    ]
    assert "unpaired surrogate" in report["errors"][0]["rule"]
    assert _count(db, DebitRequest) == 1


def test_nul_in_a_csv_cell_is_a_bad_line_not_a_stored_value(db: Database, database_url: str, tmp_path: Path) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.csv"
    file.write_text(f"idempotency_key,mandate,amount,remittance\nc-1,{MANDATE},10.00,Lo\x00yer\n")
    result = _enqueue(file, config)
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["errors"][0]["field"] == "remittance"
    assert _count(db, DebitRequest) == 0


def test_an_enqueue_line_nested_100000_deep_is_a_bad_line_not_a_recursion_error(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.jsonl"
    file.write_text(_line("k-1") + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    result = _enqueue(file, config)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    error = json.loads(result.stdout)["errors"][0]
    assert (error["line"], error["field"]) == (2, "line")
    assert "more than the 64 allowed" in error["rule"]
    assert _count(db, DebitRequest) == 0


def test_a_key_given_twice_in_an_enqueue_line_is_refused_not_last_one_wins(db: Database, database_url: str, tmp_path: Path) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.jsonl"
    file.write_text(f'{{"idempotency_key": "k-1", "mandate": "{MANDATE}", "amount": "1.00", "amount": "900.00"}}\n')
    result = _enqueue(file, config)
    assert result.exit_code == 1, result.output
    assert "the key 'amount' appears twice" in json.loads(result.stdout)["errors"][0]["rule"]
    assert _count(db, DebitRequest) == 0


def test_a_csv_cell_over_the_csv_module_limit_is_a_clear_error_and_nothing_is_enqueued(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.csv"
    huge = "x" * (csv.field_size_limit() + 1)
    file.write_text(f"idempotency_key,mandate,amount,remittance\nc-1,{MANDATE},10.00,ok\nc-2,{MANDATE},10.00,{huge}\n")
    result = _enqueue(file, config, "--skip-bad")
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "line 3: has a cell longer than 131,072 characters" in result.stderr
    assert "Traceback" not in result.output
    assert _count(db, DebitRequest) == 0


def test_load_with_a_lone_surrogate_or_nul_names_the_record_and_field_and_loads_nothing(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, database_url)
    data = records.valid_set()
    data["debtor_accounts"][0]["name"] = "Dupont \ud800"
    data["debtor_accounts"][1]["name"] = "Martin\x00"
    directory = records.write_directory(tmp_path / "in", data)
    result = runner.invoke(app, ["load", str(directory), "--config", config])
    assert result.exit_code == 1, result.output
    assert "debtor-accounts.json[0].name: contains an unpaired surrogate (U+D800)" in result.stderr
    assert "debtor-accounts.json[1].name: contains a NUL character (U+0000)" in result.stderr
    assert _count(db, DebtorAccount) == 0


def test_load_of_a_file_nested_100000_deep_is_refused_not_a_recursion_error(db: Database, database_url: str, tmp_path: Path) -> None:
    config = config_file(tmp_path, database_url)
    directory = tmp_path / "in"
    directory.mkdir()
    (directory / "creditors.json").write_text("[" * 100_000 + "]" * 100_000)
    result = runner.invoke(app, ["load", str(directory), "--config", config])
    assert result.exit_code == 1, result.output
    assert "creditors.json: nests arrays and objects 100000 deep" in result.stderr


def test_the_python_api_refuses_nul_and_surrogates_when_the_input_is_built() -> None:
    from sepa_engine import errors
    from sepa_engine.services.account_inputs import PayNowInput
    from sepa_engine.services.inputs import DebtorAccountInput

    try:
        DebtorAccountInput(reference="CUST-1", name="Martin\x00")
    except errors.InvalidCharacters as exc:
        assert exc.field == "name" and "NUL" in exc.rule
    else:
        raise AssertionError("NUL accepted")
    try:
        PayNowInput(invoices=("F1", "F\ud8002"))
    except errors.InvalidCharacters as exc:
        assert exc.field == "invoices[1]"
    else:
        raise AssertionError("surrogate accepted")


def test_line_numbers_count_only_real_line_breaks_not_u2028_inside_a_json_string(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    config = config_file(tmp_path, database_url)
    file = tmp_path / "requests.jsonl"
    # json.dumps(ensure_ascii=False) writes U+2028 raw, which is valid JSON inside a string.
    first = json.dumps({"idempotency_key": "k-1", "mandate": MANDATE, "amount": "1.00", "remittance": "a\u2028b\u2029c",
                        "on_account": True}, ensure_ascii=False)
    file.write_text(first + "\n" + _line("k-2", amount="bad") + "\n", "utf-8")
    result = _enqueue(file, config)
    assert result.exit_code == 1, result.output
    assert [(e["line"], e["field"]) for e in json.loads(result.stdout)["errors"]] == [(2, "amount")]
