"""The automatic schedule: one debit per period for the collectable balance, pre-notified."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from sepa_engine.db.models import DebitRequest, Mandate, Prenotification, ScheduleSlot
from sepa_engine.services import account_changes, disputes, on_demand, registry, schedule
from sepa_engine.services.account_inputs import DisputeInput, ModeChangeInput, PayNowInput
from tests import accounts_world as world

D = dt.date
# Monthly on the 7th with 14 days' notice: December's window opens on Monday 23 November.
WINDOW = D(2026, 11, 23)


@pytest.fixture
def auto(db):  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00", issued=D(2026, 10, 1))
    world.entry(db, "F2", "50.00", issued=D(2026, 11, 2))
    world.go_automatic(db, day=7)
    return db


def run(db, day: D, creditor: str | None = None) -> schedule.ScheduleReport:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return schedule.schedule_automatic(s, day, world.clock(), creditor_code=creditor)


def count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_each_period_debits_the_collectable_balance_with_a_prenotification_in_time(auto):
    assert run(auto, WINDOW - dt.timedelta(days=1)).items == ()
    report = run(auto, WINDOW)
    (item,) = report.items
    assert (item.outcome, item.period, item.amount_cents, item.collection_date, item.moved) == (
        "requested", "2026-12", 15_000, D(2026, 12, 7), False
    )
    with auto.reader() as s:
        notice = s.scalars(select(Prenotification)).one()
        request = s.get_one(DebitRequest, item.request_id)
    assert (notice.amount_cents, notice.collection_date, notice.mandate_reference, notice.creditor_identifier) == (
        15_000, D(2026, 12, 7), "RUM-E-AG-1", "FR72ZZZ123456"
    )
    assert (notice.collection_date - notice.issued_on).days >= 14 and notice.issued_at == world.NOW
    assert (request.requested_date, request.amount_cents, request.status) == (D(2026, 12, 7), 15_000, "pending")
    assert request.remittance == "Automatic debit 2026-12 account AG-1"


def test_running_the_schedule_again_creates_nothing_twice(auto):
    run(auto, WINDOW)
    assert run(auto, WINDOW).items == ()
    assert run(auto, WINDOW + dt.timedelta(days=1)).items == ()
    assert (count(auto, DebitRequest), count(auto, Prenotification)) == (1, 1)


def test_the_next_period_is_collected_again_for_what_is_then_collectable(auto):
    run(auto, WINDOW)
    world.entry(auto, "F3", "30.00", issued=D(2026, 12, 1))
    # January's debit: 7 January 2027 (a Thursday) minus 14 days.
    (item,) = run(auto, D(2026, 12, 24)).items
    # The December debit is still in flight: only the new invoice is collected.
    assert (item.period, item.amount_cents, item.collection_date) == ("2027-01", 3_000, D(2027, 1, 7))


def test_nothing_is_debited_when_nothing_is_collectable_and_running_again_changes_nothing(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.go_automatic(db, day=7)
    (item,) = run(db, WINDOW).items
    assert (item.outcome, item.amount_cents, item.request_id) == ("nothing_due", 0, None)
    assert run(db, WINDOW + dt.timedelta(days=1)).items == ()
    assert (count(db, DebitRequest), count(db, Prenotification), count(db, ScheduleSlot)) == (0, 0, 1)


def test_an_invoice_added_after_a_run_found_nothing_is_collected_for_that_period_on_its_day(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.go_automatic(db, day=7)
    run(db, WINDOW)
    world.entry(db, "F1", "10.00", issued=D(2026, 11, 23))
    (item,) = run(db, WINDOW).items
    assert (item.outcome, item.period, item.amount_cents, item.collection_date, item.moved) == (
        "requested", "2026-12", 1_000, D(2026, 12, 7), False
    )
    assert (count(db, DebitRequest), count(db, Prenotification), count(db, ScheduleSlot)) == (1, 1, 1)


def test_an_invoice_added_too_late_for_the_periods_day_is_collected_at_the_next_possible_date(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.go_automatic(db, day=7)
    run(db, WINDOW)
    world.entry(db, "F1", "10.00", issued=D(2026, 11, 24))
    (item,) = run(db, WINDOW + dt.timedelta(days=1)).items
    # 14 days' notice from 24 November: Tuesday 8 December, still for December's period.
    assert (item.period, item.collection_date, item.moved) == ("2026-12", D(2026, 12, 8), True)
    with db.reader() as s:
        notice = s.scalars(select(Prenotification)).one()
    assert (notice.collection_date, notice.issued_on, notice.period) == (D(2026, 12, 8), D(2026, 11, 24), "2026-12")


def test_a_quarter_found_empty_does_not_make_an_invoice_added_the_next_day_wait_a_quarter(db):
    # Issue 12: "after accounts schedule run found nothing due for 2027-Q1, an invoice added the
    # next day was never picked up: that money waits a whole quarter".
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.go_automatic(db, frequency="quarterly", day=4)
    (empty,) = run(db, D(2026, 12, 21)).items
    assert (empty.outcome, empty.period) == ("nothing_due", "2027-Q1")
    world.entry(db, "F1", "90.00", issued=D(2026, 12, 22))
    (item,) = run(db, D(2026, 12, 22)).items
    assert (item.outcome, item.period, item.amount_cents) == ("requested", "2027-Q1", 9_000)
    assert item.collection_date == D(2027, 1, 5)


def test_the_prenotification_lead_time_is_set_per_creditor(db):
    world.creditor(db, "pressimmo", notice_days=5)
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "10.00")
    world.go_automatic(db, day=7)
    assert run(db, D(2026, 12, 1)).items == ()
    (item,) = run(db, D(2026, 12, 2)).items
    assert item.collection_date == D(2026, 12, 7)


def test_a_debit_whose_notice_would_come_late_moves_to_the_next_possible_date(auto):
    # The schedule did not run when December's window opened; on 30 November it is late.
    (item,) = run(auto, D(2026, 11, 30)).items
    assert item.moved and (item.nominal_date, item.collection_date) == (D(2026, 12, 7), D(2026, 12, 14))
    with auto.reader() as s:
        notice = s.scalars(select(Prenotification)).one()
    assert notice.collection_date == D(2026, 12, 14) and notice.nominal_date == D(2026, 12, 7)


def test_quarterly_accounts_are_debited_once_a_quarter(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "90.00")
    world.go_automatic(db, frequency="quarterly", day=4)
    assert run(db, D(2026, 12, 18)).items == ()
    (item,) = run(db, D(2026, 12, 21)).items
    assert (item.period, item.collection_date) == ("2027-Q1", D(2027, 1, 4))
    assert run(db, D(2027, 1, 21)).items == ()


def test_an_on_demand_debit_and_the_schedule_never_collect_the_same_money_twice(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00")
    world.entry(db, "F2", "50.00")
    with db.transaction() as s:
        clicked = on_demand.pay_now(s, "pressimmo", "AG-1", PayNowInput(amount="120.00"), idempotency_key="click",
                                    clock=world.clock())
    world.go_automatic(db, day=7)
    (item,) = run(db, WINDOW).items
    assert item.amount_cents == 3_000
    # The click's debit follows the account to its new mandate.
    with db.reader() as s:
        debit = s.get_one(DebitRequest, clicked.request_id)
        assert s.get_one(Mandate, debit.mandate_id).reference == "RUM-E-AG-1"
        total = s.scalar(select(func.sum(DebitRequest.amount_cents)))
    assert total == 15_000


def test_invoices_under_dispute_are_left_out_of_the_automatic_debit(auto):
    with auto.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("not ordered", "F1"), actor="portal",
                              idempotency_key="d1", clock=world.clock())
    (item,) = run(auto, WINDOW).items
    assert item.amount_cents == 5_000


def test_an_account_without_a_usable_mandate_is_retried_once_it_has_one(auto):
    with auto.transaction() as s:
        registry.revoke_mandate(s, "pressimmo", "RUM-E-AG-1", reason="bank closed", clock=world.clock())
    (item,) = run(auto, WINDOW).items
    assert item.outcome == "no_usable_mandate" and item.problems[0]["code"] == "no_usable_mandate"
    assert count(auto, ScheduleSlot) == 0
    with auto.transaction() as s:
        account_changes.change_bank_details(
            s, "pressimmo", "AG-1", world.signed_mandate("RUM-E-2", evidence="ev-2"), actor="portal",
            idempotency_key="bank-2", clock=world.clock(),
        )
    (item,) = run(auto, WINDOW + dt.timedelta(days=1)).items
    assert item.outcome == "requested" and item.collection_date == D(2026, 12, 8)


def test_an_account_back_on_demand_is_no_longer_scheduled(auto):
    with auto.transaction() as s:
        account_changes.set_collection_mode(s, "pressimmo", "AG-1", ModeChangeInput(mode="on_demand", reason="tenant asked"),
                                            actor="staff:backoffice", idempotency_key="back", clock=world.clock())
    assert run(auto, WINDOW).items == ()


# --- export --------------------------------------------------------------------------------
@pytest.fixture
def notices(auto):  # type: ignore[no-untyped-def]
    world.creditor(auto, "poliris")
    world.account(auto, "poliris", "AG-9")
    world.entry(auto, "P1", "12.00", creditor_code="poliris", reference="AG-9")
    world.go_automatic(auto, "poliris", "AG-9", day=7, key="mode-9", evidence="ev-9")
    run(auto, WINDOW)
    return auto


def test_prenotifications_export_as_csv_for_the_creditors_mailing_system(notices):
    with notices.reader() as s:
        records = schedule.prenotifications(s, "pressimmo")
    rows = list(csv.DictReader(io.StringIO(schedule.prenotifications_csv(records))))
    assert len(rows) == 1
    row = rows[0]
    assert (row["account"], row["amount"], row["currency"], row["collection_date"], row["mandate_reference"],
            row["creditor_identifier"], row["issued_on"]) == (
        "AG-1", "150.00", "EUR", "2026-12-07", "RUM-E-AG-1", "FR72ZZZ123456", "2026-11-23"
    )
    assert tuple(rows[0]) == schedule.CSV_COLUMNS


def test_prenotifications_export_as_json_records_filtered_by_dates_and_scoped_by_creditor(notices):
    with notices.reader() as s:
        poliris = schedule.prenotifications(s, "poliris")
        none = schedule.prenotifications(s, "pressimmo", collection_from=D(2026, 12, 8))
        issued = schedule.prenotifications(s, "pressimmo", issued_on=WINDOW)
    assert [(r["creditor"], r["account"], r["amount"]) for r in poliris] == [("poliris", "AG-9", "12.00")]
    assert none == () and len(issued) == 1
    assert issued[0]["issued_at"] == world.NOW.isoformat()
