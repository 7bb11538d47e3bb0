from __future__ import annotations

import datetime as dt

import holidays
import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from sepa_engine import errors
from sepa_engine.clock import SystemClock
from sepa_engine.domain.calendar import (
    add_target_days,
    collection_date,
    earliest_collection_date,
    is_target_day,
    next_target_day,
    submission_day,
    target_days_between,
)

CUTOFF = dt.time(10, 0)  # 10:00 Paris wall-clock time


def now_at(instant: str) -> dt.datetime:
    """What the engine's clock says at a UTC instant (freezegun reads naive strings as UTC)."""
    with freeze_time(instant):
        return SystemClock().now()


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# --- the closing days themselves ------------------------------------------------------------
EASTER = {  # Good Friday, Easter Monday (Western Easter)
    2025: ("2025-04-18", "2025-04-21"),
    2026: ("2026-04-03", "2026-04-06"),
    2027: ("2027-03-26", "2027-03-29"),
    2028: ("2028-04-14", "2028-04-17"),
    2029: ("2029-03-30", "2029-04-02"),
    2030: ("2030-04-19", "2030-04-22"),
}


@pytest.mark.parametrize("year", sorted(EASTER))
def test_xecb_calendar_lists_every_target_closing_day(year):
    closing = holidays.financial_holidays("XECB", years=year)
    good_friday, easter_monday = EASTER[year]
    expected = {
        dt.date(year, 1, 1),
        d(good_friday),
        d(easter_monday),
        dt.date(year, 5, 1),
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),
    }
    assert expected == set(closing)


@pytest.mark.parametrize("year", sorted(EASTER))
def test_closing_days_on_weekdays_are_not_target_days(year):
    good_friday, easter_monday = EASTER[year]
    for day in (dt.date(year, 1, 1), d(good_friday), d(easter_monday), dt.date(year, 5, 1),
                dt.date(year, 12, 25), dt.date(year, 12, 26)):
        assert not is_target_day(day), day


@pytest.mark.parametrize("day", ["2026-11-21", "2026-11-22"])
def test_weekend_days_are_closed(day):
    assert not is_target_day(d(day))


def test_ordinary_weekday_is_open():
    assert is_target_day(d("2026-11-23"))
    assert next_target_day(d("2026-11-23")) == d("2026-11-23")


@pytest.mark.parametrize(
    ("day", "next_open"),
    [
        ("2026-11-21", "2026-11-23"),  # Saturday -> Monday
        ("2026-04-03", "2026-04-07"),  # Good Friday 2026 -> Tuesday after Easter Monday
        ("2026-04-06", "2026-04-07"),  # Easter Monday 2026
        ("2027-03-26", "2027-03-30"),  # Good Friday 2027
        ("2027-03-29", "2027-03-30"),  # Easter Monday 2027
        ("2026-05-01", "2026-05-04"),  # Labour Day on a Friday
        ("2026-12-25", "2026-12-28"),  # Christmas on a Friday, 26 Dec a Saturday
        ("2025-12-25", "2025-12-29"),  # Thursday 25 and Friday 26 Dec 2025
        ("2027-01-01", "2027-01-04"),  # New Year's Day on a Friday
    ],
)
def test_next_target_day_skips_closing_days(day, next_open):
    assert next_target_day(d(day)) == d(next_open)


def test_requested_christmas_2026_moves_to_monday_28_december():
    now = now_at("2026-12-01 08:00:00")
    assert collection_date(d("2026-12-25"), now, 2, CUTOFF) == d("2026-12-28")


def test_requested_new_year_moves_to_first_open_day():
    now = now_at("2026-12-01 08:00:00")
    assert collection_date(d("2027-01-01"), now, 2, CUTOFF) == d("2027-01-04")


def test_add_target_days_counts_over_easter():
    # Thursday before Good Friday + 1 TARGET day = Tuesday after Easter Monday.
    assert add_target_days(d("2026-04-02"), 1) == d("2026-04-07")
    assert add_target_days(d("2026-04-02"), 2) == d("2026-04-08")


