"""``decide`` without a database: every reason code, every failure, the creditor's policies."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from sepa_engine.domain import reason_codes
from sepa_engine.domain import return_decisions as d
from sepa_engine.domain.mandate import MandateStatus
from sepa_engine.domain.reason_codes import MandateEffect

TODAY = dt.date(2026, 12, 4)  # a Friday
NEXT_TARGET_DAY = dt.date(2026, 12, 7)
# Fourteen calendar days after the pre-notification issued today (a Friday, a TARGET day).
RETRY_ON = dt.date(2026, 12, 18)
BOOKED = dt.date(2026, 12, 2)
ACTIVE = d.MandateState(MandateStatus.ACTIVE, None, first_collected=True)
SUBMITTED = d.Debit("submitted", "RCUR", attempt=1)
FAILURES = [o for o in d.Outcome if o.is_failure()]
CODES = sorted(reason_codes.REASON_CODES)


def _kinds(effects):
    return [type(e) for e in effects]


def _decide(code, outcome=d.Outcome.REJECTED, debit=SUBMITTED, mandate=ACTIVE, policy=None, fees=None, booked=BOOKED):
    record = d.Record(outcome, code, fees, booked)
    return d.decide(record, debit, mandate, policy or reason_codes.lookup(code), today=TODAY)


@pytest.mark.parametrize("outcome", FAILURES)
@pytest.mark.parametrize("code", CODES + ["ZZ99", None])
def test_every_failure_sets_the_status_books_the_return_and_follows_the_codes_policy(code, outcome):
    policy = reason_codes.lookup(code)
    effects = _decide(code, outcome)

    assert effects[0] == d.SetStatus(
        d.TARGET_STATUS[outcome], policy.code or None, f"{outcome.value} by the bank: {policy.meaning}"
    )
    assert effects[1] == d.BookReturn(BOOKED)
    blocks = policy.mandate_effect is MandateEffect.BLOCK
    assert (d.BlockMandate(policy.code) in effects) is blocks
    assert (d.CancelPending(policy.code, f"mandate blocked ({policy.code})") in effects) is blocks
    holds = policy.mandate_effect is MandateEffect.HOLD
    assert (d.HoldMandate(policy.code) in effects) is holds
    retried = not blocks and policy.max_retries >= 1 and outcome in (d.Outcome.REJECTED, d.Outcome.RETURNED)
    assert (d.Retry(2, RETRY_ON, TODAY) in effects) is retried
    disputed = policy.opens_dispute and outcome in (d.Outcome.RETURNED, d.Outcome.REFUNDED)
    assert (d.OpenDispute(policy.code, policy.meaning) in effects) is disputed
    # A recurrent collection that failed leaves the first collection as it was.
    assert d.ResetFirstCollection() not in effects


@pytest.mark.parametrize("code", [c for c in CODES if reason_codes.REASON_CODES[c].retry_allowed])
@pytest.mark.parametrize("max_retries", [1, 2, 5])
def test_a_soft_code_is_retried_up_to_the_creditors_max_retries_and_never_after(code, max_retries):
    policy = dataclasses.replace(reason_codes.lookup(code), max_retries=max_retries, retry_allowed=True)
    for attempt in range(1, max_retries + 1):
        effects = _decide(code, debit=dataclasses.replace(SUBMITTED, attempt=attempt), policy=policy)
        assert d.Retry(attempt + 1, RETRY_ON, TODAY) in effects
    last = _decide(code, debit=dataclasses.replace(SUBMITTED, attempt=max_retries + 1), policy=policy)
    assert not any(isinstance(e, d.Retry) for e in last)


@pytest.mark.parametrize("code", CODES)
def test_a_creditor_that_sets_no_effect_and_no_dispute_gets_only_the_status_and_the_return(code):
    policy = dataclasses.replace(
        reason_codes.lookup(code), mandate_effect=MandateEffect.NONE, max_retries=0, retry_allowed=False,
        opens_dispute=False,
    )
    for outcome in FAILURES:
        assert _kinds(_decide(code, outcome, policy=policy)) == [d.SetStatus, d.BookReturn]


def test_a_fee_is_booked_after_the_return_on_the_same_day():
    effects = _decide("AM04", d.Outcome.RETURNED, fees=350)
    assert effects[1:3] == [d.BookReturn(BOOKED), d.BookFee(350, BOOKED)]


def test_a_return_without_booking_date_is_booked_on_the_creditors_business_day():
    assert _decide("AM04", booked=None)[1] == d.BookReturn(TODAY)


@pytest.mark.parametrize("outcome", [d.Outcome.REJECTED, d.Outcome.RETURNED])
def test_a_failed_first_collection_resets_the_first_collection_when_no_other_is_at_the_bank(outcome):
    frst = dataclasses.replace(SUBMITTED, sequence_type="FRST")
    assert d.asks_others_at_bank(d.Record(outcome, "AM04"), frst, ACTIVE)
    assert d.ResetFirstCollection() in _decide("AM04", outcome, debit=frst)
    others = dataclasses.replace(ACTIVE, others_at_bank=True)
    assert d.ResetFirstCollection() not in _decide("AM04", outcome, debit=frst, mandate=others)


@pytest.mark.parametrize("outcome", [d.Outcome.REFUNDED, d.Outcome.REVERSED])
def test_a_refunded_or_reversed_first_collection_counts_as_collected(outcome):
    frst = dataclasses.replace(SUBMITTED, sequence_type="FRST")
    assert not d.asks_others_at_bank(d.Record(outcome, "MD06"), frst, ACTIVE)
    assert d.ResetFirstCollection() not in _decide("MD06", outcome, debit=frst)


def test_a_blocked_mandate_cancels_pending_requests_under_its_own_reason_and_is_never_retried():
    blocked = d.MandateState(MandateStatus.BLOCKED, "AC04", first_collected=True)
    effects = _decide("AM04", mandate=blocked)
    assert d.CancelPending("AC04", "mandate blocked (AC04)") in effects
    assert not any(isinstance(e, (d.Retry, d.BlockMandate)) for e in effects)


@pytest.mark.parametrize("status", [MandateStatus.REVOKED, MandateStatus.SUPERSEDED])
def test_a_hard_code_on_a_mandate_already_ended_blocks_nothing(status):
    effects = _decide("AC04", mandate=d.MandateState(status, None, first_collected=True))
    assert not any(isinstance(e, (d.BlockMandate, d.CancelPending)) for e in effects)


def test_a_record_already_applied_does_nothing():
    assert _decide("AM04", debit=dataclasses.replace(SUBMITTED, already_applied=True)) == [d.AlreadyApplied()]


def test_details_of_a_settlement_a_lump_sum_already_settled_do_nothing():
    record = d.Record(d.Outcome.SETTLED)
    assert d.decide(record, d.Debit("settled", "RCUR", 1), None, None, today=TODAY) == [d.AlreadyApplied()]
    assert d.decide(record, SUBMITTED, None, None, today=TODAY) == [d.SetStatus(d.TARGET_STATUS[d.Outcome.SETTLED])]


@pytest.mark.parametrize("status", ["pending", "rejected", "cancelled", "refunded"])
def test_a_failure_of_a_debit_that_cannot_take_it_goes_to_a_person(status):
    (effect,) = _decide("AM04", d.Outcome.RETURNED, debit=dataclasses.replace(SUBMITTED, status=status))
    assert effect == d.QueueException(f"is {status}: it cannot become returned")


def test_a_refund_holds_an_active_mandate_without_cancelling_its_pending_requests():
    effects = _decide("MD06", d.Outcome.REFUNDED)
    assert d.HoldMandate("MD06") in effects
    assert not any(isinstance(e, (d.CancelPending, d.BlockMandate, d.Retry)) for e in effects)


@pytest.mark.parametrize("status", [MandateStatus.HELD, MandateStatus.BLOCKED, MandateStatus.REVOKED])
def test_a_refund_holds_nothing_but_an_active_mandate(status):
    effects = _decide("MD06", d.Outcome.REFUNDED, mandate=d.MandateState(status, "AC04", first_collected=True))
    assert not any(isinstance(e, d.HoldMandate) for e in effects)


def test_a_hard_code_on_a_held_mandate_blocks_it():
    held = d.MandateState(MandateStatus.HELD, "MD06", first_collected=True)
    effects = _decide("AC04", d.Outcome.RETURNED, mandate=held)
    assert d.BlockMandate("AC04") in effects
    assert d.CancelPending("AC04", "mandate blocked (AC04)") in effects


def test_a_soft_code_on_a_held_mandate_retries_the_debit_which_waits_for_the_release():
    held = d.MandateState(MandateStatus.HELD, "MD06", first_collected=True)
    assert d.Retry(2, RETRY_ON, TODAY) in _decide("AM04", mandate=held)



# --- retries: notice, sequence types ----------------------------------------------------------
@pytest.mark.parametrize(("notice_days", "on"), [
    (14, dt.date(2026, 12, 18)),
    (5, dt.date(2026, 12, 9)),
    (0, NEXT_TARGET_DAY),  # no notice agreed: the next TARGET day, never today
    (1, NEXT_TARGET_DAY),  # Saturday 5 December is no TARGET day
    (21, dt.date(2026, 12, 28)),  # 25 and 26 December are TARGET holidays, 27 a Sunday
])
def test_a_retry_asks_for_a_date_the_creditors_agreed_notice_allows(notice_days, on):
    record = d.Record(d.Outcome.REJECTED, "AM04")
    effects = d.decide(record, SUBMITTED, ACTIVE, reason_codes.lookup("AM04"), today=TODAY, notice_days=notice_days)
    assert d.Retry(2, on, TODAY) in effects


@pytest.mark.parametrize("sequence", ["OOFF", "FNAL"])
def test_a_one_off_or_final_collection_rejected_before_settlement_is_retried(sequence):
    debit = dataclasses.replace(SUBMITTED, sequence_type=sequence)
    used = dataclasses.replace(ACTIVE, final_collected=sequence == "FNAL")
    effects = _decide("AM04", d.Outcome.REJECTED, debit=debit, mandate=used)
    assert d.Retry(2, RETRY_ON, TODAY) in effects
    # The collection never happened: the mandate may carry it again.
    reset = d.ResetFirstCollection() if sequence == "OOFF" else d.ResetFinalCollection()
    assert reset in effects


@pytest.mark.parametrize("sequence", ["OOFF", "FNAL"])
@pytest.mark.parametrize("outcome", [d.Outcome.RETURNED, d.Outcome.REFUNDED, d.Outcome.REVERSED])
def test_a_one_off_or_final_collection_is_never_retried_after_settlement(sequence, outcome):
    debit = dataclasses.replace(SUBMITTED, sequence_type=sequence)
    used = dataclasses.replace(ACTIVE, final_collected=sequence == "FNAL")
    effects = _decide("AM04", outcome, debit=debit, mandate=used)
    assert not any(isinstance(e, (d.Retry, d.ResetFirstCollection, d.ResetFinalCollection)) for e in effects)


def test_a_rejected_one_off_collection_keeps_the_mandate_used_while_another_is_at_the_bank():
    debit = dataclasses.replace(SUBMITTED, sequence_type="OOFF")
    assert d.asks_others_at_bank(d.Record(d.Outcome.REJECTED, "AM04"), debit, ACTIVE)
    effects = _decide("AM04", debit=debit, mandate=dataclasses.replace(ACTIVE, others_at_bank=True))
    assert d.ResetFirstCollection() not in effects


# --- amendments carried until a collection carrying them settles ------------------------------
AMENDED = dataclasses.replace(SUBMITTED, amended=True, amended_creditor_identifier="FR11ZZZ999999")


def test_a_rejected_collection_that_carried_an_amendment_carries_it_again():
    assert d.asks_amendment_elsewhere(d.Record(d.Outcome.REJECTED, "AM04"), AMENDED)
    assert d.CarryAmendment("FR11ZZZ999999") in _decide("AM04", debit=AMENDED)


def test_the_amendment_is_not_carried_again_while_another_collection_carrying_it_is_at_the_bank():
    elsewhere = dataclasses.replace(ACTIVE, amendment_elsewhere=True)
    assert not any(isinstance(e, d.CarryAmendment) for e in _decide("AM04", debit=AMENDED, mandate=elsewhere))


@pytest.mark.parametrize("outcome", [d.Outcome.RETURNED, d.Outcome.REFUNDED, d.Outcome.REVERSED])
def test_a_settled_collection_brought_its_amendment_to_the_bank_whatever_happened_after(outcome):
    assert not d.asks_amendment_elsewhere(d.Record(outcome, "AM04"), AMENDED)
    assert not any(isinstance(e, d.CarryAmendment) for e in _decide("AM04", outcome, debit=AMENDED))


def test_a_collection_without_amendment_carries_none_after_a_reject():
    assert not any(isinstance(e, d.CarryAmendment) for e in _decide("AM04"))
