"""``sepa-engine accounts ...``: every portal button from the command line, JSON in and out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from freezegun import freeze_time
from typer.testing import CliRunner

from sepa_engine.cli.main import app
from tests import accounts_world as world

runner = CliRunner()


@pytest.fixture(autouse=True)
def _frozen():  # type: ignore[no-untyped-def]
    # The commands use the system clock: Friday 20 November 2026, 11:00 in Paris.
    with freeze_time(world.NOW):
        yield


@pytest.fixture
def config(db, database_url: str, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.creditor(db, "poliris")
    world.account(db, "pressimmo", "AG-1", customer="AGENCE-77")
    world.account(db, "poliris", "PO-1", customer="AGENCE-77")
    world.entry(db, "F1", "100.00")
    world.entry(db, "F2", "50.00")
    world.entry(db, "P1", "20.00", creditor_code="poliris", reference="PO-1")
    path = tmp_path / "sepa-engine.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[paths]\nvar_dir = "{tmp_path / "var"}"\n')
    return str(path)


def cli(config: str, *args: str, expect: int = 0, input: str | None = None):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, [*args, "--config", config], input=input)
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


def cli_json(config: str, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli(config, *args, "--json").stdout)


def test_show_gives_the_account_its_mode_mandate_and_collectable_balance(config):
    shown = cli_json(config, "accounts", "show", "AG-1", "--creditor", "pressimmo")
    assert shown["collection_mode"] == "on_demand" and shown["can_pay_now"] is True
    assert shown["position"] == {"creditor": "pressimmo", "account": "AG-1", "balance_due": "150.00",
                                 "under_dispute": "0.00", "requested": "0.00", "collectable": "150.00"}
    assert shown["mandate"]["iban"] == "DE89**************3000"
    table = cli(config, "accounts", "show", "AG-1", "--creditor", "pressimmo").stdout
    assert "collectable" in table and "150.00" in table


def test_another_creditors_account_is_not_found_from_the_command_line(config):
    result = cli(config, "accounts", "show", "AG-1", "--creditor", "poliris", expect=1)
    assert "error: account 'AG-1' is not an account of creditor poliris" in result.stderr


def test_invoices_credit_notes_and_fees_are_added_by_options_or_file_once_per_key(config, tmp_path):
    args = ("accounts", "invoices", "add", "AG-1", "--creditor", "pressimmo", "--number", "F3", "--issue-date",
            "2026-11-02", "--amount", "25.00", "--key", "inv-F3")
    assert cli_json(config, *args)["created"] is True
    assert cli_json(config, *args)["created"] is False
    note = tmp_path / "note.json"
    note.write_text(json.dumps({"kind": "credit_note", "number": "AV1", "issue_date": "2026-11-03", "amount": "5.00",
                                "applies_to": "F3"}))
    assert cli_json(config, "accounts", "credit-notes", "add", "AG-1", "--creditor", "pressimmo", "--file", str(note),
                    "--key", "av-1")["kind"] == "credit_note"
    wrong = cli(config, "accounts", "fees", "add", "AG-1", "--creditor", "pressimmo", "--file", str(note), "--key", "x",
                expect=1)
    assert "must be fee for this command" in wrong.stderr
    assert cli_json(config, "accounts", "fees", "add", "AG-1", "--creditor", "pressimmo", "--number", "FEE1",
                    "--issue-date", "2026-11-04", "--amount", "7.50", "--key", "fee-1")["amount"] == "7.50"
    shown = cli_json(config, "accounts", "show", "AG-1", "--creditor", "pressimmo")
    assert shown["position"]["balance_due"] == "177.50"


def test_pay_now_requests_a_debit_and_refusals_exit_1_with_field_and_rule(config):
    paid = cli_json(config, "accounts", "pay-now", "AG-1", "--creditor", "pressimmo", "--amount", "100.00", "--key", "c1")
    assert (paid["amount"], paid["requested_date"], paid["status"]) == ("100.00", "2026-11-23", "pending")
    for amount, message in (
        ("0", "error: amount '0' is zero: there is nothing to pay"),
        ("-1", "is negative"),
        ("1.001", "has more than two decimals"),
        ("50.01", "error: amount '50.01' exceeds the collectable balance of 50.00"),
    ):
        result = cli(config, "accounts", "pay-now", "AG-1", "--creditor", "pressimmo", "--amount", amount,
                     "--key", f"k{amount}", expect=1)
        assert message in result.stderr
    replay = cli_json(config, "accounts", "pay-now", "AG-1", "--creditor", "pressimmo", "--amount", "100.00", "--key", "c1")
    assert replay["created"] is False and replay["request_id"] == paid["request_id"]


def test_pay_now_with_selected_invoices_or_a_json_document(config, tmp_path):
    paid = cli_json(config, "accounts", "pay-now", "AG-1", "--creditor", "pressimmo", "--invoice", "F2", "--key", "c1")
    assert paid["remittance"] == "Invoice F2" and paid["invoices"] == [{"number": "F2", "amount": "50.00"}]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"amount": "12,50"}))
    result = cli(config, "accounts", "pay-now", "AG-1", "--creditor", "pressimmo", "--file", str(bad), "--key", "c2",
                 expect=1)
    assert "pay-now.schema.json: amount" in result.stderr
    from_stdin = json.loads(cli(config, "accounts", "pay-now", "AG-1", "--creditor", "pressimmo", "--file", "-",
                                "--key", "c3", "--json", input=json.dumps({"invoices": ["F1"]})).stdout)
    assert from_stdin["amount"] == "100.00"


def test_pay_group_makes_one_debit_per_creditor(config):
    paid = cli_json(config, "accounts", "pay-group", "--customer", "AGENCE-77", "--select", "pressimmo:F1,F2",
                    "--select", "poliris:P1", "--key", "basket-1")
    assert paid["amount"] == "170.00"
    assert [(p["creditor"], p["account"], p["amount"]) for p in paid["payments"]] == [
        ("pressimmo", "AG-1", "150.00"), ("poliris", "PO-1", "20.00")
    ]


def test_statements_print_as_a_table_json_or_csv(config):
    cli(config, "accounts", "invoices", "add", "AG-1", "--creditor", "pressimmo", "--number", "F-OLD", "--issue-date",
        "2025-06-01", "--amount", "10.00", "--key", "old")
    unpaid = cli_json(config, "accounts", "statement", "AG-1", "--creditor", "pressimmo")
    assert [line["number"] for line in unpaid["lines"]] == ["F-OLD", "F1", "F2"]
    full = cli(config, "accounts", "statement", "AG-1", "--creditor", "pressimmo", "--all", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(full)))
    assert [(r["number"], r["balance"]) for r in rows] == [("F1", "110.00"), ("F2", "160.00")]
    one = cli_json(config, "accounts", "statement", "AG-1", "--creditor", "pressimmo", "--all", "--document", "F2")
    assert [(line["number"], line["balance"]) for line in one["lines"]] == [("F2", "160.00")]
    table = cli(config, "accounts", "statement", "AG-1", "--creditor", "pressimmo").stdout
    assert "Unpaid invoices" in table and "Balance due: 160.00" in table
    too_old = cli(config, "accounts", "statement", "AG-1", "--creditor", "pressimmo", "--all", "--from", "2025-01-01",
                  expect=1)
    assert "a statement covers the last 12 months" in too_old.stderr


def test_disputes_are_opened_followed_and_listed(config):
    opened = cli_json(config, "accounts", "disputes", "open", "AG-1", "--creditor", "pressimmo", "--invoice", "F1",
                      "--invoice", "F2=10.00", "--reason", "not delivered", "--actor", "portal:jeanne", "--key", "d1")
    assert opened["status"] == "open" and opened["amount"] == "110.00"
    refused = cli(config, "accounts", "pay-now", "AG-1", "--creditor", "pressimmo", "--invoice", "F1", "--key", "c1",
                  expect=1)
    assert "is under dispute" in refused.stderr
    done = cli_json(config, "accounts", "disputes", "transition", str(opened["id"]), "--creditor", "pressimmo", "--to",
                    "accepted", "--note", "agreed", "--actor", "backoffice:paul", "--key", "t1")
    assert done["credit_note"] == f"D-{opened['id']}" and [h["status"] for h in done["history"]] == ["open", "accepted"]
    bad = cli(config, "accounts", "disputes", "transition", str(opened["id"]), "--creditor", "pressimmo", "--to", "open",
              "--actor", "x", "--key", "t2", expect=1)
    assert "status 'open' must be one of under_review, accepted, rejected" in bad.stderr
    late = cli(config, "accounts", "disputes", "transition", str(opened["id"]), "--creditor", "pressimmo", "--to",
               "rejected", "--actor", "x", "--key", "t3", expect=1)
    assert "cannot follow accepted" in late.stderr
    listed = cli_json(config, "accounts", "disputes", "list", "--creditor", "pressimmo", "--status", "accepted")
    assert [d["id"] for d in listed["disputes"]] == [opened["id"]]
    assert cli_json(config, "accounts", "disputes", "list", "--creditor", "poliris")["disputes"] == []
    shown = cli_json(config, "accounts", "disputes", "show", str(opened["id"]), "--creditor", "pressimmo")
    assert shown["invoices"] == [{"number": "F1", "amount": "100.00"}, {"number": "F2", "amount": "10.00"}]


def test_details_are_changed_with_history_and_shown(config, tmp_path):
    changed = cli_json(config, "accounts", "details", "AG-1", "--creditor", "pressimmo", "--set", "email=compta@agence.fr",
                       "--set", "contact_name=Jeanne Martin", "--actor", "portal:jeanne", "--key", "d1")
    assert {c["field"] for c in changed["changes"]} == {"email", "contact_name"}
    document = tmp_path / "details.json"
    document.write_text(json.dumps({"email": "factures@agence.fr", "phone": "+33 1 23 45 67 89"}))
    cli(config, "accounts", "details", "AG-1", "--creditor", "pressimmo", "--file", str(document), "--actor", "portal",
        "--key", "d2")
    shown = cli_json(config, "accounts", "details", "AG-1", "--creditor", "pressimmo")
    assert shown["details"]["email"] == "factures@agence.fr"
    assert [(h["field"], h["old"], h["new"]) for h in shown["history"] if h["field"] == "email"] == [
        ("email", None, "compta@agence.fr"), ("email", "compta@agence.fr", "factures@agence.fr")
    ]
    missing_actor = cli(config, "accounts", "details", "AG-1", "--creditor", "pressimmo", "--set", "fax=0102030405",
                        expect=1)
    assert "--actor" in missing_actor.stderr


def test_automatic_mode_schedule_and_prenotification_export(config, tmp_path):
    switched = cli_json(
        config, "accounts", "set-mode", "AG-1", "--creditor", "pressimmo", "--mode", "automatic", "--frequency",
        "monthly", "--day", "7", "--mandate-reference", "RUM-E-1", "--signed-at", "2026-11-20T10:15:00+01:00",
        "--iban", world.NEW_IBAN, "--signer", "Jeanne Martin", "--evidence", "ev-1", "--actor", "portal", "--key", "m1",
    )
    assert ("collection_mode", "on_demand", "automatic") in [(c["field"], c["old"], c["new"]) for c in switched["changes"]]
    refused = cli(config, "accounts", "pay-now", "AG-1", "--creditor", "pressimmo", "--amount", "1.00", "--key", "c1",
                  expect=1)
    assert "allows no payment on demand" in refused.stderr
    no_mandate = cli(config, "accounts", "set-mode", "PO-1", "--creditor", "poliris", "--mode", "automatic",
                     "--frequency", "monthly", "--day", "7", "--actor", "portal", "--key", "m2", expect=1)
    assert "needs a new electronically signed mandate" in no_mandate.stderr

    report = cli_json(config, "accounts", "schedule", "run", "--date", "2026-11-23")
    assert [(i["account"], i["amount"], i["collection_date"]) for i in report["items"]] == [("AG-1", "150.00", "2026-12-07")]
    assert cli_json(config, "accounts", "schedule", "run", "--date", "2026-11-23")["items"] == []

    exported = cli(config, "accounts", "prenotifications", "export", "--creditor", "pressimmo", "--csv").stdout
    (row,) = csv.DictReader(io.StringIO(exported))
    assert (row["mandate_reference"], row["amount"], row["collection_date"]) == ("RUM-E-1", "150.00", "2026-12-07")
    as_json = cli_json(config, "accounts", "prenotifications", "export", "--creditor", "pressimmo")
    assert as_json["prenotifications"][0]["creditor_identifier"] == "FR72ZZZ123456"
    target = tmp_path / "notices.csv"
    cli(config, "accounts", "prenotifications", "export", "--creditor", "pressimmo", "--output", str(target))
    assert target.read_text().startswith("creditor,creditor_name,")


def test_bank_details_change_from_a_json_document(config, tmp_path):
    document = tmp_path / "mandate.json"
    document.write_text(json.dumps({"reference": "RUM-PRE-AG-1", "signed_at": "2026-11-20T09:00:00Z",
                                    "iban": "NL91ABNA0417164300", "signer_name": "Jeanne Martin", "evidence_id": "ev-7"}))
    changed = cli_json(config, "accounts", "change-bank", "AG-1", "--creditor", "pressimmo", "--file", str(document),
                       "--actor", "portal", "--key", "bank-1")
    assert changed["kind"] == "bank_details"
    shown = cli_json(config, "accounts", "show", "AG-1", "--creditor", "pressimmo")
    assert shown["mandate"]["iban"] == "NL91**********4300" and shown["mandate"]["evidence_id"] == "ev-7"


def test_book_payments_and_settings_commands(config):
    booked = cli_json(config, "accounts", "book-payments")
    assert booked == {"booked": 0, "amount": "0.00"}
    settings = cli_json(config, "accounts", "settings", "--creditor", "pressimmo", "--prenotification-days", "10",
                        "--actor", "ops", "--key", "s1")
    assert settings["changes"] == [{"field": "prenotification_days", "old": "14", "new": "10"}]
