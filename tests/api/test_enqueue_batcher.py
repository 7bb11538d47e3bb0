"""The group-commit writer of enqueues, driven directly with a group of calls."""

from __future__ import annotations

import datetime as dt
import json

from fastapi.responses import Response
from sqlalchemy import event, func, select

from sepa_engine.api import writes
from sepa_engine.api.batcher import Call, EnqueueBatcher
from sepa_engine.api.routes.registry import request_result
from sepa_engine.db.models import Creditor, DebitRequest, DebtorAccount, LedgerEntry, Mandate, RequestInvoice
from sepa_engine.db.service_models import ApiIdempotency
from sepa_engine.db.session import Database
from sepa_engine.services.inputs import DebitRequestInput
from tests import accounts_world as world
from tests.api.conftest import Api

ALONE = Response("alone", status_code=299)


def body(n: int, mandate: str = "RUM-PRE-AG-1") -> bytes:
    return json.dumps({"mandate": mandate, "amount": f"{n}.00", "on_account": True}).encode()


def call(n: int, mandate: str = "RUM-PRE-AG-1", key: str | None = None) -> Call:
    path = "/v1/creditors/pressimmo/debit-requests"
    return Call("pressimmo", "creditor:pressimmo", 1, key or f"k-{n}", "POST", path,
                writes.request_hash("POST", path, body(n, mandate)), DebitRequestInput(mandate=mandate, amount=f"{n}.00", on_account=True),
                alone=lambda: ALONE)


def rows(db: Database) -> tuple[int, int]:
    """Debit requests and stored API answers in the ledger."""
    with db.reader() as s:
        return (s.scalar(select(func.count()).select_from(DebitRequest)) or 0,
                s.scalar(select(func.count()).select_from(ApiIdempotency)) or 0)


