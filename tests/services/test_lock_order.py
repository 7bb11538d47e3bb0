"""Writers that meet on one debtor's rows take the mandates before the accounts, so that none
waits for another in a cycle (PostgreSQL reports a cycle as a deadlock and aborts one of the
transactions). An enqueue share-locks its mandates, then locks their accounts; a
reconciliation locks the failed debits' mandates, then the accounts of their retries; a
hand-over moves the mandates' history, then books the payments (whose foreign-key checks
key-share-lock the accounts); the schedule share-locks a page's mandates, then its accounts.

Each test stops a file's hand-over after its first lock-taking step and runs the other writer
meanwhile; SQLite queues the two at BEGIN IMMEDIATE, so there they simply run in turn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import func, select

from sepa_engine.db.models import DebitRequest, LedgerEntry, ScheduleSlot
from sepa_engine.ids import SequentialIds
from sepa_engine.services import on_demand, registry, schedule
from sepa_engine.services.account_inputs import PayNowInput
from sepa_engine.services.collection import CollectionReport, run_collection
from sepa_engine.services.inputs import DebitRequestInput
from tests import accounts_world as world
from tests.concurrency import hold_the_hand_over, in_thread, until_a_writer_waits_for_a_lock
from tests.services.test_schedule_pages import WINDOW

# The afternoon the debit paid on demand is collected: its file is handed over then.
COLLECTED = world.clock(dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC))


def _beside_a_hand_over(db, settings, monkeypatch, other: Callable[[], object]) -> list[object]:  # type: ignore[no-untyped-def]
    """Collect, and run ``other`` while the file's hand-over is held after its first
    lock-taking step; let the hand-over go on once ``other`` waits for a lock or has ended.
    What the run and ``other`` returned, or raised, in that order."""
    handing, release = hold_the_hand_over(monkeypatch)
    collecting, ran = in_thread(lambda: run_collection(db, settings, COLLECTED, SequentialIds("PAY")))
    assert handing.wait(timeout=30), "the run never handed its file over"
    running, done = in_thread(other)
    until_a_writer_waits_for_a_lock(db, or_ends=running)
    release.set()
    collecting.join(timeout=60)
    running.join(timeout=60)
    return ran + done


def _paid_on_demand(db, reference: str) -> on_demand.PaymentResult:  # type: ignore[no-untyped-def]
    """An account owing 100.00 that paid 30.00 on demand, the debit not collected yet."""
    world.account(db, "pressimmo", reference)
    world.entry(db, f"F-{reference}", "100.00", reference=reference)
    with db.transaction() as s:
        return on_demand.pay_now(s, "pressimmo", reference, PayNowInput(amount="30.00"),
                                 idempotency_key=f"click-{reference}", clock=world.clock())


def test_a_schedule_page_beside_a_file_handed_over_on_the_same_mandate_both_commit(db, settings, monkeypatch):
    # The schedule locked the account, then waited for the mandate the hand-over held; the
    # hand-over's payment then waited for the account: a deadlock.
    world.creditor(db, "pressimmo")
    paid = _paid_on_demand(db, "AG-1")  # before the account went automatic
    # The automatic mode's new mandate takes the pending debit: one mandate for both writers.
    world.go_automatic(db, "pressimmo", "AG-1", day=7, key="mode-AG-1", evidence="ev-AG-1")

    def run_schedule() -> schedule.ScheduleReport:
        with db.transaction() as s:
            return schedule.schedule_automatic(s, WINDOW, world.clock())

    outcomes = _beside_a_hand_over(db, settings, monkeypatch, run_schedule)

    assert [type(o).__name__ for o in outcomes] == ["CollectionReport", "ScheduleReport"], outcomes
    report = outcomes[0]
    assert isinstance(report, CollectionReport) and [f.count for f in report.files] == [1]
    with db.reader() as s:
        debit = s.get(DebitRequest, paid.request_id)
        assert debit is not None and debit.status == "submitted"
        assert s.scalar(select(func.count()).where(LedgerEntry.debit_request_id == paid.request_id)) == 1
        (slot,) = s.scalars(select(ScheduleSlot)).all()
        assert (slot.outcome, slot.amount_cents) == ("requested", 7_000)  # the balance less the 30.00 in flight


def test_a_payment_asked_on_demand_beside_a_file_handed_over_on_the_same_mandate_both_commit(db, settings, monkeypatch):
    # The hand-over booked the first debit's payment (key-share on the account), then waited
    # for the mandate the enqueue share-locked; the enqueue waited for the account: a deadlock.
    world.creditor(db, "pressimmo")
    first = _paid_on_demand(db, "AG-2")

    def pay_again() -> on_demand.PaymentResult:
        with db.transaction() as s:
            return on_demand.pay_now(s, "pressimmo", "AG-2", PayNowInput(amount="20.00"), idempotency_key="click-2",
                                     clock=COLLECTED)

    outcomes = _beside_a_hand_over(db, settings, monkeypatch, pay_again)

    assert [type(o).__name__ for o in outcomes] == ["CollectionReport", "PaymentResult"], outcomes
    _one_collected_one_pending(db, first.request_id)


def test_an_upstream_request_beside_a_file_handed_over_on_the_same_mandate_both_commit(db, settings, monkeypatch):
    # The hand-over booked the payment first (key-share on the account), then waited for the
    # mandate the upstream enqueue share-locked; the enqueue's account gate waited for the
    # account: a deadlock, which PostgreSQL broke by aborting one of the two.
    world.creditor(db, "pressimmo")
    first = _paid_on_demand(db, "AG-3")

    def enqueue() -> registry.RequestResult:
        with db.transaction() as s:
            return registry.enqueue_request(
                s, "pressimmo", DebitRequestInput(mandate=first.mandate_reference, amount="20.00", on_account=True),
                idempotency_key="upstream-1", clock=COLLECTED,
            )

    outcomes = _beside_a_hand_over(db, settings, monkeypatch, enqueue)

    assert [type(o).__name__ for o in outcomes] == ["CollectionReport", "RequestResult"], outcomes
    _one_collected_one_pending(db, first.request_id)


def _one_collected_one_pending(db, collected: int) -> None:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        assert s.scalars(select(DebitRequest.status).order_by(DebitRequest.id)).all() == ["submitted", "pending"]
        assert s.scalar(select(func.count()).where(LedgerEntry.debit_request_id == collected)) == 1
