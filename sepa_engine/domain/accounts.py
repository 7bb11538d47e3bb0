"""Customer accounts: ledger arithmetic, allocation of credits to invoices, dispute and
collection-mode rules, and the periods of the automatic schedule.

Pure computation: the repositories load rows, these functions decide, the services persist.

Signs. Every ledger amount is stored positive; its kind says which way it moves the
balance. The balance due is::

    invoices + returned payments + fees - credit notes - payments

Allocation (lettrage) is derived, never stored: ``allocate`` replays every credit (payments,
credit notes) over the open items (invoices, fees) in booking order. A credit first goes
to the items it names (the invoices a debit request selected, the invoices a dispute's
credit note settles), then to the oldest open items that are not held by a dispute. A
returned payment lowers the credit of the payment it returns. Deriving it keeps the
statement consistent with the balance whatever order rows arrive in, with no stored
state to repair.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from sepa_engine import errors
from sepa_engine.domain import calendar, charset
from sepa_engine.domain.mandate import add_months

# Pre-notification lead time the EPC rulebook sets unless creditor and debtor agree otherwise.
DEFAULT_PRENOTIFICATION_DAYS = 14
MAX_PRENOTIFICATION_DAYS = 60
# Day 28 at most: every month has it, so "monthly on the 31st" never needs a rule.
MAX_SCHEDULE_DAY = 28
STATEMENT_MONTHS = 12


# --- ledger entries ------------------------------------------------------------------------
class EntryKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    PAYMENT = "payment"
    RETURNED_PAYMENT = "returned_payment"
    FEE = "fee"

    @property
    def sign(self) -> int:
        """+1 when the entry raises what the customer owes, -1 when it lowers it."""
        return -1 if self in (EntryKind.CREDIT_NOTE, EntryKind.PAYMENT) else 1

    def is_item(self) -> bool:
        """A document the customer pays (and may select or dispute)."""
        return self in (EntryKind.INVOICE, EntryKind.FEE)

    def is_recorded_upstream(self) -> bool:
        """Kinds a creditor records directly; payments come from debits, returns from the bank."""
        return self in (EntryKind.INVOICE, EntryKind.CREDIT_NOTE, EntryKind.FEE)


def entry_kind(value: str, field_name: str = "kind") -> EntryKind:
    try:
        return EntryKind(value)
    except ValueError:
        allowed = ", ".join(kind.value for kind in EntryKind)
        raise errors.InvalidFormat(field_name, value, f"must be one of {allowed}") from None


# By stored value: the gate sums an account's whole ledger for every debit it admits, and
# making an enum of each entry's kind cost more than the sum itself (cProfile of the API).
_SIGN_OF_VALUE = {kind.value: kind.sign for kind in EntryKind}
ITEM_KINDS = frozenset(kind.value for kind in EntryKind if kind.is_item())


def balance_due(amounts: Iterable[tuple[EntryKind | str, int]]) -> int:
    """Sum of ``(kind, cents)`` pairs with the sign of their kind."""
    return sum(_sign(kind) * cents for kind, cents in amounts)


def _sign(kind: EntryKind | str) -> int:
    sign = _SIGN_OF_VALUE.get(kind)
    # A member finds its value's sign too (a StrEnum member hashes and compares as its value);
    # EntryKind refuses an unknown kind, as before.
    return EntryKind(kind).sign if sign is None else sign


def running_balances(signed: Iterable[int], opening: int = 0) -> list[int]:
    """The balance after each signed amount, starting from ``opening``."""
    result: list[int] = []
    balance = opening
    for cents in signed:
        balance += cents
        result.append(balance)
    return result


def statement_window_start(today: dt.date) -> dt.date:
    """First day a full statement covers: the same day twelve months earlier."""
    return add_months(today, -STATEMENT_MONTHS)


# --- allocation ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Item:
    """An invoice or a fee, in the order "oldest first" is decided by."""

    id: int
    issue_date: dt.date
    amount_cents: int
    # Under an open dispute: credits that do not name it pass it by.
    held: bool = False


@dataclass(frozen=True, slots=True)
class Credit:
    """A payment (net of its returns) or a credit note, with the items it names first."""

    id: int
    amount_cents: int
    preferred: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Allocation:
    # item id -> cents applied to it; credit id -> cents of it left unapplied.
    paid: Mapping[int, int]
    unapplied: Mapping[int, int]
    # (credit id, item id, cents) in the order the replay applied them.
    pairs: tuple[tuple[int, int, int], ...] = field(default=())

    def open_cents(self, item: Item) -> int:
        return item.amount_cents - self.paid.get(item.id, 0)

    @property
    def unapplied_cents(self) -> int:
        return sum(self.unapplied.values())


def allocate(items: Sequence[Item], credits: Sequence[Credit]) -> Allocation:
    """Replay ``credits`` (in the order given: booking order) over ``items``."""
    remaining = {item.id: item.amount_cents for item in items}
    # Held items are passed by; so are the oldest ones once settled, since what an item still
    # owes only ever goes down: ``first_open`` moves past them, so replaying a long history
    # does not walk every settled item again for each credit.
    oldest_first = [item for item in sorted(items, key=lambda item: (item.issue_date, item.id)) if not item.held]
    first_open = 0
    pairs: list[tuple[int, int, int]] = []
    unapplied: dict[int, int] = {}
    for credit in credits:
        left = max(credit.amount_cents, 0)
        for item_id, cents in credit.preferred:
            if left == 0:
                break
            take = min(left, max(cents, 0), remaining.get(item_id, 0))
            if take > 0:
                remaining[item_id] -= take
                left -= take
                pairs.append((credit.id, item_id, take))
        while first_open < len(oldest_first) and remaining[oldest_first[first_open].id] <= 0:
            first_open += 1
        for item in oldest_first[first_open:]:
            if left == 0:
                break
            take = min(left, remaining[item.id])
            if take > 0:
                remaining[item.id] -= take
                left -= take
                pairs.append((credit.id, item.id, take))
        if left:
            unapplied[credit.id] = left
    paid = {item.id: item.amount_cents - remaining[item.id] for item in items}
    return Allocation(MappingProxyType(paid), MappingProxyType(unapplied), tuple(pairs))


# What ``allocate`` gives the newest items, from sums. The gate needs what an invoice a request
# carries still owes; replaying the account's history for it cost every such request more as
# the account aged (BENCHMARKS.md, "The newest invoice from sums").
def unapplied_without_holds(balance_due_cents: int, unmatched_returns_cents: int) -> int:
    """What ``allocate`` leaves unapplied over a ledger where no dispute holds an item.

    There a credit keeps something unapplied only once every item is settled, and a settled
    item stays settled, so the replay leaves the credits' total (each credit at least zero)
    less the items' total, when positive. In the ledger's sums that is minus the balance due,
    plus the returned cents that lower no credit: a return whose payment is not in the
    account, or the part of a payment's returns above the payment (a credit is never below
    zero, so such cents raise the balance without lowering any credit)."""
    return max(unmatched_returns_cents - balance_due_cents, 0)


def newest_items_open(unapplied_cents: int, amounts: Sequence[int]) -> list[int]:
    """What items still owe, given in "oldest first" order, that come after every other item
    in that order, that no credit names and that no dispute holds, when the replay without
    them leaves ``unapplied_cents`` unapplied.

    Such an item is only reached by what a credit has left once every item before it is
    settled, which is what the replay without it would leave unapplied; it takes that, and
    every other item is paid as before. So they take the unapplied credit in order."""
    left = max(unapplied_cents, 0)
    owed: list[int] = []
    for cents in amounts:
        take = min(left, cents)
        owed.append(cents - take)
        left -= take
    return owed


# --- what can be collected -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Position:
    """What an account owes and how much of it a new debit may take."""

    balance_due_cents: int
    # Open amounts of items under an open dispute (at most what was disputed).
    held_cents: int
    # Requested by debits that are not final and not yet booked as payments.
    in_flight_cents: int

    @property
    def collectable_cents(self) -> int:
        return max(self.balance_due_cents - self.held_cents - self.in_flight_cents, 0)


def held_cents(items: Sequence[Item], allocation: Allocation, disputed: Mapping[int, int]) -> int:
    """For each held item, the smaller of its disputed amount and what is still open."""
    return sum(
        min(disputed.get(item.id, item.amount_cents), max(allocation.open_cents(item), 0))
        for item in items
        if item.held
    )


def invoices_remittance(numbers: Sequence[str]) -> str:
    """Remittance text naming the invoices a debit pays, in the SEPA set, at most 140 characters."""
    label = "Invoice" if len(numbers) == 1 else "Invoices"
    return charset.to_sepa_text(f"{label} {', '.join(numbers)}", charset.REMITTANCE_MAX)


# --- disputes ------------------------------------------------------------------------------
class DisputeStatus(StrEnum):
    OPEN = "open"                  # declared by the customer; its invoices are not collected
    UNDER_REVIEW = "under_review"  # the creditor is looking at it; still not collected
    ACCEPTED = "accepted"          # a credit note cancels the disputed amount
    REJECTED = "rejected"          # the invoices are due again

    def holds_invoices(self) -> bool:
        return self in (DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW)

    def is_final(self) -> bool:
        return not _DISPUTE_TRANSITIONS[self]


_D = DisputeStatus
_DISPUTE_TRANSITIONS = MappingProxyType(
    {
        _D.OPEN: frozenset({_D.UNDER_REVIEW, _D.ACCEPTED, _D.REJECTED}),
        _D.UNDER_REVIEW: frozenset({_D.ACCEPTED, _D.REJECTED}),
        _D.ACCEPTED: frozenset(),
        _D.REJECTED: frozenset(),
    }
)


def dispute_status(value: str, field_name: str = "status") -> DisputeStatus:
    try:
        return DisputeStatus(value)
    except ValueError:
        allowed = ", ".join(status.value for status in DisputeStatus)
        raise errors.InvalidFormat(field_name, value, f"must be one of {allowed}") from None


def dispute_transition(current: DisputeStatus | str, new: DisputeStatus | str) -> DisputeStatus:
    """The one place dispute transitions are decided."""
    cur, nxt = dispute_status(str(current), "dispute.status"), dispute_status(str(new))
    if nxt not in _DISPUTE_TRANSITIONS[cur]:
        raise errors.DisputeError("status", nxt.value, f"cannot follow {cur.value}")
    return nxt


# --- collection modes and the schedule -----------------------------------------------------
class CollectionMode(StrEnum):
    ON_DEMAND = "on_demand"  # the customer asks for each debit ("pay my balance")
    AUTOMATIC = "automatic"  # the schedule debits the balance each period


class Frequency(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"

    @property
    def months(self) -> int:
        return 1 if self is Frequency.MONTHLY else 3


def collection_mode(value: str, field_name: str = "mode") -> CollectionMode:
    try:
        return CollectionMode(value)
    except ValueError:
        allowed = ", ".join(mode.value for mode in CollectionMode)
        raise errors.InvalidFormat(field_name, value, f"must be one of {allowed}") from None


def frequency(value: str, field_name: str = "frequency") -> Frequency:
    try:
        return Frequency(value)
    except ValueError:
        allowed = ", ".join(f.value for f in Frequency)
        raise errors.InvalidFormat(field_name, value, f"must be one of {allowed}") from None


def check_mode_change(current: CollectionMode, new: CollectionMode, *, new_mandate: bool) -> None:
    """On demand -> automatic needs a new electronically signed mandate, given in the same call.

    The debtor agrees to periodic debits by signing; a mandate signed for debits on demand
    does not say so. Automatic -> on demand is the creditor's decision and needs nothing.
    """
    if current is CollectionMode.ON_DEMAND and new is CollectionMode.AUTOMATIC and not new_mandate:
        raise errors.WrongCollectionMode(
            "mandate", None, "is required: switching to automatic needs a new electronically signed mandate"
        )


# Actors of the creditor's own staff name themselves "staff:<name>" (CLI ``--actor``); every
# other actor (a portal, a customer, an API token) acts for the customer.
STAFF_PREFIX = "staff:"
REASON_MAX = 140


def is_staff(actor: str) -> bool:
    return actor.startswith(STAFF_PREFIX) and len(actor) > len(STAFF_PREFIX)


def check_leaving_automatic(current: CollectionMode, new: CollectionMode, *, actor: str, reason: str | None) -> None:
    """Only the creditor's staff may take an account out of automatic mode, with a reason.

    The portal tells the customer who chose automatic debits "Vous ne pourrez pas changer de
    mode de prélèvement" (../shared/context/portal-payment-modes.fr.txt): a portal or customer
    actor is refused; the staff's reason goes into the account's change history.
    """
    if current is not CollectionMode.AUTOMATIC or new is CollectionMode.AUTOMATIC:
        return
    if not is_staff(actor):
        raise errors.WrongCollectionMode(
            "mode", new.value,
            f"cannot be chosen by {actor!r}: an automatic account leaves automatic mode only by the creditor's staff "
            f"(actor {STAFF_PREFIX}<name>)",
        )
    if reason is None or not reason.strip():
        raise errors.InvalidFormat("reason", None, "is required to leave automatic mode: say why, for the history")
    if len(reason) > REASON_MAX:
        raise errors.InvalidLength("reason", reason, f"is longer than {REASON_MAX} characters")


def check_schedule_day(day: object, field_name: str = "day") -> int:
    if isinstance(day, bool) or not isinstance(day, int):
        raise errors.InvalidFormat(field_name, f"<{type(day).__name__}>", "must be an integer")
    if not 1 <= day <= MAX_SCHEDULE_DAY:
        raise errors.InvalidFormat(field_name, day, f"must be between 1 and {MAX_SCHEDULE_DAY}")
    return day


def check_notice_days(days: object, field_name: str = "prenotification_days") -> int:
    if isinstance(days, bool) or not isinstance(days, int):
        raise errors.InvalidFormat(field_name, f"<{type(days).__name__}>", "must be an integer")
    if not 1 <= days <= MAX_PRENOTIFICATION_DAYS:
        raise errors.InvalidFormat(field_name, days, f"must be between 1 and {MAX_PRENOTIFICATION_DAYS}")
    return days


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A calendar month, or a calendar quarter (January, April, July, October)."""

    year: int
    index: int  # month 1-12, or quarter 1-4
    frequency: Frequency = field(compare=False)

    @property
    def key(self) -> str:
        if self.frequency is Frequency.MONTHLY:
            return f"{self.year:04d}-{self.index:02d}"
        return f"{self.year:04d}-Q{self.index}"

    @property
    def first_month(self) -> int:
        return self.index if self.frequency is Frequency.MONTHLY else 3 * (self.index - 1) + 1

    def shifted(self, steps: int) -> Period:
        per_year = 12 if self.frequency is Frequency.MONTHLY else 4
        year, index = divmod(self.year * per_year + self.index - 1 + steps, per_year)
        return Period(year, index + 1, self.frequency)


