"""The synthesized alarms evaluated on the local stage: state changes, events, notices and actions."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from contract import names as cn
from lambdas.shared.events import parse_alarm_event
from sagecycle.rehearsal.alarm_rules import ALARM, INSUFFICIENT, OK
from tests.rehearsal.conftest_stage import *  # noqa: F403 - the fixtures
from tests.rehearsal.conftest_stage import Rig

APP, STAGE = "sagecycle", "dev"


def _put(rig: Rig, namespace: str, name: str, dimensions: list[dict[str, str]], values: list[float], at: Any) -> None:
    rig.client("cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[{"MetricName": name, "Dimensions": dimensions, "Values": values, "Timestamp": at}],
    )


def _metric(rig: Rig, alarm_name: str) -> tuple[str, str, list[dict[str, str]]]:
    spec = rig.stage.alarm(alarm_name).definition
    return spec["Namespace"], spec["MetricName"], spec["Dimensions"]


def test_new_alarms_start_insufficient_and_settle_by_their_missing_data_treatment(rig: Rig) -> None:
    # GIVEN the provisioned stage: every alarm is INSUFFICIENT_DATA, as CloudWatch creates them
    cloudwatch = rig.client("cloudwatch")
    described = cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    assert {a["StateValue"] for a in described} == {INSUFFICIENT}
    # WHEN the first minute is evaluated with no data at all
    rig.clock.advance(60)
    rig.alarms.evaluate()
    # THEN notBreaching alarms are OK and the breaching one (no invocations) is ALARM
    for alarm in rig.stage.alarms:
        treatment = alarm.definition.get("TreatMissingData")
        if alarm.kind == "metric" and treatment in ("notBreaching", "breaching"):
            assert rig.alarms.state(alarm.name) == (ALARM if treatment == "breaching" else OK), alarm.name


def test_drift_alarm_goes_to_alarm_and_the_synthesized_rule_starts_training(rig: Rig) -> None:
    # GIVEN the drift alarm settled OK, then the drift metric above its threshold (metric from the alarm itself)
    drift = cn.alarm_name(APP, STAGE, cn.DRIFT_ALARM_SUFFIX)
    rig.clock.advance(60)
    rig.alarms.evaluate()
    assert rig.alarms.state(drift) == OK
    namespace, metric, dimensions = _metric(rig, drift)
    threshold = rig.stage.alarm(drift).definition["Threshold"]
    _put(rig, namespace, metric, dimensions, [threshold + 0.3], rig.clock.now())
    # WHEN the next minute is evaluated and the bus delivers
    rig.clock.advance(60)
    changes = rig.alarms.evaluate()
    rig.bus.flush()
    # THEN the alarm is ALARM in the local CloudWatch, its state-change event matched the retrain rule,
    # and the real start-training function was invoked by that rule
    assert {"alarm": drift, "old": OK, "new": ALARM} in [{k: c[k] for k in ("alarm", "old", "new")} for c in changes]
    assert rig.client("cloudwatch").describe_alarms(AlarmNames=[drift])["MetricAlarms"][0]["StateValue"] == ALARM
    retrain = next(r for r in rig.stage.rules if r.pattern and drift in json.dumps(r.pattern))
    matches = [e for e in rig.timeline.of_kind("rule.match") if e["data"]["rule"] == retrain.name]
    assert len(matches) == 1
    started = [i for i in rig.functions.invocations if i["function"] == "start_training"]
    assert [i["source"] for i in started] == [f"rule {retrain.logical_id}"]
    # ... the event is the documented shape: the function's own parser reads it
    event = next(e for e in rig.timeline.of_kind("event") if e["summary"].endswith("Alarm State Change"))
    assert event["data"]["detail_type"] == "CloudWatch Alarm State Change"


def test_alarm_state_change_event_is_read_by_the_functions_parser(rig: Rig) -> None:
    # GIVEN a state change captured from the bus
    seen: list[dict[str, Any]] = []
    put = rig.bus.put

    def recording(event: Any) -> list[str]:
        seen.append(dict(event))
        return put(event)

    rig.bus.put = recording  # type: ignore[method-assign]
    drift = cn.alarm_name(APP, STAGE, cn.DRIFT_ALARM_SUFFIX)
    namespace, metric, dimensions = _metric(rig, drift)
    _put(rig, namespace, metric, dimensions, [5.0], rig.clock.now())
    rig.clock.advance(60)
    # WHEN evaluated
    rig.alarms.evaluate()
    # THEN the event parses with lambdas.shared.events and carries the alarm's configuration and reason data
    event = next(e for e in seen if e["detail"]["alarmName"] == drift and e["detail"]["state"]["value"] == ALARM)
    change = parse_alarm_event(event)
    assert (change.alarm_name, change.state) == (drift, ALARM)
    assert event["resources"] == [rig.stage.alarm(drift).arn]
    assert event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["name"] == metric
    assert json.loads(event["detail"]["state"]["reasonData"])["recentDatapoints"] == [5.0]


def test_p99_latency_alarm_needs_m_of_n_breaching_minutes(rig: Rig) -> None:
    # GIVEN the model-latency alarm (p99, 3 of 5 one-minute periods, notBreaching)
    latency = cn.alarm_name(APP, STAGE, cn.ENDPOINT_ALARMS["model_latency"])
    spec = rig.stage.alarm(latency).definition
    assert spec["ExtendedStatistic"] == "p99"
    namespace, metric, dimensions = _metric(rig, latency)
    slow, fast = spec["Threshold"] * 2, spec["Threshold"] / 10
    states = []
    # WHEN each minute has 100 requests, 2 of them slow (p99 slow) in minutes 1, 3 and 5 only
    for minute in range(5):
        values = [fast] * 98 + ([slow, slow] if minute % 2 == 0 else [fast, fast])
        _put(rig, namespace, metric, dimensions, values, rig.clock.now() + timedelta(seconds=30))
        rig.clock.advance(60)
        rig.alarms.evaluate()
        states.append(rig.alarms.state(latency))
    # THEN it turns ALARM only when the third slow minute arrives; a single slow request (p99 fast) never counts
    assert states == [OK, OK, OK, OK, ALARM]


def test_5xx_alarm_feeds_the_composite_and_the_responder_runs(rig: Rig) -> None:
    # GIVEN traffic that keeps the no-invocations alarm OK and errors above the 5xx threshold in 2 of 3 minutes
    errors = cn.alarm_name(APP, STAGE, cn.ENDPOINT_ALARMS["errors_5xx"])
    unhealthy = cn.alarm_name(APP, STAGE, cn.ENDPOINT_ALARMS["unhealthy"])
    namespace, metric, dimensions = _metric(rig, errors)
    threshold = rig.stage.alarm(errors).definition["Threshold"]
    invocations = cn.alarm_name(APP, STAGE, cn.ENDPOINT_ALARMS["no_invocations"])
    inv_ns, inv_metric, inv_dims = _metric(rig, invocations)
    for minute in range(3):
        at = rig.clock.now() + timedelta(seconds=10)
        _put(rig, inv_ns, inv_metric, inv_dims, [1.0] * 50, at)
        _put(rig, namespace, metric, dimensions, [1.0] * int(threshold + 2) if minute != 1 else [0.0], at)
        # WHEN each minute passes and the alarms are evaluated
        rig.clock.advance(60)
        rig.alarms.evaluate()
    rig.bus.flush()
    # THEN the 5xx alarm and the composite are ALARM, the responder ran by the synthesized rule, and the
    # operators' inbox holds CloudWatch's notifications
    assert rig.alarms.state(errors) == ALARM
    assert rig.alarms.state(unhealthy) == ALARM
    assert any(i["function"] == "alarm_responder" and i["ok"] for i in rig.functions.invocations)
    subjects = [n["subject"] for n in rig.bus.inbox]
    assert any(s.startswith(f'ALARM: "{errors}"') for s in subjects)
    composite_events = [e for e in rig.timeline.of_kind("alarm.state") if e["data"]["alarm"] == unhealthy]
    assert composite_events[-1]["data"]["new"] == ALARM


def test_metric_math_4xx_rate_alarm(rig: Rig) -> None:
    # GIVEN the 4xx-rate alarm: IF(invocations > 0, 100 * FILL(errors, 0) / invocations, 0), 2 of 3 periods
    rate = cn.alarm_name(APP, STAGE, cn.ENDPOINT_ALARMS["rate_4xx"])
    spec = rig.stage.alarm(rate).definition
    queries = {q["Id"]: q for q in spec["Metrics"]}
    period = queries["invocations"]["MetricStat"]["Period"]

    def put(query: str, values: list[float]) -> None:
        metric = queries[query]["MetricStat"]["Metric"]
        _put(rig, metric["Namespace"], metric["MetricName"], metric["Dimensions"], values, rig.clock.now())

    # WHEN two periods carry 100 invocations with 10 client errors (10 % > 5 %), one with none at all
    states = []
    for errors in (10, None, 10):
        put("invocations", [1.0] * 100)
        if errors:
            put("errors", [1.0] * errors)
        rig.clock.advance(period)
        rig.alarms.evaluate()
        states.append(rig.alarms.state(rate))
    # THEN FILL makes the quiet period 0 %, and the second breaching period of three raises the alarm
    assert states == [OK, OK, ALARM]


def test_dead_letter_queue_depth_reaches_its_alarm(rig: Rig) -> None:
    # GIVEN a message waiting in the ingest function's dead-letter queue (the function's synthesized DLQ)
    dlq = rig.stage.queues[rig.stage.functions["ingest"].dead_letter_arn or ""]
    rig.client("sqs").send_message(QueueUrl=dlq.url, MessageBody="{}")
    alarm = next(
        a for a in rig.stage.alarms if {"Name": "QueueName", "Value": dlq.name} in a.definition.get("Dimensions", [])
    )
    # WHEN the next minute is evaluated (SQS publishes its depth every minute)
    rig.clock.advance(60)
    rig.alarms.evaluate()
    # THEN the depth alarm is ALARM
    assert rig.alarms.state(alarm.name) == ALARM
