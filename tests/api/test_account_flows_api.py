"""The account and collection operations over HTTP: registry, invoices and credit notes,
payments on demand, statements, details, disputes, collection mode and pre-notifications,
batches and return exceptions. The rules are the services' (tested there); these tests
prove the routes reach them and render their answers."""

from __future__ import annotations

import datetime as dt
import json

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.returns_models import ReturnException, ReturnFile
from sepa_engine.ids import SequentialIds
from sepa_engine.services import schedule
from sepa_engine.services.collection import run_collection
from tests import accounts_world as world
from tests.api.conftest import Api

BASE = "/v1/creditors/pressimmo"
IBAN = "DE89370400440532013000"


def test_register_an_account_and_its_mandate_supersede_it_then_revoke_it(api: Api) -> None:
    account = api.post(f"{BASE}/debtor-accounts", {"reference": "AG-2", "name": "Agence Deux"}, key="acc-2")
    assert account.status_code == 201 and account.json()["reference"] == "AG-2"
    first = api.post(f"{BASE}/mandates", {"reference": "RUM-2", "debtor_account": "AG-2", "signed_on": "2025-03-01",
                                          "iban": IBAN}, key="m-2")
    assert first.status_code == 201 and first.json()["status"] == "active"
    request = api.post(f"{BASE}/debit-requests", {"mandate": "RUM-2", "amount": "10.00", "on_account": True}, key="r-2").json()
    second = api.post(f"{BASE}/mandates", {"reference": "RUM-2B", "debtor_account": "AG-2", "signed_on": "2025-06-01",
                                           "iban": world.NEW_IBAN, "supersedes": "RUM-2"}, key="m-2b")
    assert second.status_code == 201
    assert (second.json()["supersedes_id"], second.json()["amendment_pending"]) == (first.json()["id"], True)
    listed = api.get(f"{BASE}/mandates", params={"status": "superseded"}).json()["items"]
    assert [m["reference"] for m in listed] == ["RUM-2"]
    assert "*" in listed[0]["iban"]
    revoked = api.post(f"{BASE}/mandate-revocations", {"reference": "RUM-2B", "reason": "tenant left"}, key="rev-2")
    assert revoked.status_code == 200 and revoked.json()["cancelled_requests"] == 1
    after = api.get(f"{BASE}/debit-requests/{request['id']}").json()
    assert (after["status"], after["reason"]) == ("cancelled", "mandate revoked")


def test_invoices_a_credit_note_and_a_payment_for_selected_invoices_show_in_the_statement(api: Api) -> None:
    for number, amount in (("F-1", "100.00"), ("F-2", "40.00")):
        response = api.post(f"{BASE}/debtor-accounts/AG-1/entries",
                            {"kind": "invoice", "number": number, "issue_date": "2026-10-01", "amount": amount},
                            key=f"inv-{number}")
        assert response.status_code == 201, response.text
    note = api.post(f"{BASE}/debtor-accounts/AG-1/entries",
                    {"kind": "credit_note", "number": "A-1", "issue_date": "2026-10-05", "amount": "10.00",
                     "applies_to": "F-2"}, key="cn-1")
    assert note.status_code == 201 and note.json()["kind"] == "credit_note"
    account = api.get(f"{BASE}/debtor-accounts/AG-1").json()
    assert (account["position"]["balance_due"], account["can_pay_now"]) == ("130.00", True)
    paid = api.post(f"{BASE}/debtor-accounts/AG-1/payments", {"invoices": ["F-1"]}, key="pay-1")
    assert paid.status_code == 201, paid.text
    assert (paid.json()["amount"], paid.json()["status"]) == ("100.00", "pending")
    unpaid = api.get(f"{BASE}/debtor-accounts/AG-1/statement").json()
    assert [line["number"] for line in unpaid["lines"]] == ["F-1", "F-2"]
    everything = api.get(f"{BASE}/debtor-accounts/AG-1/statement",
                         params={"all": "true", "from": "2026-10-02", "limit": 1}).json()
    assert [line["number"] for line in everything["lines"]] == ["A-1"]
    assert everything["next_cursor"] is None
    refused = api.post(f"{BASE}/debtor-accounts/AG-1/payments", {"amount": "500.00"}, key="pay-2")
    assert refused.status_code == 409 and refused.json()["code"] == "amount_exceeds_balance"
    assert refused.json()["field"] == "amount"


def test_details_change_and_their_history(api: Api) -> None:
    changed = api.put(f"{BASE}/debtor-accounts/AG-1/details", {"email": "compta@agence.example", "phone": "+33 1 23"},
                      key="det-1")
    assert changed.status_code == 200, changed.text
    history = api.get(f"{BASE}/debtor-accounts/AG-1/history").json()["items"]
    assert {(line["field"], line["new"]) for line in history} >= {("email", "compta@agence.example")}
    assert all(line["actor"] == "api:billing" for line in history if line["field"] == "email")


