from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepa_engine import errors
from sepa_engine.domain import calendar, charset
from sepa_engine.domain.accounts import (
    CollectionMode,
    Credit,
    DisputeStatus,
    EntryKind,
    Frequency,
    Item,
    Period,
    Position,
    allocate,
    balance_due,
    check_mode_change,
    check_notice_days,
    check_schedule_day,
    collection_mode,
    dispute_status,
    dispute_transition,
    entry_kind,
    frequency,
    held_cents,
    invoices_remittance,
    newest_items_open,
    nominal_date,
    period_of,
    running_balances,
    scheduled_collection,
    statement_window_start,
    unapplied_without_holds,
)

D = dt.date


# --- balance -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], 0),
        ([("invoice", 10_000)], 10_000),
        ([("invoice", 10_000), ("payment", 4_000)], 6_000),
        ([("invoice", 10_000), ("credit_note", 2_500), ("fee", 500)], 8_000),
        ([("invoice", 10_000), ("payment", 10_000), ("returned_payment", 10_000), ("fee", 750)], 10_750),
        ([("payment", 3_000)], -3_000),
    ],
)
def test_balance_due_is_invoices_returns_and_fees_minus_credit_notes_and_payments(entries, expected):
    assert balance_due(entries) == expected


def test_each_kind_moves_the_balance_its_own_way_and_only_invoices_and_fees_are_paid():
    assert {kind: kind.sign for kind in EntryKind} == {
        EntryKind.INVOICE: 1, EntryKind.CREDIT_NOTE: -1, EntryKind.PAYMENT: -1,
        EntryKind.RETURNED_PAYMENT: 1, EntryKind.FEE: 1,
    }
    assert {kind for kind in EntryKind if kind.is_item()} == {EntryKind.INVOICE, EntryKind.FEE}
    assert {kind for kind in EntryKind if kind.is_recorded_upstream()} == {
        EntryKind.INVOICE, EntryKind.CREDIT_NOTE, EntryKind.FEE
    }


def test_running_balances_start_from_the_opening_balance():
    assert running_balances([100, -30, 50], opening=20) == [120, 90, 140]
    assert running_balances([]) == []


@pytest.mark.parametrize(
    ("today", "start"),
    [(D(2026, 11, 20), D(2025, 11, 20)), (D(2028, 2, 29), D(2027, 2, 28)), (D(2027, 1, 31), D(2026, 1, 31))],
)
def test_a_full_statement_covers_the_twelve_months_before_today(today, start):
    assert statement_window_start(today) == start


# --- allocation ----------------------------------------------------------------------------
A = Item(1, D(2026, 9, 1), 10_000)
B = Item(2, D(2026, 10, 1), 5_000)
C = Item(3, D(2026, 8, 1), 2_000)


def test_a_payment_without_selection_pays_the_oldest_open_items_first():
    result = allocate([A, B, C], [Credit(10, 11_000)])
    assert dict(result.paid) == {1: 9_000, 2: 0, 3: 2_000}
    assert result.pairs == ((10, 3, 2_000), (10, 1, 9_000))
    assert result.unapplied_cents == 0


def test_a_payment_goes_to_the_invoices_it_selected_before_the_oldest():
    result = allocate([A, B, C], [Credit(10, 5_000, preferred=((2, 5_000),))])
    assert dict(result.paid) == {1: 0, 2: 5_000, 3: 0}


def test_what_a_selection_does_not_take_goes_to_the_oldest_and_the_rest_is_unapplied():
    result = allocate([B], [Credit(10, 6_000, preferred=((2, 5_000),)), Credit(11, 1_000)])
    assert dict(result.paid) == {2: 5_000}
    assert dict(result.unapplied) == {10: 1_000, 11: 1_000}
    assert result.open_cents(B) == 0


def test_credits_without_selection_pass_by_items_held_by_a_dispute():
    held_a = Item(1, D(2026, 9, 1), 10_000, held=True)
    result = allocate([held_a, B], [Credit(10, 6_000)])
    assert dict(result.paid) == {1: 0, 2: 5_000}
    assert result.unapplied_cents == 1_000
    # A credit note naming the held invoice (an accepted dispute) settles it.
    settled = allocate([held_a, B], [Credit(11, 10_000, preferred=((1, 10_000),))])
    assert settled.paid[1] == 10_000


