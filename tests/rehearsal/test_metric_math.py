"""Metric data and metric math: nearest-rank percentiles, period slots over stored datapoints, expressions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from sagecycle.rehearsal.alarm_rules import AlarmError
from sagecycle.rehearsal.metric_math import Expression, MetricIndex, percentile

TICK = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@dataclass
class _Dimension:
    name: str
    value: str


@dataclass
class _Datum:
    """The fields the index reads from moto's MetricDatum."""

    namespace: str
    name: str
    value: float
    timestamp: datetime
    dimensions: list[_Dimension] = field(default_factory=lambda: [_Dimension("Stage", "dev")])
    unit: str | None = None


def test_percentile_is_nearest_rank() -> None:
    # GIVEN 1..100 / WHEN p99, p50 and p100 / THEN the nearest-rank values
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 99), percentile(values, 50), percentile(values, 100)) == (99.0, 50.0, 100.0)
    assert percentile([5.0], 99) == 5.0


def test_slots_end_at_the_tick_oldest_first_and_keep_each_metric_apart() -> None:
    # GIVEN datapoints in three one-minute periods, one on another dimension set and one with another unit
    data = [
        _Datum("ns", "m", 1.0, TICK - timedelta(seconds=150)),
        _Datum("ns", "m", 2.0, TICK - timedelta(seconds=90)),
        _Datum("ns", "m", 4.0, TICK - timedelta(seconds=30)),
        _Datum("ns", "m", 8.0, TICK - timedelta(seconds=30), unit="Count"),
        _Datum("ns", "m", 100.0, TICK - timedelta(seconds=30), dimensions=[_Dimension("Stage", "prod")]),
    ]
    index = MetricIndex(data)
    dims = [{"Name": "Stage", "Value": "dev"}]
    # WHEN four period slots ending at the tick are read, for any unit and for Count only
    sums = [s.statistic("Sum") for s in index.slots("ns", "m", dims, TICK, 60, 4)]
    counted = [s.statistic("Sum") for s in index.slots("ns", "m", dims, TICK, 60, 4, unit="Count")]
    # THEN oldest first, an empty slot is missing, and the other dimension set is another metric
    assert sums == [None, 1.0, 2.0, 12.0]
    assert counted == [None, None, None, 8.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100 * FILL(errors, 0) / invocations", {0: 0.0, 1: 50.0}),  # slot 2: no invocations, stays missing
        ("IF(invocations > 0, errors / invocations, 0)", {1: 0.5}),  # slot 0: errors missing, so is the ratio
        ("ABS(-errors)", {1: 1.0, 2: 3.0}),
        ("invocations >= 4 AND errors < 2", {1: 0.0}),  # only slot 1 has both
    ],
)
def test_expressions_per_slot(text: str, expected: dict[int, float]) -> None:
    # GIVEN two series over three slots: errors missing in slot 0, invocations missing in slot 2
    series = {"errors": {1: 1.0, 2: 3.0}, "invocations": {0: 4.0, 1: 2.0}}
    # WHEN the expression is evaluated
    result = Expression(text, series, 3, "probe").value()
    # THEN slot by slot, as CloudWatch's metric math: a slot missing from an operand or divided by zero is missing
    assert result == expected


@pytest.mark.parametrize("text", ["ANOMALY_DETECTION_BAND(errors)", "errors +", "unknown * 2", "errors $ 2"])
def test_expressions_not_evaluated_here_are_alarm_errors(text: str) -> None:
    # GIVEN an expression with an unknown function, a missing operand, an unknown id or an unreadable token
    series = {"errors": {0: 1.0}}
    # WHEN evaluated / THEN AlarmError
    with pytest.raises(AlarmError):
        Expression(text, series, 1, "probe").value()