def period_of(day: dt.date, freq: Frequency) -> Period:
    if freq is Frequency.MONTHLY:
        return Period(day.year, day.month, freq)
    return Period(day.year, (day.month - 1) // 3 + 1, freq)


def nominal_date(period: Period, day: int) -> dt.date:
    """The period's collection day, moved to the next TARGET day when TARGET is closed."""
    return calendar.next_target_day(dt.date(period.year, period.first_month, day))


@dataclass(frozen=True, slots=True)
class ScheduledCollection:
    period: Period
    nominal_date: dt.date
    collection_date: dt.date

    @property
    def moved(self) -> bool:
        return self.collection_date != self.nominal_date


def scheduled_collection(
    run_date: dt.date, freq: Frequency, day: int, notice_days: int, since: dt.date
) -> ScheduledCollection | None:
    """The period whose debit the schedule creates on ``run_date``, if any.

    That is the latest period whose pre-notification window has opened (its collection
    date is at most ``notice_days`` away). Periods whose collection day falls before the
    account became automatic (``since``) are not collected. When the collection date is
    closer than ``notice_days`` (the schedule did not run on the day the window opened,
    or the account switched late in the period), the debit moves to the first TARGET day
    at least ``notice_days`` after ``run_date``, so the debtor is always told in time.
    """
    notice = dt.timedelta(days=notice_days)
    period = period_of(run_date + notice, freq)
    while nominal_date(period, day) - notice > run_date:
        period = period.shifted(-1)
    nominal = nominal_date(period, day)
    if nominal < since:
        return None
    earliest = run_date + notice
    collection = nominal if nominal >= earliest else calendar.next_target_day(earliest)
    return ScheduledCollection(period, nominal, collection)
