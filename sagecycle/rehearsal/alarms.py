"""CloudWatch alarms, evaluated as CloudWatch documents it, on the stage's synthesized definitions.

`AlarmEvaluator.evaluate()` evaluates every alarm of the stage at each minute boundary of the simulated
clock since its last call (CloudWatch evaluates alarms every minute):

- A metric alarm's datapoints come from the local CloudWatch's stored data (moto's backend, in this process;
  moto's GetMetricStatistics ignores ExtendedStatistics and does not align periods, so the evaluator
  aggregates the raw datapoints itself): the metric is its namespace, name and exact set of dimensions (each
  combination of dimensions is its own metric), filtered by `Unit` when the alarm names one; the statistic
  is `Statistic` (SampleCount, Average, Sum, Minimum, Maximum) or `ExtendedStatistic` (`pNN` / `pNN.NN`:
  nearest-rank percentile of the single values, as percentiles cannot be computed from statistic sets).
- The period slots end at the evaluation minute and reach back over the *evaluation range*: `EvaluationPeriods
  + 2` periods, as the User Guide's example retrieves five datapoints for an alarm of three ("How alarm state
  is evaluated when data is missing").
- `evaluate_datapoints` applies the documented rules: with at least N real datapoints in the range, the N
  most recent are evaluated; with fewer, missing ones are filled by `TreatMissingData` (`breaching`,
  `notBreaching`), and with `missing` / `ignore` the state goes INSUFFICIENT_DATA / stays as it is unless the
  real datapoints decide it; M of N (`DatapointsToAlarm`) breaching datapoints mean ALARM. The test
  `tests/rehearsal/test_alarms.py` checks both tables of that page. Alarms on `AWS/DynamoDB` always ignore
  missing data, as documented. `EvaluateLowSampleCountPercentile: ignore` keeps the state while a percentile
  has fewer than 10/(1-p) samples.
- Metric math alarms (`Metrics` with an expression) evaluate the expression per period slot over the queried
  series: arithmetic (+ - * /), comparisons, AND / OR, IF(condition, a[, b]), FILL(series, value) and ABS; a
  division by zero or a slot missing from an operand leaves that slot missing. Anything else raises
  `AlarmError` naming the function.
- Composite alarms evaluate their `AlarmRule` (ALARM(), OK(), INSUFFICIENT_DATA(), AND, OR, NOT, TRUE,
  FALSE) over their children's states after the metric alarms of the same minute: TRUE -> ALARM, else OK.

A state change is written to the local CloudWatch (`SetAlarmState`, so the hosting's rollback logic and anyone
calling DescribeAlarms see it), recorded in the timeline ("alarm.state"), emitted as a "CloudWatch Alarm State
Change" event on the bus (routed by the synthesized rules), and sent to the alarm's SNS actions for the new
state (ALARM / OK / INSUFFICIENT_DATA actions, when actions are enabled) in CloudWatch's notification format.

The SQS queues of the stage publish their depth metrics (`AWS/SQS`, `QueueName`) at each evaluated minute,
as SQS does every minute, so the dead-letter-queue alarms see their queues.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.events import AlarmState, EventBus, alarm_state_change
from sagecycle.rehearsal.stage import AlarmDef, LocalStage
from sagecycle.rehearsal.timeline import Timeline

OK: Final = "OK"
ALARM: Final = "ALARM"
INSUFFICIENT: Final = "INSUFFICIENT_DATA"
EXTRA_RANGE_PERIODS: Final = 2  # evaluation range = N + 2 periods (the User Guide's example: 5 for N = 3)
SQS_DEPTH_TICKS: Final = 10  # at most this many minutes of queue depth are published per evaluate() call

COMPARISONS: Final[dict[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_WORDS: Final = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
TREATMENTS: Final = ("missing", "ignore", "breaching", "notBreaching")
_REGION_NAMES: Final = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
}


class AlarmError(ValueError):
    """An alarm this evaluator cannot evaluate as CloudWatch would; the message names the alarm and why."""


# --------------------------------------------------------------------------------------- the documented rule


def evaluate_datapoints(
    datapoints: Sequence[float | None],
    *,
    threshold: float,
    comparison: str,
    evaluation_periods: int,
    datapoints_to_alarm: int | None = None,
    treat_missing_data: str = "missing",
    current_state: str = INSUFFICIENT,
) -> str:
    """The state CloudWatch sets for this evaluation range (oldest first; None = missing datapoint).

    Reproduces the two tables of "How alarm state is evaluated when data is missing" (CloudWatch User Guide).
    """
    if comparison not in COMPARISONS:
        raise AlarmError(f"comparison {comparison} is not evaluated here (anomaly detection bands are not)")
    if treat_missing_data not in TREATMENTS:
        raise AlarmError(f"TreatMissingData {treat_missing_data!r}; allowed: {', '.join(TREATMENTS)}")
    n = evaluation_periods
    m = datapoints_to_alarm or n
    if not 1 <= m <= n:
        raise AlarmError(f"DatapointsToAlarm {m} must be between 1 and EvaluationPeriods {n}")
    breaches = COMPARISONS[comparison]
    real = [v for v in datapoints if v is not None]
    if len(real) >= n:  # enough real datapoints: the treatment of missing data is not needed
        return ALARM if sum(breaches(v, threshold) for v in real[-n:]) >= m else OK
    breaching = sum(breaches(v, threshold) for v in real)
    if treat_missing_data in ("breaching", "notBreaching"):
        filled = n - len(real) if treat_missing_data == "breaching" else 0
        return ALARM if breaching + filled >= m else OK
    if not real:
        return INSUFFICIENT if treat_missing_data == "missing" else current_state
    if breaching >= m:
        return ALARM
    if breaching < len(real):  # a real datapoint within the threshold: ALARM is out of reach
        return OK
    if treat_missing_data == "ignore":
        return current_state
    # missing: every real datapoint breaches but too few of them. The User Guide's tables go to ALARM when the
    # oldest datapoint of the range breaches ("X - - - -") and to INSUFFICIENT_DATA otherwise ("- - - - X").
    oldest = datapoints[0]
    return ALARM if oldest is not None and breaches(oldest, threshold) else INSUFFICIENT


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of raw values."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,2})?|100)$")


@dataclass
class _Slot:
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
        match = _PERCENTILE.match(stat)
        if match is None:
            raise AlarmError(
                f"statistic {stat} is not evaluated here (SampleCount, Average, Sum, Minimum, Maximum, pNN)"
            )
        if not self.values:
            return None  # percentiles are not available from statistic sets
        return percentile(self.values, float(match.group(1)))


def _utc(moment: Any) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if isinstance(moment, (int, float)):
        return datetime.fromtimestamp(moment, UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _MetricIndex:
    """The local CloudWatch's raw datapoints, by metric identity, sorted by time."""

    def __init__(self, data: Sequence[Any]) -> None:
        self._by_metric: dict[tuple[str, str, frozenset[tuple[str, str]]], list[tuple[datetime, Any]]] = {}
        for datum in data:
            key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
            self._by_metric.setdefault(key, []).append((_utc(datum.timestamp), datum))
        self._times: dict[tuple[str, str, frozenset[tuple[str, str]]], list[datetime]] = {}
        for key, items in self._by_metric.items():
            items.sort(key=lambda item: item[0])
            self._times[key] = [t for t, _ in items]

    def slot(
        self, namespace: str, name: str, dimensions: Sequence[Mapping[str, str]], start: datetime, end: datetime,
        unit: str | None = None,
    ) -> _Slot:  # fmt: skip
        key = (namespace, name, frozenset((d["Name"], d["Value"]) for d in dimensions))
        items, times = self._by_metric.get(key, []), self._times.get(key, [])
        slot = _Slot([])
        for _, datum in items[bisect_left(times, start) : bisect_left(times, end)]:
            if unit and getattr(datum, "unit", None) != unit:
                continue
            if hasattr(datum, "value"):
                slot.add_single(float(datum.value))
            else:
                slot.add_set(float(datum.sum), float(datum.sample_count), float(datum.min), float(datum.max))
        return slot


