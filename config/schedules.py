"""EventBridge schedule expressions, checked as EventBridge would: the retraining and drift schedules."""

from __future__ import annotations

import re

# EventBridge schedule expressions (eb-scheduled-rule-pattern): cron with six fields, or rate(value unit).
SCHEDULE_ALLOWED = (
    "cron(minutes hours day-of-month month day-of-week year) with ? in exactly one of the day fields, "
    "or rate(1 minute|hour|day) / rate(N minutes|hours|days)"
)
_RATE = re.compile(r"rate\(([1-9][0-9]{0,8}) (minute|minutes|hour|hours|day|days)\)")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, lowest, highest, names for 1.., wildcards beyond , - * /
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], str], ...] = (
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _WEEKDAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
)


def schedule_problem(expression: str) -> str | None:
    """Why EventBridge would refuse a schedule expression, or None when it is valid."""
    if expression.startswith("rate("):
        match = _RATE.fullmatch(expression)
        if match is None:
            return "is not rate(value unit) with a positive whole value"
        value, unit = int(match.group(1)), match.group(2)
        if (value == 1) != (not unit.endswith("s")):
            return f"needs a {'singular' if value == 1 else 'plural'} unit for {value}"
        return None
    if not (expression.startswith("cron(") and expression.endswith(")")):
        return "is neither cron(...) nor rate(...)"
    parts = expression[5:-1].split(" ")
    if len(parts) != 6:
        return f"has {len(parts)} cron fields, needs 6"
    for (name, low, high, names, extra), text in zip(_CRON_FIELDS, parts, strict=True):
        problem = _cron_field_problem(text, low, high, names, extra)
        if problem:
            return f"{name} field {text!r}: {problem}"
    if (parts[2] == "?") == (parts[4] == "?"):
        return "needs ? in exactly one of day-of-month and day-of-week"
    return None


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if text.upper() in names:
        return True
    return text.isdigit() and low <= int(text) <= high


def _cron_field_problem(text: str, low: int, high: int, names: tuple[str, ...], extra: str) -> str | None:
    if text == "?":
        return None if "?" in extra else "? is only for day-of-month and day-of-week"
    if "#" in text:
        day, _, nth = text.partition("#")
        ok = "#" in extra and _cron_value(day, low, high, names) and nth in {"1", "2", "3", "4", "5"}
        return None if ok else "# needs one weekday#1..5 and nothing else"
    for item in text.split(","):
        if "L" in extra and (item == "L" or (item.endswith("L") and _cron_value(item[:-1], low, high, names))):
            continue
        if "W" in extra and item.endswith("W") and (item == "LW" or _cron_value(item[:-1], low, high, ())):
            continue
        base, slash, step = item.partition("/")
        if slash and not (step.isdigit() and 1 <= int(step) <= high):
            return f"step {step!r} must be 1..{high}"
        first, dash, last = base.partition("-")
        if base == "*" or (_cron_value(first, low, high, names) and (not dash or _cron_value(last, low, high, names))):
            continue
        return f"{item!r} is not a value {low}..{high}{', a name' if names else ''}, a range, a step or *"
    return None