def test_a_group_is_enqueued_in_one_transaction_with_every_answer_stored(api: Api) -> None:
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [call(n) for n in range(1, 6)]
    batcher._run(group)
    answers = [c.done.result() for c in group]
    assert [a.status_code for a in answers] == [201] * 5
    assert [json.loads(a.body)["amount"] for a in answers] == ["1.00", "2.00", "3.00", "4.00", "5.00"]
    assert rows(api.db) == (5, 5)
    replay = api.client.post("/v1/creditors/pressimmo/debit-requests", content=body(3),
                             headers={**api.auth(), "Idempotency-Key": "k-3", "Content-Type": "application/json"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == json.loads(answers[2].body)


def test_a_group_with_a_bad_call_or_a_repeated_key_leaves_every_call_to_run_alone(api: Api) -> None:
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    for group in ([call(1), call(2, "RUM-NOBODY")], [call(3), call(4, key="k-3")]):
        batcher._run(group)
        assert [c.done.result() for c in group] == [ALONE, ALONE]
    assert rows(api.db) == (0, 0)


def test_a_group_with_a_key_the_services_already_know_writes_nothing_before_every_call_runs_alone(api: Api) -> None:
    # The key came another way (a file, the Python API): the group rolls back whole, so the
    # other call's request is not left committed without its stored answer (it would then
    # answer 200 "created": false when run alone).
    from sepa_engine.services import registry

    with api.db.transaction() as session:
        registry.enqueue_request(session, "pressimmo", DebitRequestInput(mandate="RUM-PRE-AG-1", amount="2.00", on_account=True),
                                 idempotency_key="k-2", clock=api.clock)
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [call(1), call(2)]
    batcher._run(group)
    assert [c.done.result() for c in group] == [ALONE, ALONE]
    assert rows(api.db) == (1, 0)


def test_a_group_whose_key_another_writer_stored_after_the_lookup_rolls_back_and_every_call_runs_alone(
    api: Api, monkeypatch
) -> None:
    # The group sends no savepoint (two round trips a group on PostgreSQL): a key stored by
    # another writer between the lookup and the INSERT fails the group's transaction, which
    # rolls back whole, and every call then settles its race alone.
    from sepa_engine.db.repositories import registry as registry_repo
    from sepa_engine.services import registry

    with api.db.transaction() as session:
        registry.enqueue_request(session, "pressimmo", DebitRequestInput(mandate="RUM-PRE-AG-1", amount="2.00", on_account=True),
                                 idempotency_key="k-2", clock=api.clock)
    monkeypatch.setattr(registry_repo, "requests_by_creditor_keys", lambda *_args: {})  # read before it was stored
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [call(1), call(2)]
    seen = statements_of(api.db, batcher, group)

    assert [c.done.result() for c in group] == [ALONE, ALONE]
    assert rows(api.db) == (1, 0)
    assert not any(s.startswith("SAVEPOINT") for s in seen)


def test_a_group_with_a_key_another_route_stored_rolls_back_and_every_call_runs_alone(api: Api) -> None:
    # No lookup before the group: the answers' INSERT meets the stored (scope, key) and the
    # whole group, its debit requests included, rolls back.
    stored = api.post("/v1/creditors/pressimmo/debtor-accounts", {"reference": "AG-2", "name": "Agence Deux"}, key="k-2")
    assert stored.status_code == 201
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [call(1), call(2)]
    batcher._run(group)
    assert [c.done.result() for c in group] == [ALONE, ALONE]
    assert rows(api.db) == (0, 1)
    conflict = api.client.post("/v1/creditors/pressimmo/debit-requests", content=body(2),
                               headers={**api.auth(), "Idempotency-Key": "k-2", "Content-Type": "application/json"})
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_conflict"


def invoice_call(creditor: str, n: int, mandate: str, number: str | None = None) -> Call:
    path = f"/v1/creditors/{creditor}/debit-requests"
    number = number or f"F-{n}"
    data = DebitRequestInput(mandate=mandate, amount=f"{n}.00", invoice_number=number, invoice_issue_date=dt.date(2026, 11, 2))
    raw = json.dumps({"mandate": mandate, "amount": f"{n}.00", "invoice_number": number, "invoice_issue_date": "2026-11-02"})
    return Call(creditor, f"creditor:{creditor}", 1, f"k-{creditor}-{n}", "POST", path,
                writes.request_hash("POST", path, raw.encode()), data, alone=lambda: ALONE)


def statements_of(db: Database, batcher: EnqueueBatcher, group: list[Call]) -> list[str]:
    seen: list[str] = []

    def remember(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        batcher._run(group)
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    return seen


def test_a_group_over_two_creditors_sends_the_gate_and_the_inserts_once_for_both(api: Api) -> None:
    # Each creditor of a group ran the whole enqueue on its own: sixteen statements each
    # (the account gate's reads, the reserved ids, the INSERTs), so a group spread over
    # four creditors cost twice a one-creditor group per request.
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [invoice_call("pressimmo", n, "RUM-PRE-AG-1") for n in range(11, 15)] + [
        invoice_call("other", n, "RUM-OTH-OT-1") for n in range(1, 5)
    ]
    two = statements_of(api.db, batcher, group)

    assert [c.done.result().status_code for c in group] == [201] * 8
    assert sum(s.replace('"', "").startswith("INSERT INTO debit_requests") for s in two) == 1
    assert sum(s.replace('"', "").startswith("INSERT INTO ledger_entries") for s in two) == 1


def test_a_group_over_four_creditors_sends_as_many_statements_as_one_creditors_group(api: Api) -> None:
    # The lookups of keys unique within a creditor (the creditor by its code, idempotency
    # keys, mandates in force, invoice numbers) were one statement per creditor of a group:
    # four more for each creditor after the first, so the HTTP API on PostgreSQL enqueued a
    # third slower with its load spread over four creditors than over one. Each is one
    # statement for the group, its keys searched as (creditor, key) pairs.
    for code, reference in (("poliris", "PO-1"), ("gim", "GI-1")):
        world.creditor(api.db, code)
        world.account(api.db, code, reference)
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    one = statements_of(api.db, batcher, [invoice_call("pressimmo", n, "RUM-PRE-AG-1") for n in range(1, 9)])
    group = [
        invoice_call(code, n, mandate)
        for code, mandate in (("pressimmo", "RUM-PRE-AG-1"), ("other", "RUM-OTH-OT-1"), ("poliris", "RUM-POL-PO-1"),
                              ("gim", "RUM-GIM-GI-1"))
        for n in range(21, 23)
    ]
    four = statements_of(api.db, batcher, group)

    assert [c.done.result().status_code for c in group] == [201] * 8
    assert len(four) == len(one)


def test_a_groups_gate_reads_no_mandate_or_account_row_twice(api: Api) -> None:
    # The gate looked each mandate's account up again by mandate id, though the enqueue had
    # just read (and share-locked) those mandates; on PostgreSQL it locked the accounts, then
    # read the same rows again; and it read the accounts' mandates on their own: three more
    # round trips a group on PostgreSQL.
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [invoice_call("pressimmo", n, "RUM-PRE-AG-1") for n in range(31, 35)] + [
        invoice_call("other", n, "RUM-OTH-OT-1") for n in range(31, 33)
    ]
    seen = [" ".join(s.replace('"', "").split()) for s in statements_of(api.db, batcher, group)]

    assert [c.done.result().status_code for c in group] == [201] * 6
    assert not any("FROM mandates WHERE mandates.id" in s for s in seen)
    assert not any("FROM mandates WHERE mandates.debtor_account_id" in s for s in seen)
    accounts_read = [s for s in seen if "FROM debtor_accounts" in s and "WHERE debtor_accounts.id" in s]
    assert len(accounts_read) == 1 and "JOIN mandates" in accounts_read[0]
    assert ("FOR UPDATE" in accounts_read[0]) == (not api.db.is_sqlite)  # SQLite serialises writers
    with api.db.reader() as s:
        accounts = dict(s.execute(
            select(DebitRequest.creditor_id, DebtorAccount.reference)
            .join(Mandate, Mandate.id == DebitRequest.mandate_id)
            .join(DebtorAccount, DebtorAccount.id == Mandate.debtor_account_id)
            .distinct()
        ).all())
        creditors = dict(s.execute(select(Creditor.id, Creditor.code)).all())
    assert {creditors[c]: reference for c, reference in accounts.items()} == {"pressimmo": "AG-1", "other": "OT-1"}


def test_two_creditors_in_one_group_each_book_their_own_invoice_of_the_same_number(api: Api) -> None:
    # An invoice number is unique per creditor only: the group books both, each paid by its
    # own creditor's debit, on its own account.
    batcher = EnqueueBatcher(api.db, api.clock, request_result)
    group = [invoice_call("pressimmo", 7, "RUM-PRE-AG-1", "F-2026-11"), invoice_call("other", 9, "RUM-OTH-OT-1", "F-2026-11")]
    batcher._run(group)
    answers = [json.loads(c.done.result().body) for c in group]
    with api.db.reader() as s:
        invoices = s.execute(
            select(Creditor.code, LedgerEntry.amount_cents, DebtorAccount.reference)
            .join(Creditor, Creditor.id == LedgerEntry.creditor_id)
            .join(DebtorAccount, DebtorAccount.id == LedgerEntry.debtor_account_id)
            .where(LedgerEntry.document_number == "F-2026-11")
            .order_by(Creditor.code)
        ).all()
        paid = s.execute(
            select(DebitRequest.end_to_end_id, LedgerEntry.document_number, LedgerEntry.amount_cents)
            .join(RequestInvoice, RequestInvoice.debit_request_id == DebitRequest.id)
            .join(LedgerEntry, LedgerEntry.id == RequestInvoice.entry_id)
            .order_by(DebitRequest.id)
        ).all()

    assert [(a["creditor"], a["amount"]) for a in answers] == [("pressimmo", "7.00"), ("other", "9.00")]
    assert [tuple(row) for row in invoices] == [("other", 900, "OT-1"), ("pressimmo", 700, "AG-1")]
    assert [tuple(row) for row in paid] == [
        (answers[0]["end_to_end_id"], "F-2026-11", 700), (answers[1]["end_to_end_id"], "F-2026-11", 900)
    ]