def _replayed_by_the_rule(items: list[Item], credits: list[Credit]) -> tuple[dict[int, int], dict[int, int], tuple]:
    """The module docstring's rule, written as plainly as it reads: each credit, in order,
    takes what its named items still owe, then walks every item oldest first."""
    remaining = {item.id: item.amount_cents for item in items}
    pairs, unapplied = [], {}
    for credit in credits:
        left = max(credit.amount_cents, 0)
        for item_id, cents in credit.preferred:
            take = min(left, max(cents, 0), remaining.get(item_id, 0))
            if take > 0:
                remaining[item_id] -= take
                left -= take
                pairs.append((credit.id, item_id, take))
        for item in sorted(items, key=lambda i: (i.issue_date, i.id)):
            take = min(left, remaining[item.id])
            if not item.held and take > 0:
                remaining[item.id] -= take
                left -= take
                pairs.append((credit.id, item.id, take))
        if left:
            unapplied[credit.id] = left
    return {i.id: i.amount_cents - remaining[i.id] for i in items}, unapplied, tuple(pairs)


_items = st.lists(
    st.builds(Item, st.just(0), st.dates(D(2026, 1, 1), D(2026, 1, 20)), st.integers(0, 5_000), st.booleans()),
    max_size=12,
).map(lambda found: [Item(n + 1, i.issue_date, i.amount_cents, i.held) for n, i in enumerate(found)])
_credits = st.lists(
    st.tuples(st.integers(-500, 9_000), st.lists(st.tuples(st.integers(1, 14), st.integers(-100, 4_000)), max_size=3)),
    max_size=12,
).map(lambda found: [Credit(100 + n, cents, tuple(named)) for n, (cents, named) in enumerate(found)])


@settings(max_examples=300, deadline=None)
@given(items=_items, credits=_credits)
def test_allocation_over_a_long_history_is_the_plain_replay_of_the_rule(items, credits):
    # allocate skips the items the replay already settled; the result must not change.
    result = allocate(items, credits)
    paid, unapplied, pairs = _replayed_by_the_rule(items, credits)
    assert (dict(result.paid), dict(result.unapplied), result.pairs) == (paid, unapplied, pairs)


@settings(max_examples=300, deadline=None)
@given(
    items=_items.map(lambda found: [Item(i.id, i.issue_date, i.amount_cents) for i in found]),
    credits=_credits,
    newest=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 6_000)), min_size=1, max_size=3),
)
def test_the_newest_unnamed_items_owe_what_the_sums_say_when_no_dispute_holds_an_item(items, credits, newest):
    # The gate's shortcut for an invoice a request carries: no replay, the ledger's sums only.
    latest = max((item.issue_date for item in items), default=D(2026, 1, 1))
    fresh = sorted(
        (Item(50 + n, latest + dt.timedelta(days=days), cents) for n, (days, cents) in enumerate(newest)),
        key=lambda item: (item.issue_date, item.id),
    )
    before = allocate(items, credits)
    balance = sum(item.amount_cents for item in items) - sum(credit.amount_cents for credit in credits)
    unmatched = sum(max(-credit.amount_cents, 0) for credit in credits)
    unapplied = unapplied_without_holds(balance, unmatched)
    assert unapplied == before.unapplied_cents

    after = allocate(items + fresh, credits)
    assert [after.open_cents(item) for item in fresh] == newest_items_open(unapplied, [i.amount_cents for i in fresh])
    assert {i.id: after.paid[i.id] for i in items} == dict(before.paid)


def test_a_newest_item_takes_the_credit_left_over_and_no_more():
    assert newest_items_open(0, [5_000]) == [5_000]
    assert newest_items_open(3_000, [2_000, 2_000]) == [0, 1_000]
    assert newest_items_open(9_000, [2_000]) == [0]
    # An account in credit by 30.00, a payment of 100.00 returned for 120.00 (20.00 lowers no credit).
    assert unapplied_without_holds(-3_000, 0) == 3_000
    assert unapplied_without_holds(-3_000, 2_000) == 5_000
    assert unapplied_without_holds(1_000, 0) == 0


def test_balance_due_reads_kinds_as_enum_members_or_stored_values_and_refuses_an_unknown_kind():
    assert balance_due([(EntryKind.INVOICE, 700), ("payment", 200), (EntryKind.FEE, 50)]) == 550
    with pytest.raises(ValueError, match="refund"):
        balance_due([("refund", 100)])


