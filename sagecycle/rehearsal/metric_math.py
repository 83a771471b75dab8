"""Metric data and metric math for the alarm evaluator, over the local CloudWatch's stored datapoints.

- `MetricIndex`: the raw datapoints by metric identity (namespace, name, exact set of dimensions), sorted by
  time; `slots` aggregates one period slot after another (`Slot.statistic`: SampleCount, Average, Sum, Minimum,
  Maximum, or a `pNN` nearest-rank `percentile` of the single values);
- `Expression`: a CloudWatch metric-math expression per period slot: arithmetic (+ - * /), comparisons, AND / OR,
  IF(condition, a[, b]), FILL(series, value) and ABS; a division by zero or a slot missing from an operand leaves
  that slot missing. Anything else raises `AlarmError` naming the function.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sagecycle.rehearsal.alarm_rules import AlarmError


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of raw values."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,2})?|100)$")


@dataclass
class Slot:
    values: list[float]
    sums: float = 0.0
    count: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add_single(self, value: float) -> None:
        self.values.append(value)
        self.sums += value
        self.count += 1
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def add_set(self, sums: float, count: float, minimum: float, maximum: float) -> None:
        self.sums += sums
        self.count += count
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)

    def statistic(self, stat: str) -> float | None:
        if self.count == 0:
            return None
        simple = {
            "SampleCount": self.count,
            "Sum": self.sums,
            "Average": self.sums / self.count,
            "Minimum": self.minimum,
            "Maximum": self.maximum,
        }
        if stat in simple:
            return simple[stat]
        match = PERCENTILE.match(stat)
        if match is None:
            raise AlarmError(
                f"statistic {stat} is not evaluated here (SampleCount, Average, Sum, Minimum, Maximum, pNN)"
            )
        if not self.values:
            return None  # percentiles are not available from statistic sets
        return percentile(self.values, float(match.group(1)))


def utc(moment: Any) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if isinstance(moment, (int, float)):
        return datetime.fromtimestamp(moment, UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class MetricIndex:
    """The local CloudWatch's raw datapoints, by metric identity, sorted by time."""

    def __init__(self, data: Sequence[Any]) -> None:
        self._by_metric: dict[tuple[str, str, frozenset[tuple[str, str]]], list[tuple[datetime, Any]]] = {}
        for datum in data:
            key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
            self._by_metric.setdefault(key, []).append((utc(datum.timestamp), datum))
        self._times: dict[tuple[str, str, frozenset[tuple[str, str]]], list[datetime]] = {}
        for key, items in self._by_metric.items():
            items.sort(key=lambda item: item[0])
            self._times[key] = [t for t, _ in items]

    def slot(
        self, namespace: str, name: str, dimensions: Sequence[Mapping[str, str]], start: datetime, end: datetime,
        unit: str | None = None,
    ) -> Slot:  # fmt: skip
        key = (namespace, name, frozenset((d["Name"], d["Value"]) for d in dimensions))
        items, times = self._by_metric.get(key, []), self._times.get(key, [])
        slot = Slot([])
        for _, datum in items[bisect_left(times, start) : bisect_left(times, end)]:
            if unit and getattr(datum, "unit", None) != unit:
                continue
            if hasattr(datum, "value"):
                slot.add_single(float(datum.value))
            else:
                slot.add_set(float(datum.sum), float(datum.sample_count), float(datum.min), float(datum.max))
        return slot

    def slots(
        self, namespace: str, name: str, dimensions: Sequence[Mapping[str, str]], tick: datetime, period: int,
        count: int, unit: str | None = None,
    ) -> list[Slot]:  # fmt: skip
        """The `count` period slots that end at `tick`, oldest first."""
        ends = [tick - timedelta(seconds=k * period) for k in range(count - 1, -1, -1)]
        return [self.slot(namespace, name, dimensions, end - timedelta(seconds=period), end, unit) for end in ends]


# ------------------------------------------------------------------------------------------- metric math

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|&&|\|\||[-+*/(),<>]))")
Series = dict[int, float]


