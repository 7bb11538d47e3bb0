"""TARGET (T2) business days and the collection dates derived from them.

A TARGET day is a day on which the Eurosystem's settlement service is open: every weekday
except 1 Jan, Good Friday, Easter Monday, 1 May, 25 Dec and 26 Dec (RULES.md section 1).
The closing days come from ``holidays.financial_holidays("XECB")`` so that we do not keep our
own Easter computation; the tests pin every closing day the scheme names.

Nothing here reads the clock: "now" is always passed in as an aware datetime, and the local
business date is derived in the creditor bank's zone (Europe/Paris unless told otherwise),
never from the machine's zone.

Bank profiles add closing days of their own (German banks do not process on 24 and 31
December although TARGET is open): every function that hands out a date takes them as
``closed_also``, (month, day) pairs, empty by default.

Performance: a collection run calls this for every request (up to a million), so the
closing days are computed once per year and kept as a frozenset; each lookup is then a
weekday test plus a set membership test.
"""

from __future__ import annotations

import datetime as dt
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from sepa_engine import errors
from sepa_engine.clock import DEFAULT_TIMEZONE  # a constant only: this module never reads the clock

TARGET_MARKET = "XECB"

_SATURDAY = 5
_ONE_DAY = dt.timedelta(days=1)


def _market_years() -> tuple[int, int]:
    calendar = holidays.financial_holidays(TARGET_MARKET)
    return int(calendar.start_year), int(calendar.end_year)


# Outside these years the holidays package returns no closing days at all, which would
# silently make Christmas a business day: refuse instead of guessing.
FIRST_YEAR, LAST_YEAR = _market_years()


@cache
def _closing_weekdays(year: int) -> frozenset[dt.date]:
    """TARGET closing days of ``year`` that fall on a weekday (weekends are closed anyway)."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise errors.CalendarError(
            "date", year, f"is outside the TARGET calendar we know ({FIRST_YEAR}-{LAST_YEAR})"
        )
    # A fresh object per year: HolidayBase fills itself lazily on lookup, and an immutable
    # frozenset is safe to share between threads where the holiday object is not.
    closing = holidays.financial_holidays(TARGET_MARKET, years=year)
    return frozenset(day for day in closing if day.weekday() < _SATURDAY)


def is_target_day(d: dt.date) -> bool:
    # The year is checked even for weekends, so a date beyond the calendar always fails.
    closing = _closing_weekdays(d.year)
    return d.weekday() < _SATURDAY and d not in closing


ClosedAlso = tuple[tuple[int, int], ...]


def is_business_day(d: dt.date, closed_also: ClosedAlso = ()) -> bool:
    """A TARGET day that is not one of the bank's own closing days."""
    return is_target_day(d) and (d.month, d.day) not in closed_also


@lru_cache(maxsize=4096)
def next_target_day(d: dt.date, closed_also: ClosedAlso = ()) -> dt.date:
    """``d`` itself when TARGET (and the bank) is open that day, else the next open day."""
    while not is_business_day(d, closed_also):
        d += _ONE_DAY
    return d


@lru_cache(maxsize=4096)
def add_target_days(d: dt.date, n: int, closed_also: ClosedAlso = ()) -> dt.date:
    """The ``n``-th TARGET day after ``d``; ``d`` itself need not be open.

    ``n == 0`` gives ``next_target_day(d)`` rather than ``d``: every date this module hands
    out is a TARGET day, so a caller can never emit a closing day by adding nothing.
    """
    if n < 0:
        raise errors.CalendarError("target_days", n, "must not be negative")
    if n == 0:
        return next_target_day(d, closed_also)
    while n:
        d += _ONE_DAY
        if is_business_day(d, closed_also):
            n -= 1
    return d


def target_days_between(a: dt.date, b: dt.date) -> int:
    """Number of TARGET days ``x`` with ``a < x <= b`` (negative when ``b`` is before ``a``).

    This is the inverse of ``add_target_days``: for a TARGET day ``b`` after ``a``,
    ``add_target_days(a, target_days_between(a, b)) == b``; "return until D+5" reads as
    ``target_days_between(D, today) <= 5``.
    """
    if b < a:
        return -target_days_between(b, a)
    closed = sum(
        1
        for year in range(a.year, b.year + 1)
        for day in _closing_weekdays(year)
        if a < day <= b
    )
    # Counted arithmetically so that a 13-month refund window costs no more than a day.
    return _weekdays_up_to(b) - _weekdays_up_to(a) - closed


def _weekdays_up_to(d: dt.date) -> int:
    """Mondays to Fridays from 0001-01-01 (a Monday, ordinal 1) up to ``d`` included."""
    full_weeks, rest = divmod(d.toordinal(), 7)
    return full_weeks * 5 + min(rest, 5)


def submission_day(
    now: dt.datetime, cutoff: dt.time, timezone: str = DEFAULT_TIMEZONE, closed_also: ClosedAlso = ()
) -> dt.date:
    """The TARGET day on which a file sent at ``now`` counts as received by the bank.

    Today (in ``timezone``) when it is a TARGET day and the local time is strictly before the
    cut-off; otherwise the next TARGET day after today. ``cutoff`` is a wall-clock time in
    ``timezone``, so it keeps its meaning across summer-time changes.
    """
    local = _local(now, timezone)
    today = local.date()
    if is_business_day(today, closed_also) and local.time() < _wall_clock(cutoff):
        return today
    return add_target_days(today, 1, closed_also)


def earliest_collection_date(
    now: dt.datetime, lead_days: int, cutoff: dt.time, timezone: str = DEFAULT_TIMEZONE, closed_also: ClosedAlso = ()
) -> dt.date:
    """First collection date (D) the bank accepts for a file sent at ``now``.

    ``lead_days`` is the creditor bank's lead time in TARGET days after the submission day:
    1 is the scheme minimum (D-1), many banks ask for more.
    """
    if lead_days < 1:
        raise errors.ConfigurationError(
            "lead_days", lead_days, "must be at least 1 TARGET day (D-1 is the scheme minimum)"
        )
    return add_target_days(submission_day(now, cutoff, timezone, closed_also), lead_days, closed_also)


def collection_date(
    requested: dt.date,
    now: dt.datetime,
    lead_days: int,
    cutoff: dt.time,
    timezone: str = DEFAULT_TIMEZONE,
    closed_also: ClosedAlso = (),
) -> dt.date:
    """The first TARGET day on or after both ``requested`` and the earliest collection date."""
    earliest = earliest_collection_date(now, lead_days, cutoff, timezone, closed_also)
    return next_target_day(max(requested, earliest), closed_also)


def _local(now: dt.datetime, timezone: str) -> dt.datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        # A naive "now" would be read in the machine's zone: the very bug this module avoids.
        raise errors.CalendarError("now", now.isoformat(), "must be an aware datetime")
    return now.astimezone(_zone(timezone))


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise errors.ConfigurationError("timezone", name, "is not a known IANA time zone") from exc


def _wall_clock(cutoff: dt.time) -> dt.time:
    if cutoff.tzinfo is not None:
        # The zone is a separate setting; an aware time would compare on a fixed offset and
        # be wrong for half of the year.
        raise errors.ConfigurationError(
            "cutoff", cutoff.isoformat(), "must be a wall-clock time without a zone"
        )
    return cutoff
