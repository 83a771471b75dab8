"""EventBridge's schedule expressions: `rate(...)` and `cron(...)` in UTC, as EventBridge evaluates them.

`Schedule.parse` refuses what EventBridge would refuse (`ScheduleError`); `next_after` is the first occurrence
strictly after a moment. The bus fires the schedule rules' occurrences on the simulated clock.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final


class ScheduleError(ValueError):
    """A schedule expression EventBridge would refuse (or one this rehearsal does not evaluate)."""


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_MONTHS: Final = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_WEEKDAYS: Final = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


@dataclass(frozen=True)
class Schedule:
    """A schedule expression: `next_after(moment)` is its first occurrence strictly after `moment` (UTC)."""

    expression: str
    origin: datetime  # when the rule was created: rate() counts from here
    rate: timedelta | None = None
    fields: tuple[Any, ...] = ()

    @classmethod
    def parse(cls, expression: str, origin: datetime) -> Schedule:
        rate = _RATE.match(expression.strip())
        if rate:
            value, unit = int(rate.group(1)), rate.group(2)
            if value <= 0:
                raise ScheduleError(f"{expression}: the rate must be a positive number")
            if (value == 1) != (not unit.endswith("s")):
                raise ScheduleError(f"{expression}: EventBridge wants the singular unit for 1 and the plural otherwise")
            seconds = {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
            return cls(expression, origin, rate=timedelta(seconds=value * seconds))
        cron = _CRON.match(expression.strip())
        if not cron:
            raise ScheduleError(f"{expression}: not a rate(...) or cron(...) expression")
        parts = cron.group(1).split()
        if len(parts) != 6:
            raise ScheduleError(
                f"{expression}: cron takes six fields (minutes hours day-of-month month day-of-week year)"
            )
        minutes, hours, dom, month, dow, year = parts
        if (dom == "?") == (dow == "?"):
            raise ScheduleError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
        return cls(
            expression,
            origin,
            fields=(
                _cron_set(minutes, 0, 59, {}, expression),
                _cron_set(hours, 0, 23, {}, expression),
                None if dom == "?" else _cron_days(dom, expression),
                _cron_set(month, 1, 12, _MONTHS, expression),
                None if dow == "?" else _cron_set(dow, 1, 7, _WEEKDAYS, expression),
                _cron_set(year, 1970, 2199, {}, expression),
            ),
        )

    def next_after(self, moment: datetime) -> datetime:
        moment = moment.astimezone(UTC)
        if self.rate is not None:
            if moment < self.origin:
                return self.origin + self.rate
            periods = int((moment - self.origin) / self.rate) + 1
            return self.origin + periods * self.rate
        minutes, hours, dom, months, dow, years = self.fields
        day = moment.date()
        for _ in range(366 * 30):
            if day.year in years and day.month in months and _day_matches(day, dom, dow):
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate > moment:
                            return candidate
            day += timedelta(days=1)
        raise ScheduleError(f"{self.expression}: no occurrence within 30 years of {moment.isoformat()}")


def _cron_set(text: str, low: int, high: int, names: Mapping[str, int], expression: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start, end = _cron_value(first, names, expression), _cron_value(last, names, expression)
        else:
            start = _cron_value(part, names, expression)
            end = high if step != 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"{expression}: {text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _cron_value(text: str, names: Mapping[str, int], expression: str) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(
            f"{expression}: {text!r} is not evaluated by this rehearsal (only numbers, names, * , - /, L)"
        )
    return int(text)


def _cron_days(text: str, expression: str) -> frozenset[int] | str:
    return "L" if text == "L" else _cron_set(text, 1, 31, {}, expression)


def _day_matches(day: Any, dom: Any, dow: Any) -> bool:
    if dom is not None:
        if dom == "L":
            return bool(day.day == calendar.monthrange(day.year, day.month)[1])
        return bool(day.day in dom)
    weekday = (day.weekday() + 1) % 7 + 1  # Python: Monday 0; EventBridge: Sunday 1
    return bool(weekday in dow)