class Expression:
    """A CloudWatch metric-math expression over per-slot series (slot index -> value)."""

    def __init__(self, text: str, series: Mapping[str, Series], slots: int, alarm: str) -> None:
        self.tokens: list[str] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip() == "":
                    break
                raise AlarmError(f"alarm {alarm}: cannot read expression {text!r} at {text[position:]!r}")
            self.tokens.append(next(g for g in match.groups() if g is not None))
            position = match.end()
        self.position = 0
        self.series = series
        self.slots = slots
        self.alarm = alarm

    def value(self) -> Series | float:
        result = self.disjunction()
        if self.position != len(self.tokens):
            raise AlarmError(f"alarm {self.alarm}: unexpected {self.tokens[self.position]!r} in expression")
        return result

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise AlarmError(f"alarm {self.alarm}: expected {expected or 'more'} in expression, got {token!r}")
        self.position += 1
        return token

    def binary(
        self, next_level: Callable[[], Series | float], operators: Mapping[str, Callable[[float, float], float | None]]
    ) -> Series | float:
        left = next_level()
        while (self.peek() or "").upper() in operators:
            operator = operators[self.take().upper()]
            left = _combine(left, next_level(), operator)
        return left

    def disjunction(self) -> Series | float:
        return self.binary(self.conjunction, {"OR": _or, "||": _or})

    def conjunction(self) -> Series | float:
        return self.binary(self.comparison, {"AND": _and, "&&": _and})

    def comparison(self) -> Series | float:
        return self.binary(
            self.additive,
            {
                ">": lambda a, b: float(a > b),
                "<": lambda a, b: float(a < b),
                ">=": lambda a, b: float(a >= b),
                "<=": lambda a, b: float(a <= b),
                "==": lambda a, b: float(a == b),
                "!=": lambda a, b: float(a != b),
            },
        )

    def additive(self) -> Series | float:
        return self.binary(self.term, {"+": lambda a, b: a + b, "-": lambda a, b: a - b})

    def term(self) -> Series | float:
        return self.binary(self.unary, {"*": lambda a, b: a * b, "/": lambda a, b: None if b == 0 else a / b})

    def unary(self) -> Series | float:
        if self.peek() == "-":
            self.take()
            return _combine(0.0, self.unary(), lambda a, b: a - b)
        return self.primary()

    def primary(self) -> Series | float:
        token = self.take()
        if token == "(":
            inner = self.disjunction()
            self.take(")")
            return inner
        if re.fullmatch(r"\d.*", token):
            return float(token)
        if self.peek() == "(":
            return self.call(token.upper())
        if token in self.series:
            return dict(self.series[token])
        raise AlarmError(f"alarm {self.alarm}: expression refers to {token!r}, which no query of the alarm defines")

    def call(self, name: str) -> Series | float:
        self.take("(")
        arguments = [self.disjunction()]
        while self.peek() == ",":
            self.take(",")
            arguments.append(self.disjunction())
        self.take(")")
        if name == "IF" and len(arguments) in (2, 3):
            return self.if_(*arguments)
        if name == "FILL" and len(arguments) == 2 and isinstance(arguments[1], float):
            return self.fill(arguments[0], arguments[1])
        if name == "ABS" and len(arguments) == 1:
            return _combine(arguments[0], 0.0, lambda a, _: abs(a))
        raise AlarmError(
            f"alarm {self.alarm}: metric math function {name} with {len(arguments)} argument(s) is not evaluated here"
        )

    def fill(self, series: Series | float, value: float) -> Series:
        if isinstance(series, float):
            return dict.fromkeys(range(self.slots), series)
        return {slot: series.get(slot, value) for slot in range(self.slots)}

    def if_(
        self, condition: Series | float, when_true: Series | float, when_false: Series | float | None = None
    ) -> Series | float:
        def pick(value: Series | float | None, slot: int) -> float | None:
            if value is None:
                return None
            return value if isinstance(value, float) else value.get(slot)

        if isinstance(condition, float):
            chosen = when_true if condition != 0 else when_false
            return {} if chosen is None else chosen
        out: Series = {}
        for slot, test in condition.items():
            picked = pick(when_true if test != 0 else when_false, slot)
            if picked is not None:
                out[slot] = picked
        return out


def _or(a: float, b: float) -> float:
    return float(a != 0 or b != 0)


def _and(a: float, b: float) -> float:
    return float(a != 0 and b != 0)


def _combine(
    left: Series | float, right: Series | float, operator: Callable[[float, float], float | None]
) -> Series | float:
    if isinstance(left, float) and isinstance(right, float):
        result = operator(left, right)
        return math.nan if result is None else result
    slots = (
        set(left) & set(right)
        if isinstance(left, dict) and isinstance(right, dict)
        else set(left if isinstance(left, dict) else right)  # type: ignore[arg-type]
    )
    out: Series = {}
    for slot in slots:
        a = left[slot] if isinstance(left, dict) else left
        b = right[slot] if isinstance(right, dict) else right
        value = operator(a, b)
        if value is not None and not math.isnan(value):
            out[slot] = value
    return out
