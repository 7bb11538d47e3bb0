"""Disputes: contested invoices are not collected; the follow-up is kept with who and when."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from sepa_engine import errors
from sepa_engine.clock import FixedClock
from sepa_engine.db.models import LedgerEntry
from sepa_engine.services import disputes, statements
from sepa_engine.services.account_inputs import DisputedInvoice, DisputeInput, DisputeTransitionInput
from tests import accounts_world as world

D = dt.date
LATER = FixedClock(world.NOW + dt.timedelta(days=3))


@pytest.fixture
def setup(db):  # type: ignore[no-untyped-def]
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00", issued=D(2026, 9, 1))
    world.entry(db, "F2", "50.00", issued=D(2026, 10, 1))
    world.entry(db, "F3", "20.00", issued=D(2026, 10, 5))
    return db


def open_(db, *lines: DisputedInvoice | str, key: str = "d1", reason: str = "services not delivered") -> disputes.DisputeView:  # type: ignore[no-untyped-def]
    data = DisputeInput(reason, tuple(DisputedInvoice(line) if isinstance(line, str) else line for line in lines))
    with db.transaction() as s:
        return disputes.open_dispute(s, "pressimmo", "AG-1", data, actor="portal:jeanne", idempotency_key=key, clock=world.clock())


def move(db, dispute_id: int, status: str, key: str, *, actor: str = "backoffice:paul", **extra: object) -> disputes.DisputeView:  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        return disputes.transition_dispute(
            s, "pressimmo", dispute_id, DisputeTransitionInput(status=status, **extra), actor=actor,  # type: ignore[arg-type]
            idempotency_key=key, clock=LATER,
        )


def test_a_dispute_on_several_invoices_holds_them_back_from_collection(setup):
    dispute = open_(setup, "F1", "F2")
    assert (dispute.status, dispute.invoices, dispute.amount_cents) == ("open", (("F1", 10_000), ("F2", 5_000)), 15_000)
    assert [(e.status, e.actor, e.at) for e in dispute.history] == [("open", "portal:jeanne", world.NOW)]
    position = world.position(setup)
    assert (position.balance_due_cents, position.held_cents, position.collectable_cents) == (17_000, 15_000, 2_000)


def test_a_part_of_an_invoice_may_be_disputed(setup):
    dispute = open_(setup, DisputedInvoice("F1", "30.00"))
    assert dispute.invoices == (("F1", 3_000),)
    assert world.position(setup).collectable_cents == 14_000


def test_the_follow_up_keeps_every_status_with_who_and_when(setup):
    dispute = open_(setup, "F1")
    move(setup, dispute.id, "under_review", "t1", note="asked the sales team")
    done = move(setup, dispute.id, "rejected", "t2", actor="backoffice:anne")
    assert [(e.status, e.actor, e.at, e.note) for e in done.history] == [
        ("open", "portal:jeanne", world.NOW, None),
        ("under_review", "backoffice:paul", LATER.now(), "asked the sales team"),
        ("rejected", "backoffice:anne", LATER.now(), None),
    ]
    # Rejected: the invoice is collectable again.
    assert world.position(setup).collectable_cents == 17_000


def test_accepting_a_dispute_books_a_credit_note_that_settles_the_disputed_invoices(setup):
    dispute = open_(setup, "F2", DisputedInvoice("F3", "5.00"))
    accepted = move(setup, dispute.id, "accepted", "t1")
    assert accepted.status == "accepted" and accepted.credit_note == f"D-{dispute.id}"
    with setup.reader() as s:
        note = s.scalars(select(LedgerEntry).where(LedgerEntry.kind == "credit_note")).one()
        unpaid = statements.statement(s, "pressimmo", "AG-1", clock=world.clock())
    assert (note.amount_cents, note.dispute_id) == (5_500, dispute.id)
    assert [(line.number, line.open_cents) for line in unpaid.lines] == [("F1", 10_000), ("F3", 1_500)]
    position = world.position(setup)
    assert (position.balance_due_cents, position.held_cents, position.collectable_cents) == (11_500, 0, 11_500)


def test_the_credit_note_may_carry_the_creditors_own_number(setup):
    dispute = open_(setup, "F3")
    assert move(setup, dispute.id, "accepted", "t1", credit_note_number="AV-2026-001").credit_note == "AV-2026-001"
    other = open_(setup, "F2", key="d2")
    with pytest.raises(errors.DuplicateIdentifier):
        move(setup, other.id, "accepted", "t2", credit_note_number="AV-2026-001")


def test_open_is_not_a_status_a_dispute_is_moved_to_and_the_input_says_which_are():
    with pytest.raises(errors.InvalidFormat) as caught:
        DisputeTransitionInput(status="open")
    assert caught.value.field == "status" and caught.value.rule == "must be one of under_review, accepted, rejected"


@pytest.mark.parametrize(("first", "then"), [("rejected", "accepted"), ("accepted", "under_review")])
def test_transitions_outside_the_table_are_refused_and_change_nothing(setup, first, then):
    dispute = open_(setup, "F1")
    move(setup, dispute.id, first, "t1")
    with pytest.raises(errors.DisputeError) as caught:
        move(setup, dispute.id, then, "t2")
    assert caught.value.field == "status" and first in caught.value.rule
    with setup.reader() as s:
        assert disputes.get_dispute(s, "pressimmo", dispute.id).status == first


@pytest.mark.parametrize(
    ("lines", "error", "field"),
    [
        (("F9",), errors.NotFound, "invoices[0]"),
        (("F1", "F1"), errors.InvalidFormat, "invoices[1]"),
        ((DisputedInvoice("F3", "20.01"),), errors.InvalidAmount, "invoices[0].amount"),
        ((DisputedInvoice("F3", "0"),), errors.InvalidAmount, "invoices[0].amount"),
    ],
)
def test_disputes_on_unknown_repeated_or_overstated_invoices_are_refused(setup, lines, error, field):
    with pytest.raises(error) as caught:
        open_(setup, *lines)
    assert caught.value.field == field


def test_an_invoice_cannot_be_in_two_open_disputes(setup):
    first = open_(setup, "F1")
    with pytest.raises(errors.DisputeError) as caught:
        open_(setup, "F2", "F1", key="d2")
    assert caught.value.field == "invoices[1]" and f"dispute {first.id}" in caught.value.rule
    move(setup, first.id, "rejected", "t1")
    assert open_(setup, "F1", key="d3").status == "open"


def test_repeating_a_dispute_call_with_its_key_returns_the_first_result(setup):
    first = open_(setup, "F1")
    again = open_(setup, "F1")
    assert (again.id, again.created) == (first.id, False)
    with pytest.raises(errors.IdempotencyConflict):
        open_(setup, "F2")
    moved = move(setup, first.id, "under_review", "t1")
    replay = move(setup, first.id, "under_review", "t1")
    assert moved.created and not replay.created and len(replay.history) == 2
    with pytest.raises(errors.IdempotencyConflict):
        move(setup, first.id, "rejected", "t1")


def test_disputes_are_listed_per_creditor_account_and_status(setup):
    world.creditor(setup, "poliris")
    first = open_(setup, "F1")
    open_(setup, "F2", key="d2")
    move(setup, first.id, "accepted", "t1")
    with setup.reader() as s:
        assert [d.id for d in disputes.list_disputes(s, "pressimmo", status="open")] == [first.id + 1]
        assert len(disputes.list_disputes(s, "pressimmo", account_reference="AG-1")) == 2
        assert disputes.list_disputes(s, "poliris") == ()
        with pytest.raises(errors.NotFound):
            disputes.get_dispute(s, "poliris", first.id)
        with pytest.raises(errors.InvalidFormat):
            disputes.list_disputes(s, "pressimmo", status="closed")
