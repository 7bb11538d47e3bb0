"""What one bank record does to the ledger, decided without the ledger: decisions as data.

``decide`` takes the facts a record is applied to (the record, the debit, its mandate, the
reason code's policy for the creditor, the business day) and returns the effects, typed
frozen values, in the order they are carried out. Reconciliation has two executors of the
same list (``services/reconciliation.py``): the bulk one writes a chunk's effects in a few
statements, the record-by-record one through the ORM. A new effect of a reason code is a
change here (and, for a new kind of effect, one branch in each executor).

Pure: no database, no clock, no I/O. The one fact that costs a query (whether another
collection of the mandate is still at the bank) is asked for only when
``asks_others_at_bank`` says the decision depends on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sepa_engine.domain import calendar
from sepa_engine.domain.mandate import MandateStatus
from sepa_engine.domain.reason_codes import MandateEffect, ReasonCode
from sepa_engine.domain.statuses import RequestStatus, request_can_become


class Outcome(StrEnum):
    """What the bank says happened to one debit (the values of ``iso20022.returns.Kind``)."""

    REJECTED = "rejected"  # before settlement: nothing was booked
    RETURNED = "returned"  # after settlement, by the debtor bank
    REFUNDED = "refunded"  # after settlement, claimed by the debtor
    REVERSED = "reversed"  # after settlement, by the creditor or its bank
    SETTLED = "settled"  # the money came in

    def is_failure(self) -> bool:
        return self is not Outcome.SETTLED


_O = Outcome
_R = RequestStatus
TARGET_STATUS: dict[Outcome, RequestStatus] = {
    _O.REJECTED: _R.REJECTED,
    _O.RETURNED: _R.RETURNED,
    _O.REFUNDED: _R.REFUNDED,
    _O.REVERSED: _R.REVERSED,
    _O.SETTLED: _R.SETTLED,
}
# A failure that means "not paid now" may be presented again; a refund or a reversal never.
RETRIED = frozenset({_O.REJECTED, _O.RETURNED})
# Disputes are about money that paid invoices and came back.
DISPUTED = frozenset({_O.RETURNED, _O.REFUNDED})


@dataclass(frozen=True, slots=True)
class Record:
    outcome: Outcome
    reason_code: str | None = None
    fees_cents: int | None = None
    # The booking (or settlement) date the bank gave, if any.
    booked_on: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Debit:
    status: RequestStatus | str
    sequence_type: str | None
    attempt: int
    # The record's natural key (outcome + debit) was applied before, by this or another file.
    already_applied: bool = False
    # It carried amendment details, and the original creditor identifier among them, if any.
    amended: bool = False
    amended_creditor_identifier: str | None = None


@dataclass(frozen=True, slots=True)
class MandateState:
    status: MandateStatus | str
    status_reason: str | None
    first_collected: bool
    # Another collection of the mandate is at the bank or settled (asked only when
    # ``asks_others_at_bank``; False otherwise).
    others_at_bank: bool = False
    # A FNAL collection of the mandate was presented.
    final_collected: bool = False
    # Another collection of the mandate that carried amendment details is at the bank or
    # settled (asked only when ``asks_amendment_elsewhere``).
    amendment_elsewhere: bool = False


# --- effects ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AlreadyApplied:
    """Nothing to do: the fact was applied before (a replay, or details of a lump sum)."""


@dataclass(frozen=True, slots=True)
class QueueException:
    """A person decides: the record cannot be applied to this debit."""

    reason: str


@dataclass(frozen=True, slots=True)
class SetStatus:
    status: RequestStatus
    reason_code: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BookReturn:
    """The money is owed again: a returned-payment entry on the debtor's account."""

    on: dt.date


@dataclass(frozen=True, slots=True)
class BookFee:
    """The bank's charge for the R-transaction, passed on to the debtor's account."""

    cents: int
    on: dt.date


@dataclass(frozen=True, slots=True)
class ResetFirstCollection:
    """The first collection never happened: the next one is a first collection again."""


@dataclass(frozen=True, slots=True)
class ResetFinalCollection:
    """The final collection never happened: the mandate may carry it again."""


@dataclass(frozen=True, slots=True)
class CarryAmendment:
    """The amendment a rejected collection carried never reached the debtor bank: the next
    collection carries it again (issue 14 item 4). The mandate's amendment is pending once
    more and, when the creditor identifier changed, the bank is known to have seen the old
    one (``presented_creditor_identifier``)."""

    original_creditor_identifier: str | None


@dataclass(frozen=True, slots=True)
class BlockMandate:
    reason_code: str


@dataclass(frozen=True, slots=True)
class HoldMandate:
    """Hold the mandate: valid, but nothing collected on it until a person releases it
    (``MandateStatus.HELD``); its pending requests wait."""

    reason_code: str