# ------------------------------------------------------------------------------------------- metric math

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|&&|\|\||[-+*/(),<>]))")
Series = dict[int, float]


class _Expression:
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


# -------------------------------------------------------------------------------------------- composite

_RULE_TOKEN = re.compile(
    r'\s*(?:(ALARM|OK|INSUFFICIENT_DATA)\s*\(\s*(?:"([^"]*)"|([^)\s]*))\s*\)|(AND|OR|NOT|TRUE|FALSE|\(|\)))'
)


def evaluate_rule(rule: str, states: Mapping[str, str], *, alarm: str = "") -> bool:
    """A composite alarm's rule over its children's states (by name or ARN)."""
    tokens: list[tuple[str, ...]] = []
    position = 0
    while position < len(rule.rstrip()):
        match = _RULE_TOKEN.match(rule, position)
        if match is None:
            raise AlarmError(f"alarm {alarm}: cannot read rule {rule!r} at {rule[position:]!r}")
        state, quoted, bare, word = match.groups()
        tokens.append(("state", state, quoted if quoted is not None else bare) if state else ("word", word))
        position = match.end()
    index = 0

    def peek() -> tuple[str, ...] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, ...]:
        nonlocal index
        if index >= len(tokens):
            raise AlarmError(f"alarm {alarm}: rule {rule!r} ends too early")
        index += 1
        return tokens[index - 1]

    def disjunction() -> bool:
        value = conjunction()
        while peek() == ("word", "OR"):
            take()
            value = conjunction() or value
        return value

    def conjunction() -> bool:
        value = negation()
        while peek() == ("word", "AND"):
            take()
            value = negation() and value
        return value

    def negation() -> bool:
        if peek() == ("word", "NOT"):
            take()
            return not negation()
        token = take()
        if token == ("word", "("):
            value = disjunction()
            if take() != ("word", ")"):
                raise AlarmError(f"alarm {alarm}: unbalanced parentheses in {rule!r}")
            return value
        if token in (("word", "TRUE"), ("word", "FALSE")):
            return token[1] == "TRUE"
        if token[0] == "state":
            reference = token[2]
            name = reference.rsplit(":alarm:", 1)[-1]
            if name not in states:
                raise AlarmError(f"alarm {alarm}: rule names {reference}, which is not an alarm of the stage")
            return states[name] == token[1]
        raise AlarmError(f"alarm {alarm}: unexpected {token[-1]!r} in rule {rule!r}")

    value = disjunction()
    if index != len(tokens):
        raise AlarmError(f"alarm {alarm}: unexpected {tokens[index][-1]!r} in rule {rule!r}")
    return value


