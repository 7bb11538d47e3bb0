from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import inspect
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from sepa_engine.db.session import Database
from tests import records

runner = CliRunner()


def _config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "sepa-engine.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path / "var"}"\n')
    return str(path)


def _loaded(tmp_path: Path, config: str, data: dict | None = None) -> None:  # type: ignore[type-arg]
    directory = records.write_directory(tmp_path / "in", data or records.valid_set())
    result = runner.invoke(app, ["load", str(directory), "--config", config])
    assert result.exit_code == 0, result.output


def test_init_db_migrates_the_configured_ledger_and_is_safe_to_repeat(db, database_url, tmp_path):
    config = _config(tmp_path, database_url)
    for _ in range(2):
        result = runner.invoke(app, ["init-db", "--config", config])
        assert result.exit_code == 0, result.output
        assert "ledger ready" in result.stdout
    assert {"creditors", "mandates", "debit_requests"} <= set(inspect(db.engine).get_table_names())


def test_init_db_creates_var_for_the_default_sqlite_ledger(tmp_path, monkeypatch):
    monkeypatch.delenv("SEPA_ENGINE_DATABASE_URL", raising=False)
    config = tmp_path / "sepa-engine.toml"
    config.write_text(f'[paths]\nvar_dir = "{tmp_path / "var"}"\n')
    result = runner.invoke(app, ["init-db", "--config", str(config)])
    assert result.exit_code == 0, result.output
    ledger = Database(f"sqlite:///{tmp_path / 'var' / 'sepa-engine.db'}")
    try:
        assert "debit_requests" in inspect(ledger.engine).get_table_names()
    finally:
        ledger.dispose()


def test_load_counts_what_it_created_then_that_nothing_changed(db, database_url, tmp_path):
    config = _config(tmp_path, database_url)
    directory = records.write_directory(tmp_path / "in", records.valid_set())

    first = runner.invoke(app, ["load", str(directory), "--json", "--config", config])
    second = runner.invoke(app, ["load", str(directory), "--json", "--config", config])
    table = runner.invoke(app, ["load", str(directory), "--config", config])

    assert (first.exit_code, second.exit_code, table.exit_code) == (0, 0, 0), first.output + second.output
    assert json.loads(first.stdout)["counts"]["requests"] == {"created": 2, "unchanged": 0}
    assert json.loads(second.stdout)["counts"] == {
        kind: {"created": 0, "unchanged": n}
        for kind, n in {"creditors": 1, "debtor_accounts": 2, "mandates": 2, "requests": 2}.items()
    }
    assert "unchanged" in table.stdout and "requests" in table.stdout


def test_load_shows_the_problems_of_what_it_stored(db, database_url, tmp_path):
    data = records.valid_set()
    data["requests"][0]["amount"] = "0.00"
    directory = records.write_directory(tmp_path / "in", data)
    result = runner.invoke(app, ["load", str(directory), "--json", "--config", _config(tmp_path, database_url)])
    assert result.exit_code == 0, result.output
    (stored,) = json.loads(result.stdout)["problems"]
    assert (stored["file"], stored["index"], stored["problems"][0]["reason_code"]) == ("requests.json", 0, "AM01")


def test_a_second_load_of_unchanged_records_does_not_say_they_were_stored_with_problems(db, database_url, tmp_path):
    # A second `make demo` printed "Stored with problems" for records it had not stored.
    data = records.valid_set()
    data["requests"][0]["amount"] = "0.00"
    directory = records.write_directory(tmp_path / "in", data)
    config = _config(tmp_path, database_url)
    first = runner.invoke(app, ["load", str(directory), "--config", config])
    second = runner.invoke(app, ["load", str(directory), "--config", config])
    again = json.loads(runner.invoke(app, ["load", str(directory), "--json", "--config", config]).stdout)
    assert "Stored with problems" in first.stdout and "AM01" in first.stdout
    assert "Stored with problems" not in second.stdout
    assert "1 record(s) already stored and unchanged still have problems" in second.stdout
    assert [(p["index"], p["created"]) for p in again["problems"]] == [(0, False)]


