from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from sepa_engine.crontab import CrontabError, cron_trigger

PARIS = ZoneInfo("Europe/Paris")
MONDAY_NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=PARIS)


def _days(expression: str, count: int = 7) -> list[str]:
    trigger = cron_trigger(expression, "Europe/Paris")
    at, days = MONDAY_NOON, []
    for _ in range(count):
        at = trigger.get_next_fire_time(None, at)
        days.append(at.strftime("%a"))
        at += dt.timedelta(seconds=1)
    return days


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        # APScheduler's own from_crontab would read 1-5 as Tuesday to Saturday.
        ("30 22 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]),
        ("30 22 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]),
        ("30 22 * * 0", ["Sun"] * 7),
        ("30 22 * * 7", ["Sun"] * 7),
        ("30 22 * * 5-7", ["Fri", "Sat", "Sun", "Fri", "Sat", "Sun", "Fri"]),
        ("30 22 * * 0,6", ["Sat", "Sun", "Sat", "Sun", "Sat", "Sun", "Sat"]),
        ("30 22 * * */2", ["Tue", "Thu", "Sat", "Sun", "Tue", "Thu", "Sat"]),
        ("30 22 * * 1/3", ["Mon", "Thu", "Mon", "Thu", "Mon", "Thu", "Mon"]),
    ],
)
def test_day_of_week_is_read_as_crontab_reads_it(expression, days):
    assert _days(expression) == days


def test_the_time_is_read_in_the_given_zone():
    fire = cron_trigger("30 22 * * *", "Europe/Paris").get_next_fire_time(None, MONDAY_NOON)
    assert fire == dt.datetime(2026, 11, 23, 22, 30, tzinfo=PARIS)


@pytest.mark.parametrize("expression", ["", "* * * *", "60 * * * *", "* * * * 8", "* * * * 5-1", "* * 1 * 1", "* * * * x", "* * * * */0"])
def test_expressions_cron_would_refuse_or_read_otherwise_are_refused(expression):
    with pytest.raises(CrontabError):
        cron_trigger(expression, "Europe/Paris")