def test_held_amount_is_the_disputed_part_but_never_more_than_what_is_open():
    held_a = Item(1, D(2026, 9, 1), 10_000, held=True)
    partly_paid = allocate([held_a], [Credit(10, 7_000, preferred=((1, 7_000),))])
    assert held_cents([held_a], partly_paid, {1: 10_000}) == 3_000
    unpaid = allocate([held_a], [])
    assert held_cents([held_a], unpaid, {1: 2_500}) == 2_500


def test_the_collectable_balance_takes_out_disputes_and_debits_in_flight_and_is_never_negative():
    assert Position(15_000, 10_000, 3_000).collectable_cents == 2_000
    assert Position(15_000, 10_000, 8_000).collectable_cents == 0
    assert Position(-2_000, 0, 0).collectable_cents == 0


def test_the_remittance_names_the_selected_invoices_in_the_sepa_set_within_140_characters():
    assert invoices_remittance(["F-2026-001"]) == "Invoice F-2026-001"
    assert invoices_remittance(["F1", "F2"]) == "Invoices F1, F2"
    many = invoices_remittance([f"FACTURE-2026-{n:05d}" for n in range(20)])
    assert len(many) <= 140 and charset.is_sepa_text(many) and many.startswith("Invoices FACTURE-2026-00000, ")
    assert invoices_remittance(["Fé_1"]) == "Invoice Fe-1"


# --- disputes ------------------------------------------------------------------------------
ALLOWED = [
    ("open", "under_review"), ("open", "accepted"), ("open", "rejected"),
    ("under_review", "accepted"), ("under_review", "rejected"),
]


@pytest.mark.parametrize(("current", "new"), ALLOWED)
def test_dispute_transitions_the_table_allows(current, new):
    assert dispute_transition(current, new) is DisputeStatus(new)


@pytest.mark.parametrize(
    ("current", "new"),
    [(c.value, n.value) for c in DisputeStatus for n in DisputeStatus if (c.value, n.value) not in ALLOWED],
)
def test_every_other_dispute_transition_is_refused_with_its_statuses(current, new):
    with pytest.raises(errors.DisputeError) as caught:
        dispute_transition(current, new)
    assert caught.value.field == "status" and caught.value.value == new and current in caught.value.rule


def test_only_open_and_under_review_disputes_hold_their_invoices_and_the_others_are_final():
    assert {s for s in DisputeStatus if s.holds_invoices()} == {DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW}
    assert {s for s in DisputeStatus if s.is_final()} == {DisputeStatus.ACCEPTED, DisputeStatus.REJECTED}


# --- modes and schedule --------------------------------------------------------------------
def test_switching_to_automatic_needs_a_new_signed_mandate():
    with pytest.raises(errors.WrongCollectionMode) as caught:
        check_mode_change(CollectionMode.ON_DEMAND, CollectionMode.AUTOMATIC, new_mandate=False)
    assert caught.value.field == "mandate"
    check_mode_change(CollectionMode.ON_DEMAND, CollectionMode.AUTOMATIC, new_mandate=True)
    check_mode_change(CollectionMode.AUTOMATIC, CollectionMode.ON_DEMAND, new_mandate=False)
    check_mode_change(CollectionMode.AUTOMATIC, CollectionMode.AUTOMATIC, new_mandate=False)


@pytest.mark.parametrize("day", [1, 15, 28])
def test_schedule_days_every_month_has_are_accepted(day):
    assert check_schedule_day(day) == day


@pytest.mark.parametrize("day", [0, 29, 31, -1, True, "5", 5.0, None])
def test_other_schedule_days_are_refused(day):
    with pytest.raises(errors.InvalidFormat):
        check_schedule_day(day)


@pytest.mark.parametrize(("days", "ok"), [(1, True), (14, True), (60, True), (0, False), (61, False), (True, False), ("14", False)])
def test_prenotification_lead_time_is_between_1_and_60_days(days, ok):
    if ok:
        assert check_notice_days(days) == days
    else:
        with pytest.raises(errors.InvalidFormat):
            check_notice_days(days)