def test_a_dispute_is_opened_listed_and_accepted_with_its_credit_note_in_its_history(api: Api) -> None:
    api.post(f"{BASE}/debtor-accounts/AG-1/entries",
             {"kind": "invoice", "number": "F-9", "issue_date": "2026-10-01", "amount": "90.00"}, key="inv-9")
    opened = api.post(f"{BASE}/debtor-accounts/AG-1/disputes", {"reason": "ad not published", "invoices": ["F-9"]},
                      key="d-1")
    assert opened.status_code == 201, opened.text
    dispute_id = opened.json()["id"]
    assert [d["id"] for d in api.get(f"{BASE}/disputes", params={"status": "open"}).json()["items"]] == [dispute_id]
    accepted = api.post(f"{BASE}/disputes/{dispute_id}/transitions", {"status": "accepted", "note": "agreed"}, key="d-1-a")
    assert accepted.status_code == 200 and accepted.json()["credit_note"] == f"D-{dispute_id}"
    shown = api.get(f"{BASE}/disputes/{dispute_id}").json()
    assert [event["status"] for event in shown["history"]][-1] == "accepted"
    again = api.post(f"{BASE}/disputes/{dispute_id}/transitions", {"status": "rejected"}, key="d-1-r")
    assert again.status_code == 409 and again.json()["code"] == "dispute_error"


def test_automatic_mode_then_the_schedule_gives_pre_notifications(api: Api) -> None:
    api.post(f"{BASE}/debtor-accounts/AG-1/entries",
             {"kind": "invoice", "number": "F-1", "issue_date": "2026-10-01", "amount": "150.00"}, key="inv-1")
    mandate = {"reference": "RUM-E-AG-1", "signed_at": "2026-11-20T09:00:00+00:00", "iban": world.NEW_IBAN,
               "signer_name": "Jeanne Martin", "evidence_id": "ev-1"}
    mode = api.put(f"{BASE}/debtor-accounts/AG-1/collection-mode",
                   {"mode": "automatic", "frequency": "monthly", "day": 7, "mandate": mandate}, key="mode-1")
    assert mode.status_code == 200, mode.text
    with api.db.transaction() as s:
        schedule.schedule_automatic(s, dt.date(2026, 11, 23), world.clock(), creditor_code="pressimmo")
    notices = api.get(f"{BASE}/prenotifications", params={"from": "2026-12-01"}).json()["items"]
    assert [(n["account"], n["amount"], n["collection_date"]) for n in notices] == [("AG-1", "150.00", "2026-12-07")]
    bank = api.post(f"{BASE}/debtor-accounts/AG-1/bank-details",
                    {**mandate, "reference": "RUM-E2-AG-1", "evidence_id": "ev-2", "iban": IBAN}, key="bank-1")
    assert bank.status_code == 200, bank.text


def test_creditor_settings_change(api: Api) -> None:
    response = api.put(f"{BASE}/settings", {"prenotification_days": 10}, key="set-1")
    assert response.status_code == 200, response.text
    assert api.get(BASE).json()["prenotification_days"] == 10


def test_batches_and_their_files_are_read_only_views_of_the_runs(api: Api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    api.post(f"{BASE}/debit-requests", {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "requested_date": "2026-11-25", "on_account": True},
             key="r-1")
    settings = Settings(database_url=api.db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    report = run_collection(api.db, settings, FixedClock(world.NOW), SequentialIds("API"), business_date=dt.date(2026, 11, 24))
    assert len(report.files) == 1
    batches = api.get(f"{BASE}/batches").json()["items"]
    assert [(b["transactions"], b["control_sum"], b["status"]) for b in batches] == [(1, "76.00", "published")]
    batch = api.get(f"{BASE}/batches/{batches[0]['id']}").json()
    assert batch["blocks"][0]["transactions"] == 1
    file = api.get(f"{BASE}/batches/{batches[0]['id']}/file")
    assert file.status_code == 200 and file.headers["content-type"].startswith("application/xml")
    assert file.content == report.files[0].path.read_bytes()


def test_return_exceptions_of_the_creditor_are_listed_and_resolved(api: Api) -> None:
    request = api.post(f"{BASE}/debit-requests", {"mandate": "RUM-PRE-AG-1", "amount": "76.00", "on_account": True}, key="r-1").json()
    with api.db.transaction() as s:
        file = ReturnFile(sha256="0" * 64, path="/dev/null", status="applied", imported_at=world.NOW)
        s.add(file)
        s.flush()
        for e2e in (request["end_to_end_id"], "SOMEONE-ELSE"):
            s.add(ReturnException(return_file_id=file.id, record=json.dumps({"kind": "returned"}), end_to_end_id=e2e,
                                  reason="amount differs", created_at=world.NOW))
    listed = api.get(f"{BASE}/return-exceptions").json()["items"]
    assert [e["end_to_end_id"] for e in listed] == [request["end_to_end_id"]]
    resolved = api.post(f"{BASE}/return-exceptions/{listed[0]['id']}/resolution", {"resolution": "ignored", "note": "ok"},
                        key="x-1")
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["resolution"]) == ("resolved", "ignored")
    assert api.get(f"{BASE}/return-exceptions").json()["items"] == []
    assert len(api.get(f"{BASE}/return-exceptions", params={"status": "all"}).json()["items"]) == 1
