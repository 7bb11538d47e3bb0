"""The automatic schedule decides a page of accounts at a time: each account as it would be
alone, in a few statements a page, and once when two runs meet."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, func, select, text

from sepa_engine.db.models import DebitRequest, DebtorAccount, Mandate, Prenotification, ScheduleSlot
from sepa_engine.db.session import Database
from sepa_engine.services import disputes, on_demand, registry, schedule
from sepa_engine.services.account_inputs import DisputeInput, PayNowInput
from tests import accounts_world as world
from tests.concurrency import at_once

D = dt.date
# Monthly on the 7th with 14 days' notice: December's window opens on Monday 23 November.
WINDOW = D(2026, 11, 23)


class _Undo(Exception):
    """Raised to roll a run back once its outcome is read."""


def automatic(db: Database, reference: str, *entries: tuple[str, str], creditor: str = "pressimmo", **mode: object) -> None:
    world.account(db, creditor, reference)
    for number, amount in entries:
        world.entry(db, number, amount, creditor_code=creditor, reference=reference)
    world.go_automatic(db, creditor, reference, day=7, key=f"mode-{reference}", evidence=f"ev-{reference}",
                       **mode)  # type: ignore[arg-type]


@pytest.fixture
def mixed(db):  # type: ignore[no-untyped-def]
    """Accounts in every state the schedule tells apart, one creditor."""
    world.creditor(db, "pressimmo")
    # Found with nothing due by an earlier run of this period; an invoice came since.
    automatic(db, "AG-7")
    with db.transaction() as s:
        schedule.schedule_automatic(s, WINDOW, world.clock())
    world.entry(db, "F7", "25.00", reference="AG-7")
    automatic(db, "AG-1", ("F1", "100.00"), ("F2", "50.00"))
    automatic(db, "AG-2")  # nothing due
    automatic(db, "AG-3", ("F3", "80.00"))
    with db.transaction() as s:
        registry.revoke_mandate(s, "pressimmo", "RUM-E-AG-3", reason="bank closed", clock=world.clock())
    automatic(db, "AG-4", ("F4A", "100.00"), ("F4B", "40.00"))
    with db.transaction() as s:  # an invoice under dispute: its account's ledger is read whole
        disputes.open_dispute(s, "pressimmo", "AG-4", DisputeInput.of("not ordered", "F4A"), actor="portal",
                              idempotency_key="d4", clock=world.clock())
    world.account(db, "pressimmo", "AG-5")
    world.entry(db, "F5", "100.00", reference="AG-5")
    with db.transaction() as s:  # a debit in flight already takes part of the balance
        on_demand.pay_now(s, "pressimmo", "AG-5", PayNowInput(amount="30.00"), idempotency_key="click-5",
                          clock=world.clock())
    world.go_automatic(db, "pressimmo", "AG-5", day=7, key="mode-AG-5", evidence="ev-AG-5")
    automatic(db, "AG-6", ("F6", "10.00"), frequency="quarterly")  # its window opens in December
    return db


Written = dict[str, list[tuple[object, ...]]]


def decide(db: Database, page: int, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, dict[str, object]], Written]:
    """What a run with pages of ``page`` accounts decides and writes, rolled back after."""
    monkeypatch.setattr(schedule, "PAGE", page)
    try:
        with db.transaction() as s:
            report = schedule.schedule_automatic(s, WINDOW, world.clock())
            written = written_rows(s)
            raise _Undo
    except _Undo:
        pass
    ids = ("request_id", "end_to_end_id", "prenotification_id")
    return {item.account_reference: {k: v for k, v in item.to_dict().items() if k not in ids} for item in report.items}, written


def written_rows(s) -> Written:  # type: ignore[no-untyped-def]
    requests = s.execute(
        select(DebtorAccount.reference, DebitRequest.idempotency_key, DebitRequest.amount_cents, DebitRequest.requested_date,
               DebitRequest.remittance, DebitRequest.status, Mandate.reference, DebitRequest.pays)
        .join(Mandate, Mandate.id == DebitRequest.mandate_id).join(DebtorAccount, DebtorAccount.id == Mandate.debtor_account_id)
        .order_by(DebitRequest.idempotency_key)
    ).all()
    slots = s.execute(
        select(DebtorAccount.reference, ScheduleSlot.period, ScheduleSlot.outcome, ScheduleSlot.amount_cents,
               ScheduleSlot.run_date, ScheduleSlot.debit_request_id.is_(None))
        .join(DebtorAccount, DebtorAccount.id == ScheduleSlot.debtor_account_id).order_by(DebtorAccount.reference)
    ).all()
    notices = s.execute(
        select(DebtorAccount.reference, Prenotification.period, Prenotification.amount_cents,
               Prenotification.collection_date, Prenotification.mandate_reference, DebitRequest.idempotency_key)
        .join(DebtorAccount, DebtorAccount.id == Prenotification.debtor_account_id)
        .join(DebitRequest, DebitRequest.id == Prenotification.debit_request_id).order_by(DebtorAccount.reference)
    ).all()
    return {"requests": [tuple(r) for r in requests], "slots": [tuple(r) for r in slots], "notices": [tuple(r) for r in notices]}


def test_a_page_of_accounts_decides_each_account_as_it_would_alone(mixed, monkeypatch):
    decided, written = decide(mixed, 500, monkeypatch)
    assert {ref: (item["outcome"], item["amount"], item["collection_date"]) for ref, item in decided.items()} == {
        "AG-7": ("requested", "25.00", "2026-12-07"),  # the period's "nothing due" reopened
        "AG-1": ("requested", "150.00", "2026-12-07"),
        "AG-2": ("nothing_due", "0.00", None),
        "AG-3": ("no_usable_mandate", "0.00", None),
        "AG-4": ("requested", "40.00", "2026-12-07"),  # the invoice under dispute left out
        "AG-5": ("requested", "70.00", "2026-12-07"),  # the 30.00 in flight left out
    }
    assert decided["AG-3"]["problems"][0]["code"] == "no_usable_mandate"  # type: ignore[index]
    assert list(decided) == ["AG-7", "AG-1", "AG-2", "AG-3", "AG-4", "AG-5"]  # in the accounts' order
    # Pages of one account and pages cut between accounts decide and write the same.
    for page in (1, 2):
        assert decide(mixed, page, monkeypatch) == (decided, written)


def test_each_requested_account_gets_its_own_slot_notice_and_debit(mixed, monkeypatch):
    _, written = decide(mixed, 500, monkeypatch)
    scheduled = {row[0]: row for row in written["requests"] if str(row[1]).startswith("schedule-")}
    assert {ref: (row[2], row[3], row[4], row[6]) for ref, row in scheduled.items()} == {
        "AG-1": (15_000, D(2026, 12, 7), "Automatic debit 2026-12 account AG-1", "RUM-E-AG-1"),
        "AG-4": (4_000, D(2026, 12, 7), "Automatic debit 2026-12 account AG-4", "RUM-E-AG-4"),
        "AG-5": (7_000, D(2026, 12, 7), "Automatic debit 2026-12 account AG-5", "RUM-E-AG-5"),
        "AG-7": (2_500, D(2026, 12, 7), "Automatic debit 2026-12 account AG-7", "RUM-E-AG-7"),
    }
    # Each pays the balance, as the gate decided it on the facts the page read.
    assert {row[7] for row in scheduled.values()} == {"balance"}
    # One slot a decided account, the reopened one now requested; no slot without a mandate.
    assert [(row[0], row[2], row[3], row[5]) for row in written["slots"]] == [
        ("AG-1", "requested", 15_000, False), ("AG-2", "nothing_due", 0, True), ("AG-4", "requested", 4_000, False),
        ("AG-5", "requested", 7_000, False), ("AG-7", "requested", 2_500, False),
    ]
    # Each notice names its own account's debit, amount and mandate.
    assert {row[0]: (row[2], row[3], row[4], row[5]) for row in written["notices"]} == {
        ref: (row[2], row[3], row[6], row[1]) for ref, row in scheduled.items()
    }


def test_a_run_over_many_accounts_sends_as_many_statements_as_over_a_few(db):
    world.creditor(db, "pressimmo")
    world.creditor(db, "poliris")
    # A third of each creditor's accounts owe nothing (a "nothing due" slot each).
    for i in range(3):
        automatic(db, f"AG-{i}", *([(f"F{i}", "10.00")] if i % 3 else []))
    for i in range(12):
        automatic(db, f"AP-{i}", *([(f"P{i}", "10.00")] if i % 3 else []), creditor="poliris")
    statements: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    counts = {}
    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        for code in ("pressimmo", "poliris"):
            statements.clear()
            with db.transaction() as s:
                report = schedule.schedule_automatic(s, WINDOW, world.clock(), creditor_code=code)
            counts[code] = (len(report.requested), len(statements))
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    assert counts["pressimmo"][0] == 2 and counts["poliris"][0] == 8
    assert counts["poliris"][1] == counts["pressimmo"][1]


def test_two_schedule_runs_at_once_request_each_account_once(db):
    world.creditor(db, "pressimmo")
    for i in range(6):
        automatic(db, f"AG-{i}", (f"F{i}", "10.00"))

    def run() -> schedule.ScheduleReport:
        with db.transaction() as s:
            return schedule.schedule_automatic(s, WINDOW, world.clock())

    reports = at_once(run, run)
    assert all(isinstance(report, schedule.ScheduleReport) for report in reports), reports
    requested = sorted(item.account_reference for report in reports for item in report.requested)  # type: ignore[union-attr]
    assert requested == [f"AG-{i}" for i in range(6)]
    with db.reader() as s:
        counted = [s.scalar(select(func.count()).select_from(model)) for model in (DebitRequest, ScheduleSlot, Prenotification)]
    assert counted == [6, 6, 6]


def test_an_established_ledgers_page_writes_its_slots_and_notices_with_kept_key_check_plans(db, monkeypatch):
    from sepa_engine.db import session as session_module
    from tests.db.test_key_check_plans import KEEP_AND_RESTORE, statements_named

    world.creditor(db, "pressimmo")
    for i in range(3):
        automatic(db, f"AG-{i}", (f"F{i}", "10.00"))
    # Every table past the threshold, as on a ledger in use (db/session.py, KEY_CHECK_PAGES).
    monkeypatch.setattr(session_module, "KEY_CHECK_PAGES", 0)
    marks = (*KEEP_AND_RESTORE, ("INSERT INTO schedule_slots", "slots"), ("INSERT INTO prenotifications", "notices"))
    with statements_named(db, marks) as seen, db.transaction() as s:
        report = schedule.schedule_automatic(s, WINDOW, world.clock(), creditor_code="pressimmo")
        mode = None if db.is_sqlite else s.execute(text("SHOW plan_cache_mode")).scalar_one()

    assert len(report.requested) == 3
    # The slots and notices of the page between the keep and its restore; SQLite is told nothing.
    assert seen == (["slots", "notices"] if db.is_sqlite else ["keep", "slots", "notices", "restore"])
    assert mode in (None, "force_custom_plan")