@pytest.mark.parametrize(
    ("parse", "good"),
    [(entry_kind, "invoice"), (dispute_status, "open"), (collection_mode, "automatic"), (frequency, "quarterly")],
)
@pytest.mark.parametrize("junk", ["", "INVOICE", "Open ", "weekly", "\x00", "ä"])
def test_status_and_kind_parsers_refuse_junk_with_the_allowed_values(parse, good, junk):
    assert parse(good).value == good
    with pytest.raises(errors.InvalidFormat) as caught:
        parse(junk)
    assert "must be one of" in caught.value.rule


def test_periods_are_calendar_months_or_quarters_with_stable_keys():
    assert period_of(D(2026, 11, 20), Frequency.MONTHLY).key == "2026-11"
    assert period_of(D(2026, 11, 20), Frequency.QUARTERLY).key == "2026-Q4"
    assert Period(2026, 12, Frequency.MONTHLY).shifted(1).key == "2027-01"
    assert Period(2026, 1, Frequency.QUARTERLY).shifted(-1).key == "2025-Q4"
    assert Period(2026, 4, Frequency.QUARTERLY).first_month == 10


def test_the_collection_day_moves_to_the_next_target_day_when_target_is_closed():
    # 25 December 2026 is a Friday and a TARGET holiday; the 26th is a Saturday.
    assert nominal_date(Period(2026, 12, Frequency.MONTHLY), 25) == D(2026, 12, 28)
    assert nominal_date(Period(2026, 12, Frequency.MONTHLY), 7) == D(2026, 12, 7)


def test_the_schedule_creates_the_debit_the_day_its_prenotification_window_opens():
    # Monthly on the 7th, 14 days' notice: the window of December opens on 23 November.
    assert scheduled_collection(D(2026, 11, 22), Frequency.MONTHLY, 7, 14, since=D(2026, 11, 20)) is None
    decided = scheduled_collection(D(2026, 11, 23), Frequency.MONTHLY, 7, 14, since=D(2026, 11, 20))
    assert decided is not None
    assert (decided.period.key, decided.nominal_date, decided.collection_date, decided.moved) == (
        "2026-12", D(2026, 12, 7), D(2026, 12, 7), False
    )


def test_a_debit_whose_prenotification_would_be_late_moves_to_the_first_target_day_far_enough():
    # The account turned automatic on 1 November; the schedule first runs on the 20th,
    # after the window of 10 November opened: the debit moves to the first TARGET day
    # at least 14 days after the 20th (4 December, a Friday).
    decided = scheduled_collection(D(2026, 11, 20), Frequency.MONTHLY, 10, 14, since=D(2026, 11, 1))
    assert decided is not None
    assert (decided.period.key, decided.nominal_date, decided.collection_date, decided.moved) == (
        "2026-11", D(2026, 11, 10), D(2026, 12, 4), True
    )
    assert (decided.collection_date - D(2026, 11, 20)).days >= 14
    assert calendar.is_target_day(decided.collection_date)


def test_periods_whose_day_fell_before_the_account_became_automatic_are_not_collected():
    assert scheduled_collection(D(2026, 11, 20), Frequency.MONTHLY, 5, 14, since=D(2026, 11, 20)) is None


def test_quarterly_accounts_are_collected_in_the_first_month_of_each_quarter():
    # Quarterly on the 4th: 4 January 2027 is a Monday, its window opens on 21 December.
    decided = scheduled_collection(D(2026, 12, 21), Frequency.QUARTERLY, 4, 14, since=D(2026, 11, 1))
    assert decided is not None and decided.period.key == "2027-Q1"
    assert decided.collection_date == D(2027, 1, 4)
    # Before that, the latest open window is October's, before the account became automatic.
    assert scheduled_collection(D(2026, 12, 18), Frequency.QUARTERLY, 4, 14, since=D(2026, 11, 1)) is None


@pytest.mark.parametrize("notice", [1, 5, 14, 30])
@pytest.mark.parametrize("day", [1, 13, 28])
def test_every_scheduled_debit_is_a_target_day_at_least_the_notice_after_its_run(notice, day):
    since = D(2026, 1, 1)
    for offset in range(0, 120, 3):
        run = since + dt.timedelta(days=offset)
        decided = scheduled_collection(run, Frequency.MONTHLY, day, notice, since)
        if decided is None:
            continue
        assert calendar.is_target_day(decided.collection_date)
        assert (decided.collection_date - run).days >= notice
