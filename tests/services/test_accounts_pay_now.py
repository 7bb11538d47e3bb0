"""Payments on demand: the portal's "pay my balance" and "pay these invoices" buttons."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import DebitRequest, Mandate
from sepa_engine.services import disputes, on_demand, registry
from sepa_engine.services.account_inputs import DisputeInput, GroupPaymentInput, GroupSelection, PayNowInput
from tests import accounts_world as world

D = dt.date


@pytest.fixture
def setup(db):  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00", issued=D(2026, 9, 1))
    world.entry(db, "F2", "50.00", issued=D(2026, 10, 1))
    return db


def pay(db, key: str = "click-1", *, clock: FixedClock | None = None, account: str = "AG-1", **data: object) -> on_demand.PaymentResult:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return on_demand.pay_now(s, "pressimmo", account, PayNowInput(**data), idempotency_key=key, clock=clock or world.clock())  # type: ignore[arg-type]


def request_count(db) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(DebitRequest)))


def test_a_payment_on_demand_is_requested_for_the_next_business_day(setup):
    result = pay(setup, amount="30.00")
    assert result.created and result.status == "pending" and result.problems == ()
    # Friday 20 November: the next TARGET day is Monday the 23rd.
    assert (result.amount_cents, result.requested_date) == (3_000, D(2026, 11, 23))
    assert result.mandate_reference == "RUM-PRE-AG-1" and result.end_to_end_id == "PRESSIMMO-000000000001"
    assert result.remittance == "Payment account AG-1"


def test_the_next_business_day_is_counted_in_the_creditors_time_zone(setup):
    # Monday 23:30 UTC is already Tuesday in Paris: the debit is for Wednesday.
    late = FixedClock(dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.timezone.utc))
    assert pay(setup, clock=late, amount="1.00").requested_date == D(2026, 11, 25)


@pytest.mark.parametrize(
    ("amount", "rule"),
    [
        ("0", "is zero"),
        ("0.00", "is zero"),
        (Decimal("0"), "is zero"),
        ("-5.00", "is negative"),
        ("12.345", "more than two decimals"),
        (Decimal("1.001"), "more than two decimals"),
        ("12,50", "comma"),
        ("abc", "is not a number"),
    ],
)
def test_malformed_amounts_are_refused_with_their_rule_and_nothing_is_written(setup, amount, rule):
    with pytest.raises(errors.InvalidAmount) as caught:
        pay(setup, amount=amount)
    assert caught.value.field == "amount" and rule in caught.value.rule
    assert request_count(setup) == 0


def test_a_float_amount_is_refused_before_anything_else(setup):
    with pytest.raises(errors.InvalidFormat) as caught:
        PayNowInput(amount=12.5)  # type: ignore[arg-type]
    assert caught.value.field == "amount" and "floats" in caught.value.rule


def test_an_amount_above_the_collectable_balance_is_refused(setup):
    with pytest.raises(errors.AmountExceedsBalance) as caught:
        pay(setup, amount="150.01")
    assert caught.value.to_dict()["rule"] == "exceeds the collectable balance of 150.00"
    assert pay(setup, amount="150.00").amount_cents == 15_000


def test_nothing_due_refuses_the_payment(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    with pytest.raises(errors.NothingDue) as caught:
        pay(db, amount="1.00")
    assert caught.value.field == "balance" and "nothing due" in caught.value.rule
    # Credit notes that exceed the invoices leave a credit, not a debt.
    world.entry(db, "F1", "10.00")
    world.entry(db, "AV1", "15.00", kind="credit_note")
    with pytest.raises(errors.NothingDue):
        pay(db, amount="1.00")


def test_two_clicks_never_collect_the_same_money_twice(setup):
    first = pay(setup, "click-1", amount="150.00")
    with pytest.raises(errors.NothingDue) as caught:
        pay(setup, "click-2", amount="150.00")
    assert "150.00 already requested" in caught.value.rule
    assert request_count(setup) == 1 and first.amount_cents == 15_000


def test_a_second_partial_click_may_take_only_what_the_first_left(setup):
    pay(setup, "click-1", amount="100.00")
    with pytest.raises(errors.AmountExceedsBalance) as caught:
        pay(setup, "click-2", amount="50.01")
    assert "50.00" in caught.value.rule
    assert pay(setup, "click-3", amount="50.00").created
    assert world.position(setup).collectable_cents == 0


def test_concurrent_clicks_on_one_account_collect_the_balance_once(setup):
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def click(key: str) -> None:
        barrier.wait()
        try:
            pay(setup, key, amount="150.00")
            outcomes.append("paid")
        except errors.NothingDue:
            outcomes.append("nothing due")

    threads = [threading.Thread(target=click, args=(f"race-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["nothing due", "paid"]
    assert request_count(setup) == 1


def test_repeating_a_click_with_its_key_returns_the_first_debit_and_writes_nothing(setup):
    first = pay(setup, "click-1", amount="150.00")
    again = pay(setup, "click-1", amount="150.00")
    assert not again.created and again.request_id == first.request_id and again.end_to_end_id == first.end_to_end_id
    with pytest.raises(errors.IdempotencyConflict):
        pay(setup, "click-1", amount="10.00")
    assert request_count(setup) == 1


def test_an_automatic_account_takes_no_payment_on_demand(setup):
    world.go_automatic(setup)
    with pytest.raises(errors.WrongCollectionMode) as caught:
        pay(setup, amount="10.00")
    assert caught.value.field == "collection_mode" and "schedule" in caught.value.rule


def test_no_usable_mandate_refuses_the_payment(db):
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1", mandate=None)
    world.entry(db, "F1", "100.00")
    with pytest.raises(errors.NoUsableMandate) as caught:
        pay(db, amount="10.00")
    assert caught.value.field == "mandate" and "no mandate" in caught.value.rule

    world.account(db, "pressimmo", "AG-2")
    world.entry(db, "F2", "100.00", reference="AG-2")
    with db.transaction() as s:
        registry.revoke_mandate(s, "pressimmo", "RUM-PRE-AG-2", reason="closed", clock=world.clock())
    with pytest.raises(errors.NoUsableMandate) as caught:
        pay(db, account="AG-2", amount="10.00")
    assert "is revoked" in caught.value.rule
    assert request_count(db) == 0


def test_paying_selected_invoices_names_them_and_takes_their_open_amounts(setup):
    result = pay(setup, invoices=("F2", "F1"))
    assert (result.amount_cents, result.invoices) == (15_000, (("F2", 5_000), ("F1", 10_000)))
    assert result.remittance == "Invoices F2, F1"


@pytest.mark.parametrize(
    ("invoices", "error", "rule"),
    [
        (("F9",), errors.NotFound, "is not an invoice of account AG-1"),
        (("F1", "F1"), errors.InvalidFormat, "is named twice"),
    ],
)
def test_a_selection_of_unknown_or_repeated_invoices_is_refused(setup, invoices, error, rule):
    with pytest.raises(error) as caught:
        pay(setup, invoices=invoices)
    assert caught.value.field == "invoices" and rule in caught.value.rule


def test_an_invoice_already_being_collected_cannot_be_selected_again(setup):
    pay(setup, "click-1", invoices=("F1",))
    with pytest.raises(errors.InvoiceNotPayable) as caught:
        pay(setup, "click-2", invoices=("F1",))
    assert caught.value.value == "F1" and "already being collected" in caught.value.rule
    assert pay(setup, "click-3", invoices=("F2",)).amount_cents == 5_000


def test_an_invoice_under_dispute_cannot_be_paid_nor_counted_in_the_balance(setup):
    with setup.transaction() as s:
        disputes.open_dispute(s, "pressimmo", "AG-1", DisputeInput.of("not ordered", "F1"), actor="portal",
                              idempotency_key="d1", clock=world.clock())
    with pytest.raises(errors.InvoiceNotPayable) as caught:
        pay(setup, invoices=("F1",))
    assert "under dispute" in caught.value.rule
    with pytest.raises(errors.AmountExceedsBalance):
        pay(setup, amount="50.01")


def test_a_payment_uses_the_accounts_mandate_in_force(setup):
    result = pay(setup, amount="10.00")
    with setup.reader() as s:
        request = s.get_one(DebitRequest, result.request_id)
        mandate = s.get_one(Mandate, request.mandate_id)
    assert mandate.reference == "RUM-PRE-AG-1" and mandate.status == "active"


# --- one customer, the creditors of a group ------------------------------------------------
@pytest.fixture
def group(db):  # type: ignore[no-untyped-def]
    for code in ("pressimmo", "belles-demeures", "poliris"):
        world.creditor(db, code)
        world.account(db, code, f"{code[:3].upper()}-77", customer="AGENCE-77")
        world.entry(db, f"{code[:3].upper()}-F1", "100.00", creditor_code=code, reference=f"{code[:3].upper()}-77")
        world.entry(db, f"{code[:3].upper()}-F2", "40.00", creditor_code=code, reference=f"{code[:3].upper()}-77")
    return db


def pay_group(db, key: str, *selections: tuple[str, tuple[str, ...]]) -> on_demand.GroupPaymentResult:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return on_demand.pay_across_creditors(
            s, GroupPaymentInput("AGENCE-77", tuple(GroupSelection(c, n) for c, n in selections)),
            idempotency_key=key, clock=world.clock(),
        )


def test_paying_invoices_across_creditors_makes_one_debit_per_creditor_under_its_own_mandate(group):
    result = pay_group(group, "basket-1", ("pressimmo", ("PRE-F1",)), ("poliris", ("POL-F1", "POL-F2")))
    assert result.created and result.amount_cents == 24_000
    assert [(p.creditor_code, p.account_reference, p.mandate_reference, p.amount_cents, p.remittance) for p in result.payments] == [
        ("pressimmo", "PRE-77", "RUM-PRE-PRE-77", 10_000, "Invoice PRE-F1"),
        ("poliris", "POL-77", "RUM-POL-POL-77", 14_000, "Invoices POL-F1, POL-F2"),
    ]
    with group.reader() as s:
        rows = s.execute(select(DebitRequest.creditor_id, DebitRequest.amount_cents).order_by(DebitRequest.id)).all()
    assert len({creditor for creditor, _ in rows}) == 2
    again = pay_group(group, "basket-1", ("pressimmo", ("PRE-F1",)), ("poliris", ("POL-F1", "POL-F2")))
    assert not again.created and [p.request_id for p in again.payments] == [p.request_id for p in result.payments]
    assert request_count(group) == 2


def test_a_refusal_at_one_creditor_of_the_group_creates_no_debit_at_all(group):
    with group.transaction() as s:
        disputes.open_dispute(s, "poliris", "POL-77", DisputeInput.of("wrong price", "POL-F2"), actor="portal",
                              idempotency_key="d1", clock=world.clock())
    with pytest.raises(errors.InvoiceNotPayable) as caught:
        pay_group(group, "basket-1", ("pressimmo", ("PRE-F1",)), ("belles-demeures", ("BEL-F1",)), ("poliris", ("POL-F2",)))
    assert caught.value.field == "selections[2].invoices"
    assert request_count(group) == 0


def test_creditors_outside_the_customers_group_cannot_be_paid_together(group):
    world.creditor(group, "other", group="another-group")
    world.account(group, "other", "OTH-77", customer="AGENCE-77")
    world.entry(group, "OTH-F1", "10.00", creditor_code="other", reference="OTH-77")
    with pytest.raises(errors.AccountError) as caught:
        pay_group(group, "basket-1", ("pressimmo", ("PRE-F1",)), ("other", ("OTH-F1",)))
    assert caught.value.field == "selections[1].creditor" and "same group" in caught.value.rule
    assert request_count(group) == 0


def test_a_creditor_where_the_customer_has_no_account_is_refused(group):
    world.creditor(group, "other")
    with pytest.raises(errors.NotFound) as caught:
        pay_group(group, "basket-1", ("other", ("X",)))
    assert caught.value.field == "selections[0].creditor"
