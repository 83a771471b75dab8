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

The documented rules live in `alarm_rules` (datapoints, composite rules), the metric data and the metric-math
expressions in `metric_math`; this module is the state machine that applies them minute by minute.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sagecycle.rehearsal.alarm_rules import (
    ALARM,
    COMPARISONS,
    INSUFFICIENT,
    OK,
    TREATMENTS,
    AlarmError,
    evaluate_datapoints,
    evaluate_rule,
    rule_children,
)
from sagecycle.rehearsal.clock import Clock
from sagecycle.rehearsal.event_shapes import AlarmState, alarm_state_change
from sagecycle.rehearsal.events import EventBus
from sagecycle.rehearsal.metric_math import PERCENTILE, Expression, MetricIndex, Series, percentile, utc
from sagecycle.rehearsal.stage_model import AlarmDef, LocalStage
from sagecycle.rehearsal.timeline import Timeline

__all__ = [  # the evaluator; the documented rules (alarm_rules) and percentile (metric_math) as before
    "ALARM",
    "COMPARISONS",
    "INSUFFICIENT",
    "OK",
    "TREATMENTS",
    "AlarmError",
    "AlarmEvaluator",
    "evaluate_datapoints",
    "evaluate_rule",
    "percentile",
    "rule_children",
]

EXTRA_RANGE_PERIODS: Final = 2  # evaluation range = N + 2 periods (the User Guide's example: 5 for N = 3)
SQS_DEPTH_TICKS: Final = 10  # at most this many minutes of queue depth are published per evaluate() call
_WORDS: Final = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
_REGION_NAMES: Final = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-central-1": "EU (Frankfurt)",
}


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
        index = MetricIndex(list(backend.metric_data))
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
    def _evaluate_metric(self, alarm: AlarmDef, index: MetricIndex, tick: datetime) -> _Outcome:
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
            dims = spec.get("Dimensions", [])
            found = index.slots(spec["Namespace"], spec["MetricName"], dims, tick, period, slots, spec.get("Unit"))
            for position, slot in enumerate(found):
                values.append(slot.statistic(stat))
                match = PERCENTILE.match(stat)
                if match and slot.count and position >= slots - n:  # within the N most recent periods
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
        self, alarm: AlarmDef, index: MetricIndex, tick: datetime, slots: int
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
            dims = metric.get("Dimensions", [])
            found = index.slots(metric["Namespace"], metric["MetricName"], dims, tick, period, slots, stat.get("Unit"))
            for position, slot in enumerate(found):  # slot 0 is the oldest
                value = slot.statistic(stat["Stat"])
                if value is not None:
                    values[position] = value
            series[query["Id"]] = values
        for query in queries:  # expressions may use one another, in the order given
            if "Expression" in query:
                result = Expression(query["Expression"], series, slots, alarm.name).value()
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
            timestamp=self._changed_at.get(alarm.name, utc(backend_alarm.state_updated_timestamp)),
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