def test_add_target_days_starts_from_a_closed_day():
    assert add_target_days(d("2026-11-21"), 1) == d("2026-11-23")  # Saturday + 1 = Monday
    assert add_target_days(d("2026-11-21"), 2) == d("2026-11-24")


def test_adding_zero_target_days_still_gives_a_target_day():
    assert add_target_days(d("2026-11-23"), 0) == d("2026-11-23")
    assert add_target_days(d("2026-11-21"), 0) == d("2026-11-23")


def test_adding_negative_target_days_is_refused():
    with pytest.raises(errors.CalendarError):
        add_target_days(d("2026-11-23"), -1)


def test_target_days_between_counts_open_days_after_the_start():
    # Thu 2 Apr 2026 -> Wed 8 Apr: Good Friday and Easter Monday are closed.
    assert target_days_between(d("2026-04-02"), d("2026-04-08")) == 2
    assert target_days_between(d("2026-04-08"), d("2026-04-02")) == -2
    assert target_days_between(d("2026-04-02"), d("2026-04-02")) == 0


def test_target_days_between_spans_a_year_end():
    # 23 Dec 2026 (Wed) to 5 Jan 2027: open on 24, 28, 29, 30, 31 Dec, 4 and 5 Jan.
    assert target_days_between(d("2026-12-23"), d("2027-01-05")) == 7


@pytest.mark.parametrize("day", ["2101-12-25", "2101-12-26", "1998-06-01"])
def test_dates_outside_the_known_calendar_are_refused_not_guessed(day):
    with pytest.raises(errors.CalendarError):
        is_target_day(d(day))


# --- cut-off and time zones -----------------------------------------------------------------
def test_run_one_minute_before_cutoff_counts_as_submitted_today():
    now = now_at("2026-01-14 08:59:00")  # Wednesday 09:59 in Paris (UTC+1)
    assert submission_day(now, CUTOFF) == d("2026-01-14")
    assert earliest_collection_date(now, 1, CUTOFF) == d("2026-01-15")


def test_run_one_minute_after_cutoff_moves_to_next_business_day():
    now = now_at("2026-01-14 09:01:00")  # Wednesday 10:01 in Paris
    assert submission_day(now, CUTOFF) == d("2026-01-15")
    assert earliest_collection_date(now, 1, CUTOFF) == d("2026-01-16")


def test_run_exactly_at_cutoff_is_too_late():
    now = now_at("2026-01-14 09:00:00")  # 10:00:00 in Paris
    assert submission_day(now, CUTOFF) == d("2026-01-15")


def test_run_after_cutoff_on_friday_moves_to_monday():
    now = now_at("2026-01-16 09:30:00")
    assert submission_day(now, CUTOFF) == d("2026-01-19")
    assert earliest_collection_date(now, 2, CUTOFF) == d("2026-01-21")


def test_run_on_a_closing_day_before_cutoff_is_submitted_next_target_day():
    now = now_at("2026-04-03 07:00:00")  # Good Friday, 09:00 in Paris
    assert submission_day(now, CUTOFF) == d("2026-04-07")


def test_run_after_cutoff_on_christmas_eve_2026_is_submitted_on_28_december():
    now = now_at("2026-12-24 10:00:00")  # Thursday 11:00 in Paris
    assert submission_day(now, CUTOFF) == d("2026-12-28")
    assert earliest_collection_date(now, 1, CUTOFF) == d("2026-12-29")


def test_winter_morning_before_summer_time_change_is_before_cutoff():
    now = now_at("2026-03-27 08:30:00")  # Friday 09:30 in Paris (UTC+1)
    assert submission_day(now, CUTOFF) == d("2026-03-27")


def test_same_utc_time_after_summer_time_change_is_after_cutoff():
    now = now_at("2026-03-30 08:30:00")  # Monday 10:30 in Paris (UTC+2 since 29 Mar)
    assert submission_day(now, CUTOFF) == d("2026-03-31")


def test_summer_morning_before_winter_time_change_is_after_cutoff():
    now = now_at("2026-10-23 08:30:00")  # Friday 10:30 in Paris (UTC+2)
    assert submission_day(now, CUTOFF) == d("2026-10-26")


