"""Issue 12: a retry passes the account gate like every other debit, on both executors of a
bank file (the bulk one and the record-by-record one): money under dispute is never
collected again, money the failure made due again is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import event, select

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import Batch, DebitRequest
from sepa_engine.db.returns_models import AppliedReturn
from sepa_engine.domain.debit_gate import Admitted, Pays
from sepa_engine.ids import SequentialIds
from sepa_engine.services import debit_gate, disputes, on_demand, reconciliation, registry
from sepa_engine.services.account_inputs import DisputeInput, PayNowInput
from sepa_engine.services.collection import run_collection
from sepa_engine.services.inputs import DebitRequestInput
from tests import accounts_world as world
from tests.services.test_reconciliation import LATER
from tests.services.test_reconciliation_chunks import _rejects

RUN = FixedClock(dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC))


def _paid_and_at_the_bank(db, tmp_path: Path, database_url: str) -> tuple[DebitRequest, str]:  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00")
    with db.transaction() as s:
        on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(invoices=("F1",)), idempotency_key="click-1",  # type: ignore[arg-type]
                          clock=world.clock())
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    assert run_collection(db, settings, RUN, SequentialIds()).assigned == 1
    with db.reader() as s:
        return s.scalars(select(DebitRequest)).one(), s.scalars(select(Batch.message_id)).one()


def _reconcile(db, path: Path, *, record_by_record: bool, monkeypatch) -> reconciliation.ReconcileReport:  # type: ignore[no-untyped-def]
    with monkeypatch.context() as patch:
        if record_by_record:
            patch.setattr(reconciliation._Run, "_by_end_to_end_id", lambda self, record: False)
        with db.transaction() as s:
            return reconciliation.reconcile_file(s, path, clock=LATER)


@pytest.mark.parametrize("record_by_record", [False, True], ids=["bulk", "record_by_record"])
def test_a_debit_rejected_while_its_invoice_is_disputed_is_not_retried(
    db, tmp_path, database_url, monkeypatch, record_by_record
):
    debit, message_id = _paid_and_at_the_bank(db, tmp_path, database_url)
    with db.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("not ordered", "F1"), actor="portal",
                              idempotency_key="d-1", clock=world.clock())
    path = _rejects(tmp_path / "reject.xml", message_id, [(debit, "AM04")])

    report = _reconcile(db, path, record_by_record=record_by_record, monkeypatch=monkeypatch)

    assert (report.applied, report.retries) == (1, 0)
    with db.reader() as s:
        assert s.scalars(select(DebitRequest).where(DebitRequest.retry_of_id == debit.id)).all() == []
        (effects,) = s.scalars(select(AppliedReturn.effects)).all()
    assert "retry not scheduled" in effects and "MS02" in effects
    assert world.position(db).collectable_cents == 0


@pytest.mark.parametrize("record_by_record", [False, True], ids=["bulk", "record_by_record"])
def test_a_rejected_debit_is_retried_for_the_money_it_made_due_again(
    db, tmp_path, database_url, monkeypatch, record_by_record
):
    debit, message_id = _paid_and_at_the_bank(db, tmp_path, database_url)
    path = _rejects(tmp_path / "reject.xml", message_id, [(debit, "AM04")])

    report = _reconcile(db, path, record_by_record=record_by_record, monkeypatch=monkeypatch)

    assert (report.applied, report.retries) == (1, 1)
    with db.reader() as s:
        (retry,) = s.scalars(select(DebitRequest).where(DebitRequest.retry_of_id == debit.id)).all()
    assert (retry.status, retry.amount_cents, retry.pays) == ("pending", 10_000, "invoices")
    assert world.position(db).collectable_cents == 0


def _original(db, reference: str, amount: str, **pays: object) -> DebitRequest:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        result = registry.enqueue_request(
            s, "pressimmo", DebitRequestInput(mandate=f"RUM-PRE-{reference}", amount=amount, **pays),  # type: ignore[arg-type]
            idempotency_key=f"debit-{reference}", clock=world.clock(),
        )
    with db.reader() as s:
        return s.get_one(DebitRequest, result.id)


def _retries_reading_tables(db, originals: list[DebitRequest]) -> tuple[list[object], list[str]]:  # type: ignore[no-untyped-def]
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.transaction() as s:
            decisions = debit_gate.admit_retries(s, originals[0].creditor_id, [
                debit_gate.RetryAsked(o.id, o.mandate_id, o.amount_cents) for o in originals
            ])
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    return list(decisions), statements


def test_retries_on_account_are_admitted_without_reading_their_accounts_ledgers(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00")
    original = _original(db, "AG-1", "30.00", on_account=True)

    (decision,), statements = _retries_reading_tables(db, [original])

    assert decision == Admitted(Pays.ON_ACCOUNT, (), 3000)
    assert not [sql for sql in statements if "ledger_entries" in sql or "request_invoices" in sql]


def test_a_retry_paying_the_balance_is_still_checked_against_its_ledger_beside_retries_on_account(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.account(db, "pressimmo", "AG-2")
    world.entry(db, "F2", "100.00", reference="AG-2")
    on_account = _original(db, "AG-1", "30.00", on_account=True)
    balance = _original(db, "AG-2", "100.00")  # still in flight: the retry would ask for the same money again

    (first, second), _statements = _retries_reading_tables(db, [on_account, balance])

    assert first == Admitted(Pays.ON_ACCOUNT, (), 3000)
    assert isinstance(second, errors.SepaEngineError)
    assert second.field == "amount" and "already requested 100.00" in str(second)