def test_load_with_bad_records_exits_1_listing_each_one_and_loads_nothing(db, database_url, tmp_path):
    config = _config(tmp_path, database_url)
    data = records.valid_set()
    data["mandates"][1]["iban"] = "FR76"
    data["requests"][0]["creditor"] = "nobody"
    directory = records.write_directory(tmp_path / "in", data)

    text = runner.invoke(app, ["load", str(directory), "--config", config])
    machine = runner.invoke(app, ["load", str(directory), "--json", "--config", config])
    listed = runner.invoke(app, ["requests", "list", "--json", "--config", config])

    assert (text.exit_code, machine.exit_code) == (1, 1)
    assert "mandates.json[1].iban: must be an IBAN: 2 capital letters, 2 check digits, then up to 30 letters or digits, without spaces" in text.stderr
    assert "^[" not in text.stderr  # the rule in words, never a raw regular expression
    assert "requests.json[0].creditor: 'nobody' is not a registered creditor" in text.stderr
    document = json.loads(machine.stdout)
    assert document["loaded"] is False
    assert [(e["file"], e["index"], e["path"]) for e in document["errors"]] == [
        ("mandates.json", 1, "iban"),
        ("requests.json", 0, "creditor"),
        # The request on the refused mandate finds no mandate: reported too, at its record.
        ("requests.json", 1, "mandate"),
    ]
    assert json.loads(listed.stdout)["requests"] == []


def test_requests_list_masks_mandates_filters_and_pages(db, database_url, tmp_path):
    config = _config(tmp_path, database_url)
    _loaded(tmp_path, config, records.valid_set(accounts=3))

    page = runner.invoke(app, ["requests", "list", "--limit", "2", "--json", "--config", config])
    rest = runner.invoke(
        app, ["requests", "list", "--after", str(json.loads(page.stdout)["next_after"]), "--json", "--config", config]
    )
    filtered = runner.invoke(app, ["requests", "list", "--status", "cancelled", "--creditor", "martin", "--json", "--config", config])
    table = runner.invoke(app, ["requests", "list", "--config", config])

    first = json.loads(page.stdout)["requests"]
    assert [r["id"] for r in first] + [r["id"] for r in json.loads(rest.stdout)["requests"]] == [1, 2, 3]
    assert first[0] | {"end_to_end_id": None} == {
        "id": 1,
        "creditor": "martin",
        "end_to_end_id": None,
        "mandate": "RUM-000001",
        "amount": "12.34",
        "requested_date": "2026-12-01",
        "status": "pending",
        "reason_code": None,
        "reason": None,
        "batch_id": None,
    }
    assert json.loads(filtered.stdout) == {"requests": [], "next_after": None}
    assert table.exit_code == 0 and "RUM-000001" in table.stdout and "12.34" in table.stdout


def test_mandates_list_masks_ibans(db, database_url, tmp_path):
    config = _config(tmp_path, database_url)
    _loaded(tmp_path, config)
    result = runner.invoke(app, ["mandates", "list", "--creditor", "martin", "--json", "--config", config])
    table = runner.invoke(app, ["mandates", "list", "--config", config])
    mandates = json.loads(result.stdout)["mandates"]
    assert [(m["reference"], m["iban"], m["status"]) for m in mandates] == [
        ("RUM-000001", "DE89**************3000", "active"),
        ("RUM-000002", "DE89**************3000", "active"),
    ]
    assert "DE89370400440532013000" not in table.stdout


def test_an_unknown_creditor_or_status_is_refused_with_its_exit_code(db, database_url, tmp_path):
    config = _config(tmp_path, database_url)
    unknown = runner.invoke(app, ["requests", "list", "--creditor", "nobody", "--config", config])
    bad_status = runner.invoke(app, ["mandates", "list", "--status", "lost", "--config", config])
    assert unknown.exit_code == 1 and "creditor 'nobody' is not a registered creditor" in unknown.stderr
    assert bad_status.exit_code == 2  # a usage error, from the option's choices
