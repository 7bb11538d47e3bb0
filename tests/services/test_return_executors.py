"""The two executors of ``return_decisions.decide`` (the bulk one, on a chunk's rows, and the
record-by-record one, through the ORM) leave the same ledger after the same bank files."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from sepa_engine.banksim import simulate
from sepa_engine.db.models import Batch, DebitRequest, Dispute, LedgerEntry, Mandate
from sepa_engine.db.returns_models import AppliedReturn, ReturnException
from sepa_engine.services import reconciliation
from tests import ledger
from tests.services.test_reconciliation import LATER, collect, requests
from tests.services.test_reconciliation_chunks import _message_id, _rejects, _same_mandate


class _Rollback(Exception):
    """Leaves the transaction: each executor starts from the same ledger."""


def _ledger_after(db, paths, *, record_by_record: bool, monkeypatch) -> dict[str, object]:
    calls = {"apply": 0, "_apply_row": 0}
    with monkeypatch.context() as patch:
        for executor in calls:
            patch.setattr(reconciliation._Run, executor, _counted(getattr(reconciliation._Run, executor), calls, executor))
        if record_by_record:
            # Every record takes the path of a record without an end-to-end id: matched,
            # then applied one by one through the ORM.
            patch.setattr(reconciliation._Run, "_by_end_to_end_id", lambda self, record: False)
        try:
            with db.transaction() as s:
                for path in paths:
                    reconciliation.reconcile_file(s, path, clock=LATER)
                s.flush()
                seen = _snapshot(s)
                raise _Rollback
        except _Rollback:
            pass
    # Each run went through the executor it is about, and only through it.
    used, unused = ("apply", "_apply_row") if record_by_record else ("_apply_row", "apply")
    assert calls[used] > 0 and calls[unused] == 0, calls
    return seen


def _counted(method, calls, name):
    def counting(self, *args):
        calls[name] += 1
        return method(self, *args)

    return counting


def _snapshot(s) -> dict[str, object]:
    """The ledger, with the ids a backend's sequences hand out (which a rollback does not
    give back on PostgreSQL) replaced by what they stand for."""
    requests = list(s.scalars(select(DebitRequest).order_by(DebitRequest.id)))
    name: dict[int, str] = {}
    for r in requests:
        name[r.id] = f"retry {r.attempt} of {name[r.retry_of_id]}" if r.retry_of_id else r.end_to_end_id

    def named(text: str | None) -> str | None:
        return text and re.sub(r"(retry|request) (\d+)", lambda m: f"{m[1]} <{name[int(m[2])]}>", text)

    return {
        "requests": sorted(
            (name[r.id], r.status, r.reason_code, r.reason, r.attempt, r.requested_date, r.final, r.mandate_id,
             r.amount_cents, r.remittance)
            for r in requests
        ),
        "mandates": sorted(
            (m.id, m.status, m.status_reason, m.first_collected_on, m.final_collected) for m in s.scalars(select(Mandate))
        ),
        "entries": sorted(
            (e.kind, e.debtor_account_id, e.document_number, e.issue_date, e.amount_cents, e.label, e.idempotency_key,
             name.get(e.debit_request_id) if e.debit_request_id else None)
            for e in s.scalars(select(LedgerEntry))
        ),
        "applied": sorted(
            (a.natural_key, a.kind, a.reason_code, a.amount_cents, a.fees_cents, a.booking_date, named(a.effects))
            for a in s.scalars(select(AppliedReturn))
        ),
        "exceptions": sorted((x.reason, x.end_to_end_id) for x in s.scalars(select(ReturnException))),
        "disputes": sorted(d.reason for d in s.scalars(select(Dispute))),
        "batches": sorted((b.message_id, b.status) for b in s.scalars(select(Batch))),
    }


def test_simulated_bank_answers_leave_the_same_ledger_through_either_executor(db, settings, tmp_path, monkeypatch):
    out = collect(db, settings, requests=40)
    sim = simulate(out, tmp_path / "inbox", 0.3, 0.4, seed=7)
    paths = [sim.pain002_path, sim.camt054_path]

    bulk = _ledger_after(db, paths, record_by_record=False, monkeypatch=monkeypatch)
    one_by_one = _ledger_after(db, paths, record_by_record=True, monkeypatch=monkeypatch)

    assert bulk["applied"], "the files changed nothing: the comparison would prove nothing"
    assert {a[2] for a in bulk["applied"]} >= {"AM04", "AC04"}
    assert any("retry" in (a[6] or "") for a in bulk["applied"])
    assert bulk == one_by_one


@pytest.mark.parametrize("codes", [
    ("AM04", "AC04", "MS03", "MD07"),  # a retry, then a block that cancels it
    ("MS02", "MS02", "AM04", "AM04"),  # first collections reset only when none is left at the bank
    ("AC06", "AM04", "MD01", "RR04"),
])
def test_rejects_of_debits_sharing_mandates_leave_the_same_ledger_through_either_executor(
    db, settings, tmp_path, monkeypatch, codes
):
    collect(db, settings, requests=6)
    debits = sorted(requests(db).values(), key=lambda r: r.id)
    shared = _same_mandate(db, debits[:3])
    creditor_id = debits[0].creditor_id
    pending = ledger.request(db, creditor_id, shared, 777)  # waits for the next run: a block cancels it
    with db.transaction() as s:
        for debit in debits[:3]:
            s.get(DebitRequest, debit.id).sequence_type = "FRST"
    path = _rejects(tmp_path / "rejects.xml", _message_id(db), list(zip(debits, codes, strict=False)))

    bulk = _ledger_after(db, [path], record_by_record=False, monkeypatch=monkeypatch)
    one_by_one = _ledger_after(db, [path], record_by_record=True, monkeypatch=monkeypatch)

    assert len(bulk["applied"]) == len(codes)
    assert pending
    assert bulk == one_by_one


def test_a_reject_of_a_debit_whose_invoice_went_under_dispute_leaves_the_same_ledger_through_either_executor(
    db, tmp_path, database_url, monkeypatch
):
    # Issue 12: neither executor retries money under dispute; both say so in the applied return.
    from sepa_engine.services import disputes
    from sepa_engine.services.account_inputs import DisputeInput
    from tests import accounts_world as world
    from tests.services.test_retry_gate import _paid_and_at_the_bank

    debit, message_id = _paid_and_at_the_bank(db, tmp_path, database_url)
    with db.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("not ordered", "F1"), actor="portal",
                              idempotency_key="d-1", clock=world.clock())
    path = _rejects(tmp_path / "reject.xml", message_id, [(debit, "AM04")])

    bulk = _ledger_after(db, [path], record_by_record=False, monkeypatch=monkeypatch)
    one_by_one = _ledger_after(db, [path], record_by_record=True, monkeypatch=monkeypatch)

    (applied,) = bulk["applied"]
    assert "retry not scheduled" in applied[6] and "[MS02]" in applied[6]
    assert bulk == one_by_one