@dataclass(frozen=True, slots=True)
class CancelPending:
    """Cancel the mandate's pending requests: it can carry none of them."""

    reason_code: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Present the debit again: a new collection, attempt ``attempt``, not before ``on``, with
    a pre-notification issued today (a re-presentation is a new collection, and the debtor
    is told of every collection: EPC016-06 SDD Core rulebook, pre-notification, 14 calendar
    days before the due date unless creditor and debtor agreed another period)."""

    attempt: int
    on: dt.date
    # The day its pre-notification is issued (the business day the failure is applied).
    notified_on: dt.date


@dataclass(frozen=True, slots=True)
class OpenDispute:
    """Open a dispute on the invoices the debit paid (none paid: nothing to dispute)."""

    reason_code: str
    meaning: str


Effect = (
    AlreadyApplied | QueueException | SetStatus | BookReturn | BookFee | ResetFirstCollection
    | ResetFinalCollection | CarryAmendment | BlockMandate | HoldMandate | CancelPending | Retry | OpenDispute
)

# Sequence types of a collection that uses the mandate up (OOFF) or ends it (FNAL): once one
# was settled, nothing more may be collected, so only a reject before settlement (nothing
# happened) lets it be presented again.
_LAST_OF_MANDATE = frozenset({"OOFF", "FNAL"})
# The default agreed notice between a pre-notification and its collection (EPC016-06).
DEFAULT_NOTICE_DAYS = 14


def _never_happened(record: Record, debit: Debit) -> bool:
    """The failure means the collection did not take place, for the mandate's history: a
    first collection rejected or returned (the next is FRST again, as the rulebook's
    sequence rules ask), a one-off collection rejected before settlement."""
    if debit.sequence_type == "FRST":
        return record.outcome in RETRIED
    return debit.sequence_type == "OOFF" and record.outcome is _O.REJECTED


def asks_others_at_bank(record: Record, debit: Debit, mandate: MandateState) -> bool:
    """Whether ``decide`` needs ``MandateState.others_at_bank`` for this record."""
    return mandate.first_collected and _never_happened(record, debit)


def asks_amendment_elsewhere(record: Record, debit: Debit) -> bool:
    """Whether ``decide`` needs ``MandateState.amendment_elsewhere`` for this record: a
    collection that carried an amendment was rejected. Only a reject: a collection settled
    (even if returned or refunded later) brought the amendment to the debtor bank."""
    return record.outcome is _O.REJECTED and debit.amended


def may_retry(record: Record, debit: Debit) -> bool:
    """A failure that may be presented again: a reject, or a return of a recurrent
    collection. An OOFF or FNAL collection that was settled (then returned) used the mandate
    up; a refund or a reversal is never presented again."""
    if record.outcome is _O.REJECTED:
        return True
    return record.outcome in RETRIED and debit.sequence_type not in _LAST_OF_MANDATE


def retry_date(today: dt.date, notice_days: int = DEFAULT_NOTICE_DAYS) -> dt.date:
    """The earliest date a re-presentation may ask for: the next TARGET day, and not before
    the agreed notice has run from the pre-notification issued ``today``. The collection
    run then moves it to the creditor's earliest possible collection date."""
    return max(calendar.add_target_days(today, 1), calendar.next_target_day(today + dt.timedelta(days=notice_days)))


def decide(
    record: Record, debit: Debit, mandate: MandateState | None, policy: ReasonCode | None, *, today: dt.date,
    notice_days: int = DEFAULT_NOTICE_DAYS,
) -> list[Effect]:
    """The effects of ``record`` on ``debit`` (and its mandate), in the order they apply.

    ``mandate`` and ``policy`` may be None for a settlement (nothing of them is read then).
    ``today`` is the creditor's business day, the date of a return booked without one and
    the day a retry's pre-notification is issued; ``notice_days`` is the creditor's agreed
    notice (``creditors.prenotification_days``).
    """
    if debit.already_applied or (record.outcome is _O.SETTLED and _R(debit.status) is _R.SETTLED):
        return [AlreadyApplied()]
    target = TARGET_STATUS[record.outcome]
    if not request_can_become(debit.status, target):
        return [QueueException(f"is {_R(debit.status).value}: it cannot become {target.value}")]
    if not record.outcome.is_failure():
        return [SetStatus(target)]
    assert mandate is not None and policy is not None, "a failure is decided on its mandate and policy"
    effects: list[Effect] = [
        SetStatus(target, policy.code or None, f"{record.outcome.value} by the bank: {policy.meaning}"[:1000]),
    ]
    on = record.booked_on or today
    effects.append(BookReturn(on))
    if record.fees_cents:
        effects.append(BookFee(record.fees_cents, on))
    if asks_others_at_bank(record, debit, mandate) and not mandate.others_at_bank:
        effects.append(ResetFirstCollection())
    if debit.sequence_type == "FNAL" and record.outcome is _O.REJECTED and mandate.final_collected:
        effects.append(ResetFinalCollection())
    if asks_amendment_elsewhere(record, debit) and not mandate.amendment_elsewhere:
        effects.append(CarryAmendment(debit.amended_creditor_identifier))
    status, reason = MandateStatus(mandate.status), mandate.status_reason
    if policy.mandate_effect is MandateEffect.BLOCK and status is not MandateStatus.BLOCKED:
        # A revoked or superseded mandate has nothing left to block.
        if status.can_transition_to(MandateStatus.BLOCKED):
            effects.append(BlockMandate(policy.code))
            status, reason = MandateStatus.BLOCKED, policy.code
    elif policy.mandate_effect is MandateEffect.HOLD and status is MandateStatus.ACTIVE:
        # Only an active mandate is held: a blocked, revoked or superseded one carries
        # nothing to hold, a held one is held already.
        effects.append(HoldMandate(policy.code))
        status = MandateStatus.HELD
    if status is MandateStatus.BLOCKED:
        effects.append(CancelPending(reason, f"mandate blocked ({reason})"))
    elif may_retry(record, debit) and policy.retry_allowed and debit.attempt <= policy.max_retries:
        effects.append(Retry(debit.attempt + 1, retry_date(today, notice_days), today))
    if policy.opens_dispute and record.outcome in DISPUTED:
        effects.append(OpenDispute(policy.code, policy.meaning))
    return effects