def rule_children(rule: str) -> list[str]:
    return [
        (m.group(2) if m.group(2) is not None else m.group(3)).rsplit(":alarm:", 1)[-1]
        for m in _RULE_TOKEN.finditer(rule)
        if m.group(1)
    ]


# ---------------------------------------------------------------------------------------------- evaluator


@dataclass(frozen=True)
class _Outcome:
    state: str
    reason: str
    reason_data: dict[str, Any]
    hold: bool = False  # keep the current state (low-sample percentile with "ignore")


class AlarmEvaluator:
    """Evaluates the stage's alarms on the simulated clock. `transitions` lists every state change so far."""

    def __init__(self, stage: LocalStage, clock: Clock, bus: EventBus, timeline: Timeline) -> None:
        self.stage = stage
        self.clock = clock
        self.bus = bus
        self.timeline = timeline
        self.transitions: list[dict[str, Any]] = []
        periods = [int(a.definition.get("Period", 60)) for a in stage.alarms if a.kind == "metric"]
        periods += [
            int(q["MetricStat"]["Period"])
            for a in stage.alarms
            for q in a.definition.get("Metrics", [])
            if "MetricStat" in q
        ]
        self.step = timedelta(seconds=min([60, *[p for p in periods if p < 60]]))
        self._last_tick = self._floor(clock.now()) - self.step
        self._changed_at: dict[str, datetime] = {}

    def _floor(self, moment: datetime) -> datetime:
        step = int(self.step.total_seconds())
        epoch = int(moment.timestamp())
        return datetime.fromtimestamp(epoch - epoch % step, UTC)

    def _backend(self) -> Any:
        from moto.backends import get_backend

        return get_backend("cloudwatch")[self.stage.account][self.stage.region]

    def state(self, name: str) -> str:
        return str(self._backend().alarms[name].state_value)

    def evaluate(self) -> list[dict[str, Any]]:
        """Evaluate every alarm at each minute boundary since the last call; returns the state changes."""
        now_tick = self._floor(self.clock.now())
        ticks = []
        tick = self._last_tick + self.step
        while tick <= now_tick:
            ticks.append(tick)
            tick += self.step
        if not ticks:
            return []
        self._publish_queue_depth(ticks[-SQS_DEPTH_TICKS:])
        backend = self._backend()
        index = _MetricIndex(list(backend.metric_data))
        changes: list[dict[str, Any]] = []
        for tick in ticks:
            for alarm in self.stage.alarms:
                if alarm.kind == "metric":
                    change = self._apply(alarm, self._evaluate_metric(alarm, index, tick), tick)
                    if change:
                        changes.append(change)
            for alarm in self.stage.alarms:
                if alarm.kind == "composite":
                    change = self._apply(alarm, self._evaluate_composite(alarm, tick), tick)
                    if change:
                        changes.append(change)
        self._last_tick = ticks[-1]
        return changes

    # -- metric alarms
    def _evaluate_metric(self, alarm: AlarmDef, index: _MetricIndex, tick: datetime) -> _Outcome:
        spec = alarm.definition
        n = int(spec["EvaluationPeriods"])
        m = int(spec.get("DatapointsToAlarm", n))
        slots = n + EXTRA_RANGE_PERIODS
        treat = spec.get("TreatMissingData", "missing")
        if "Metrics" in spec:
            period, values, stat = self._math(alarm, index, tick, slots)
            low_sample = False
        else:
            period = int(spec["Period"])
            stat = spec.get("ExtendedStatistic") or spec["Statistic"]
            values, low_sample = [], False
            for k in range(slots - 1, -1, -1):  # oldest first
                end = tick - timedelta(seconds=k * period)
                start = end - timedelta(seconds=period)
                dims = spec.get("Dimensions", [])
                slot = index.slot(spec["Namespace"], spec["MetricName"], dims, start, end, spec.get("Unit"))
                values.append(slot.statistic(stat))
                match = _PERCENTILE.match(stat)
                if match and slot.count and k < n:
                    p = float(match.group(1)) / 100
                    needed = 10 / (1 - p) if p >= 0.5 and p < 1 else (10 / p if 0 < p < 0.5 else 0)
                    low_sample = low_sample or slot.count < needed
            if spec.get("Namespace") == "AWS/DynamoDB":
                treat = "ignore"  # documented: DynamoDB alarms always ignore missing data
        current = self.state(alarm.name)
        if low_sample and spec.get("EvaluateLowSampleCountPercentile") == "ignore":
            return _Outcome(current, "", {}, hold=True)
        state = evaluate_datapoints(
            values,
            threshold=float(spec["Threshold"]),
            comparison=spec["ComparisonOperator"],
            evaluation_periods=n,
            datapoints_to_alarm=m,
            treat_missing_data=treat,
            current_state=current,
        )
        return _Outcome(state, *self._reason(alarm, values, state, current, tick, period, stat, n, m))

    def _math(
        self, alarm: AlarmDef, index: _MetricIndex, tick: datetime, slots: int
    ) -> tuple[int, list[float | None], str]:
        queries = alarm.definition["Metrics"]
        periods = {int(q["MetricStat"]["Period"]) for q in queries if "MetricStat" in q}
        if len(periods) != 1:
            raise AlarmError(
                f"alarm {alarm.name}: the metrics of a math alarm must share one period, got {sorted(periods)}"
            )
        period = periods.pop()
        series: dict[str, Series] = {}
        for query in queries:
            if "MetricStat" not in query:
                continue
            stat = query["MetricStat"]
            metric = stat["Metric"]
            values: Series = {}
            for k in range(slots):
                position = slots - 1 - k  # slot 0 is the oldest
                end = tick - timedelta(seconds=k * period)
                start = end - timedelta(seconds=period)
                dims = metric.get("Dimensions", [])
                slot = index.slot(metric["Namespace"], metric["MetricName"], dims, start, end, stat.get("Unit"))
                value = slot.statistic(stat["Stat"])
                if value is not None:
                    values[position] = value
            series[query["Id"]] = values
        for query in queries:  # expressions may use one another, in the order given
            if "Expression" in query:
                result = _Expression(query["Expression"], series, slots, alarm.name).value()
                series[query["Id"]] = dict.fromkeys(range(slots), result) if isinstance(result, float) else result
        returned = [q for q in queries if q.get("ReturnData", True)]
        if len(returned) != 1:
            raise AlarmError(f"alarm {alarm.name}: exactly one query must return data, got {len(returned)}")
        chosen = series[returned[0]["Id"]]
        return period, [chosen.get(slot) for slot in range(slots)], returned[0].get("Label", returned[0]["Id"])

    def _reason(
        self, alarm: AlarmDef, values: Sequence[float | None], state: str, current: str, tick: datetime, period: int,
        stat: str, n: int, m: int,
    ) -> tuple[str, dict[str, Any]]:  # fmt: skip
        spec = alarm.definition
        real = [(k, v) for k, v in enumerate(values) if v is not None][-n:]
        start = tick - timedelta(seconds=len(values) * period)

        def stamp(k: int) -> datetime:
            return start + timedelta(seconds=k * period)

        listed = ", ".join(f"{v} ({stamp(k):%d/%m/%y %H:%M:%S})" for k, v in reversed(real))
        data = {
            "version": "1.0",
            "queryDate": tick.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "startDate": (stamp(real[0][0]) if real else start).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "statistic": stat,
            "period": period,
            "recentDatapoints": [v for _, v in real],
            "threshold": float(spec["Threshold"]),
        }
        if state == INSUFFICIENT:
            return f"Insufficient Data: {n - len(real)} datapoint(s) were unknown.", data
        treat = spec.get("TreatMissingData", "missing")
        if len(real) < n and treat in ("breaching", "notBreaching"):
            as_what = "Breaching" if treat == "breaching" else "NonBreaching"
            received = f"{len(real)} datapoint(s) [{listed}] were received" if real else "no datapoints were received"
            return (
                f"Threshold Crossed: {received} for {n} period(s) and {n - len(real)} missing datapoint(s) "
                f"were treated as [{as_what}].",
                data,
            )
        breaches = COMPARISONS[spec["ComparisonOperator"]]
        count = sum(breaches(v, float(spec["Threshold"])) for _, v in real)
        words = _WORDS[spec["ComparisonOperator"]]
        verb = "was" if len(real) == 1 else "were"
        negation = "" if state == ALARM else "not "
        shown = count if state == ALARM else len(real) - count
        reason = (
            f"Threshold Crossed: {shown} out of the last {len(real)} datapoints "
            f"[{listed}] {verb} {negation}{words} the threshold ({float(spec['Threshold'])}) "
            f"(minimum {m if state == ALARM else 1} datapoint{'s' if m > 1 and state == ALARM else ''} for "
            f"{current} -> {state} transition)."
        )
        return reason, data

    # -- composite alarms
    def _evaluate_composite(self, alarm: AlarmDef, tick: datetime) -> _Outcome:
        backend = self._backend()
        states = {name: str(a.state_value) for name, a in backend.alarms.items()}
        rule = alarm.definition["AlarmRule"]
        firing = evaluate_rule(rule, states, alarm=alarm.name)
        state = ALARM if firing else OK
        children = [c for c in rule_children(rule) if c in states]
        changed = sorted(children, key=lambda c: self._changed_at.get(c, datetime.min.replace(tzinfo=UTC)))
        trigger = changed[-1] if changed else None
        if trigger is None:
            return _Outcome(state, "Composite alarm evaluated", {"triggeringAlarms": []})
        arn = self.stage.alarm(trigger).arn if any(a.name == trigger for a in self.stage.alarms) else trigger
        when = self._changed_at.get(trigger, tick)
        reason = f"{arn} transitioned to {states[trigger]} at {when:%A %d %B, %Y %H:%M:%S} UTC"
        data = {
            "triggeringAlarms": [
                {
                    "arn": arn,
                    "state": {"value": states[trigger], "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")},
                }
            ]
        }
        return _Outcome(state, reason, data)

    # -- applying a state
    def _apply(self, alarm: AlarmDef, outcome: _Outcome, tick: datetime) -> dict[str, Any] | None:
        backend_alarm = self._backend().alarms[alarm.name]
        old_value = str(backend_alarm.state_value)
        if outcome.hold or outcome.state == old_value:
            return None
        old = AlarmState(
            value=old_value,
            reason=str(backend_alarm.state_reason),
            timestamp=self._changed_at.get(alarm.name, _utc(backend_alarm.state_updated_timestamp)),
            reason_data=backend_alarm.state_reason_data
            if backend_alarm.state_reason_data not in (None, "{}")
            else None,
        )
        new = AlarmState(outcome.state, outcome.reason, tick, json.dumps(outcome.reason_data, separators=(",", ":")))
        self.bus.client("cloudwatch").set_alarm_state(
            AlarmName=alarm.name,
            StateValue=new.value,
            StateReason=new.reason[:1023],
            StateReasonData=new.reason_data or "{}",
        )
        self._changed_at[alarm.name] = tick
        change: dict[str, Any] = {
            "alarm": alarm.name,
            "old": old.value,
            "new": new.value,
            "reason": new.reason,
            "t": tick.isoformat(),
        }
        self.transitions.append(change)
        self.timeline.record("alarm.state", f"{alarm.name}: {old.value} -> {new.value}", **change)
        self.bus.put(alarm_state_change(alarm, old, new, account=self.stage.account, region=self.stage.region))
        self._notify(alarm, old, new)
        return change

    def _notify(self, alarm: AlarmDef, old: AlarmState, new: AlarmState) -> None:
        """The alarm's actions for its new state: SNS topics get CloudWatch's notification message."""
        spec = alarm.definition
        if not spec.get("ActionsEnabled", True):
            return
        key = {ALARM: "AlarmActions", OK: "OKActions", INSUFFICIENT: "InsufficientDataActions"}[new.value]
        region_name = _REGION_NAMES.get(self.stage.region, self.stage.region)
        message = {
            "AlarmName": alarm.name,
            "AlarmDescription": spec.get("AlarmDescription"),
            "AWSAccountId": self.stage.account,
            "NewStateValue": new.value,
            "NewStateReason": new.reason,
            "StateChangeTime": new.timestamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "Region": region_name,
            "AlarmArn": alarm.arn,
            "OldStateValue": old.value,
            "OKActions": spec.get("OKActions", []),
            "AlarmActions": spec.get("AlarmActions", []),
            "InsufficientDataActions": spec.get("InsufficientDataActions", []),
        }
        if alarm.kind == "composite":
            message["AlarmRule"] = spec["AlarmRule"]
        else:
            message["Trigger"] = _trigger(spec)
        for action in spec.get(key, []):
            if not str(action).startswith("arn:aws:sns:"):
                self.timeline.record("alarm.action_skipped", f"{alarm.name}: action {action} is not rehearsed")
                continue
            subject = f'{new.value}: "{alarm.name}" in {region_name}'
            self.bus.client("sns").publish(TopicArn=action, Subject=subject[:100], Message=json.dumps(message))

    def _publish_queue_depth(self, ticks: Sequence[datetime]) -> None:
        """SQS's per-minute queue metrics (AWS/SQS, QueueName): the depth now, at each recent minute."""
        if not self.stage.queues:
            return
        sqs = self.bus.client("sqs")
        data: list[dict[str, Any]] = []
        for queue in self.stage.queues.values():
            attributes = sqs.get_queue_attributes(
                QueueUrl=queue.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            for tick in ticks:
                stamp = tick - timedelta(seconds=1)  # inside the minute that ends at the tick
                for attribute, metric in (
                    ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesVisible"),
                    ("ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesNotVisible"),
                    ("ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesDelayed"),
                ):
                    data.append(
                        {
                            "MetricName": metric,
                            "Dimensions": [{"Name": "QueueName", "Value": queue.name}],
                            "Timestamp": stamp,
                            "Value": float(attributes.get(attribute, 0)),
                            "Unit": "Count",
                        }
                    )
        cloudwatch = self.bus.client("cloudwatch")
        for start in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=data[start : start + 1000])


def _trigger(spec: Mapping[str, Any]) -> dict[str, Any]:
    trigger: dict[str, Any] = {
        "Period": spec.get("Period"),
        "EvaluationPeriods": spec.get("EvaluationPeriods"),
        "DatapointsToAlarm": spec.get("DatapointsToAlarm", spec.get("EvaluationPeriods")),
        "ComparisonOperator": spec.get("ComparisonOperator"),
        "Threshold": spec.get("Threshold"),
        "TreatMissingData": spec.get("TreatMissingData", "missing"),
        "EvaluateLowSampleCountPercentile": spec.get("EvaluateLowSampleCountPercentile", ""),
    }
    if "Metrics" in spec:
        trigger["Metrics"] = spec["Metrics"]
    else:
        trigger.update(
            {
                "MetricName": spec.get("MetricName"),
                "Namespace": spec.get("Namespace"),
                "StatisticType": "ExtendedStatistic" if "ExtendedStatistic" in spec else "Statistic",
                "Statistic": spec.get("ExtendedStatistic") or str(spec.get("Statistic", "")).upper(),
                "Unit": spec.get("Unit"),
                "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in spec.get("Dimensions", [])],
            }
        )
    return trigger
