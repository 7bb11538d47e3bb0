"""Crontab expressions as cron users read them, turned into APScheduler triggers.

APScheduler 3's ``CronTrigger.from_crontab`` numbers the days of the week from Monday = 0
(its issue 286, fixed only in 4.x), so the crontab line ``30 22 * * 1-5`` (Monday to
Friday) would run Tuesday to Saturday: a collection one day late and one on a Saturday.
This module reads the day-of-week field with crontab's numbering (0 and 7 = Sunday,
1 = Monday; names accepted) and hands APScheduler day names, which it reads unambiguously.

Crontab also fires when *either* a restricted day of month or a restricted day of week
matches, where APScheduler needs both. Rather than pick one reading silently, an
expression that restricts both is refused.
"""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class CrontabError(ValueError):
    """The expression is not a 5-field crontab line this engine can run as written."""


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    fields = expression.split()
    if len(fields) != 5:
        raise CrontabError(f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
    minute, hour, day, month, day_of_week = fields
    if day != "*" and day_of_week != "*":
        raise CrontabError(
            "restricts both day of month and day of week; crontab and APScheduler disagree on what that means"
        )
    try:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(day_of_week), timezone=timezone
        )
    except ValueError as exc:
        raise CrontabError(str(exc)) from None


def _weekdays(field: str) -> str:
    """Crontab's day-of-week field as a list of day names (``*`` stays ``*``)."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        days |= _weekday_part(part)
    # Monday first, Sunday last: the order APScheduler numbers them in.
    return ",".join(_DAY_NAMES[d] for d in sorted(days, key=lambda d: (d + 6) % 7))


def _weekday_part(part: str) -> set[int]:
    span, _, step_text = part.partition("/")
    step = _number(step_text, "step") if step_text else 1
    if step < 1:
        raise CrontabError(f"day-of-week step {step_text!r} must be at least 1")
    if span == "*":
        first, last = 0, 6
    elif "-" in span:
        low, _, high = span.partition("-")
        first, last = _weekday(low), _weekday(high)
        if high.strip().lower() in ("7", "sun"):
            last = 7
        if first > last:
            raise CrontabError(f"day-of-week range {span!r} runs backwards")
    else:
        first = last = _weekday(span)
        if step_text:
            # "1/2" in crontab means "from Monday, every second day".
            last = 6
    return {day % 7 for day in range(first, last + 1, step)}


def _weekday(text: str) -> int:
    value = text.strip().lower()
    if value in _DAY_NAMES:
        return _DAY_NAMES.index(value)
    number = _number(value, "day of week")
    if not 0 <= number <= 7:
        raise CrontabError(f"day of week {text!r} must be 0-7 (0 and 7 are Sunday) or a name (mon...sun)")
    return number % 7


def _number(text: str, what: str) -> int:
    if not text.isdigit():
        raise CrontabError(f"{what} {text!r} is not a number")
    return int(text)
