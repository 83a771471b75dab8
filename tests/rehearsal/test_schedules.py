"""EventBridge's schedule expressions, evaluated as EventBridge documents them (rate and cron, in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagecycle.rehearsal.schedules import Schedule, ScheduleError

START = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)  # the origin: a rule created at 02:30 UTC, as in the stage tests


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0 3 * * ? *)", datetime(2026, 11, 23, 3, 0, tzinfo=UTC), datetime(2026, 11, 24, 3, 0, tzinfo=UTC)),
        ("cron(0 7 ? * MON-FRI *)", datetime(2026, 11, 21, 9, 0, tzinfo=UTC), datetime(2026, 11, 23, 7, 0, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 21, 9, 16, tzinfo=UTC), datetime(2026, 11, 21, 9, 30, tzinfo=UTC)),
        ("cron(30 23 L * ? *)", datetime(2026, 2, 1, 0, 0, tzinfo=UTC), datetime(2026, 2, 28, 23, 30, tzinfo=UTC)),
        ("cron(0 12 ? * 1 *)", datetime(2026, 11, 23, 0, 0, tzinfo=UTC), datetime(2026, 11, 29, 12, 0, tzinfo=UTC)),
        ("rate(5 minutes)", datetime(2026, 1, 1, 0, 7, tzinfo=UTC), datetime(2026, 1, 1, 0, 10, tzinfo=UTC)),
    ],
)
def test_schedule_expressions(expression: str, after: datetime, expected: datetime) -> None:
    # GIVEN an expression (rates counted from midnight) / WHEN asked for the next occurrence / THEN as EventBridge
    assert Schedule.parse(expression, datetime(2026, 1, 1, tzinfo=UTC)).next_after(after) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 hours)",
        "rate(2 hour)",
        "rate(0 minutes)",
        "cron(0 3 * * * *)",
        "cron(0 3 ? * ? *)",
        "cron(0 3 * *)",
        "every day",
    ],
)
def test_schedule_expressions_eventbridge_refuses(expression: str) -> None:
    # GIVEN an expression EventBridge refuses (singular/plural unit, zero rate, two or no '?', too few fields)
    # WHEN parsed / THEN ScheduleError
    with pytest.raises(ScheduleError):
        Schedule.parse(expression, START)


@given(minutes=st.integers(0, 10_000), value=st.integers(1, 90))
def test_rate_occurrences_are_multiples_after_the_origin(minutes: int, value: int) -> None:
    # GIVEN any rate and any moment
    schedule = Schedule.parse(f"rate({value} minute{'s' if value > 1 else ''})", START)
    moment = START + timedelta(minutes=minutes, seconds=30)
    # WHEN asked for the next occurrence
    following = schedule.next_after(moment)
    # THEN it is the first origin + k * rate after the moment
    elapsed = (following - START).total_seconds()
    assert following > moment and elapsed % (value * 60) == 0
    assert following - timedelta(minutes=value) <= moment