def test_same_utc_time_after_winter_time_change_is_before_cutoff():
    now = now_at("2026-10-26 08:30:00")  # Monday 09:30 in Paris (UTC+1 since 25 Oct)
    assert submission_day(now, CUTOFF) == d("2026-10-26")


def test_paris_date_is_used_when_it_differs_from_the_utc_date():
    now = now_at("2026-01-15 23:30:00")  # Thursday in UTC, Friday 00:30 in Paris
    assert now.date() == d("2026-01-15")
    assert submission_day(now, CUTOFF) == d("2026-01-16")
    assert earliest_collection_date(now, 1, CUTOFF) == d("2026-01-19")


def test_another_zone_can_be_configured():
    now = now_at("2026-01-14 09:30:00")  # 10:30 in Paris, 09:30 in Dublin
    assert submission_day(now, CUTOFF, "Europe/Dublin") == d("2026-01-14")
    assert submission_day(now, CUTOFF, "Europe/Paris") == d("2026-01-15")


def test_naive_now_is_refused():
    with freeze_time("2026-01-14 08:00:00"):
        naive = dt.datetime.now()  # noqa: DTZ005 (the naive value under test)
    with pytest.raises(errors.CalendarError) as caught:
        submission_day(naive, CUTOFF)
    assert str(caught.value).startswith("now ")


def test_unknown_time_zone_is_a_configuration_error():
    with pytest.raises(errors.ConfigurationError):
        submission_day(now_at("2026-01-14 08:00:00"), CUTOFF, "Europe/Atlantis")


def test_cutoff_with_a_zone_is_a_configuration_error():
    with pytest.raises(errors.ConfigurationError):
        submission_day(now_at("2026-01-14 08:00:00"), dt.time(10, 0, tzinfo=dt.timezone.utc))


def test_lead_time_below_one_day_is_refused():
    with pytest.raises(errors.ConfigurationError):
        earliest_collection_date(now_at("2026-01-14 08:00:00"), 0, CUTOFF)


# --- collection dates -----------------------------------------------------------------------
def test_requested_date_before_earliest_is_moved_to_earliest():
    now = now_at("2026-01-14 08:00:00")
    assert collection_date(d("2026-01-10"), now, 3, CUTOFF) == d("2026-01-19")


def test_requested_date_after_earliest_is_kept_when_open():
    now = now_at("2026-01-14 08:00:00")
    assert collection_date(d("2026-02-05"), now, 3, CUTOFF) == d("2026-02-05")


def test_requested_weekend_after_earliest_moves_to_monday():
    now = now_at("2026-01-14 08:00:00")
    assert collection_date(d("2026-02-07"), now, 3, CUTOFF) == d("2026-02-09")


# --- properties -----------------------------------------------------------------------------
DATES = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 6, 30))
NOWS = st.datetimes(  # hypothesis takes naive bounds and adds the zone itself
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 6, 30),  # noqa: DTZ001
    timezones=st.just(dt.timezone.utc),
)


@settings(max_examples=300, deadline=None)
@given(requested=DATES, now=NOWS, lead_days=st.integers(1, 10), cutoff=st.times())
def test_collection_date_is_always_a_target_day_not_before_requested_or_earliest(requested, now, lead_days, cutoff):
    result = collection_date(requested, now, lead_days, cutoff)
    assert is_target_day(result)
    assert result >= requested
    assert result >= earliest_collection_date(now, lead_days, cutoff)


@settings(max_examples=300, deadline=None)
@given(start=DATES, n=st.integers(1, 40))
def test_target_days_between_inverts_add_target_days(start, n):
    end = add_target_days(start, n)
    assert is_target_day(end)
    assert target_days_between(start, end) == n


@settings(max_examples=200, deadline=None)
@given(a=DATES, span=st.integers(-60, 60))
def test_target_days_between_matches_counting_day_by_day(a, span):
    b = a + dt.timedelta(days=span)
    low, high = min(a, b), max(a, b)
    counted = sum(is_target_day(low + dt.timedelta(days=i)) for i in range(1, (high - low).days + 1))
    assert target_days_between(a, b) == (counted if b >= a else -counted)
