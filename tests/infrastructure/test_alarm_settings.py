"""Every alarm the stacks define, with its direction, threshold, period and evaluation periods: one table.

An alarm whose comparison flips, whose threshold drifts from the configuration, or whose period stretches still
synthesizes and passes cdk-nag; only a table like this one notices. A new alarm needs a row here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from aws_cdk.assertions import Match

from config.settings import StageConfig
from lambdas.shared import contract as c
from tests.infrastructure.conftest import Synthesized

GT, GE, LT = "GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold"


@dataclass(frozen=True)
class Expected:
    comparison: str
    threshold: float
    period: int  # seconds
    evaluation_periods: int
    datapoints: int | None = None  # None: all of the evaluation periods
    missing: str = "notBreaching"


def expected_alarms(config: StageConfig) -> dict[tuple[str, str], Expected]:
    """(stack concern, construct path of the alarm as its logical id reads, without the hash) -> its settings."""
    e, r = config.endpoint, config.retraining
    slo_us = e.latency_slo_ms * 1000
    idle = math.ceil(e.no_invocations_alarm_minutes / 5)
    table = {
        # CIS-style security signals: any one event in five minutes.
        **{
            ("Audit", f"SecurityAlarms{name}Alarm"): Expected(GE, 1, 300, 1)
            for name in ("UnauthorizedApiCalls", "CmkDisabledOrScheduledForDeletion", "BucketPolicyChanges")
        },
        ("Audit", "SecurityAlarmsIamPolicyChangesAlarm"): Expected(GE, 1, 300, 1),
        # The endpoint's contract: the two rollback alarms are quick enough to stop a canary.
        ("Endpoint", "AlarmsErrors5xx"): Expected(GT, e.max_5xx_per_minute, 60, 3, 2),
        ("Endpoint", "AlarmsRate4xx"): Expected(GT, e.max_4xx_rate_percent, 300, 3, 2),
        ("Endpoint", "AlarmsModelLatency"): Expected(GT, slo_us, 60, 5, 3),
        ("Endpoint", "AlarmsOverheadLatency"): Expected(GT, slo_us // 2, 60, 5, 3),
        ("Endpoint", "AlarmsNoInvocations"): Expected(LT, 1, 300, idle, idle, missing="breaching"),
        # Retraining: a feature drifted, or the champion's live metric crossed the floor (direction by objective).
        ("Retraining", "AlarmsDrift"): Expected(GT, r.drift_psi_threshold, 3600, 1),
        ("Retraining", "AlarmsQuality"): Expected(
            LT if config.training.objective == "binary:logistic" else GT, r.metric_floor, 6 * 3600, 1
        ),
        # Any message in a dead-letter queue, within a minute.
        **{
            ("Retraining", f"{queue}DeadLettersNotEmpty"): Expected(GT, 0, 60, 1)
            for queue in ("StartTraining", "Ingest", "Promote", "DriftMonitor", "AlarmResponder", "NewData", "Rule")
        },
    }
    if config.operator_email:  # notices the operators' mailbox refused wait in the subscription's dead-letter queue
        table[("Audit", "UndeliveredNoticesNotEmpty")] = Expected(GT, 0, 60, 1)
    if not e.serverless:  # instance metrics exist only for instance-backed endpoints
        table |= {
            ("Endpoint", "AlarmsCpu"): Expected(GT, 80, 300, 3, 3),
            ("Endpoint", "AlarmsMemory"): Expected(GT, 85, 300, 3, 3),
            ("Endpoint", "AlarmsDisk"): Expected(GT, 80, 300, 3, 3),
        }
    return table


def _alarms(s: Synthesized) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    found = {}
    for concern in ("Data", "Audit", "Model", "Retraining", "Endpoint", "Network", "Notebook"):
        if s.config.stack_name(concern) not in s.raw:
            continue
        for logical_id, alarm in s.resources(concern, "AWS::CloudWatch::Alarm").items():
            found[(concern, re.sub(r"[0-9A-F]{8}$", "", logical_id))] = (logical_id, alarm["Properties"])
    return found


def _period(props: dict[str, Any]) -> int:
    """A metric alarm's period; a metric-math alarm's is its metrics' (all the same)."""
    if "Period" in props:
        return int(props["Period"])
    periods = {m["MetricStat"]["Period"] for m in props["Metrics"] if "MetricStat" in m}
    assert len(periods) == 1, periods
    return int(periods.pop())


def test_every_alarm_is_in_the_table(synthesized: Synthesized) -> None:
    # GIVEN every alarm of every stack / WHEN the stage is synthesized / THEN each has its row, and each row its alarm
    assert set(_alarms(synthesized)) == set(expected_alarms(synthesized.config))


def test_every_alarm_has_its_direction_threshold_period_and_evaluation_periods(synthesized: Synthesized) -> None:
    # GIVEN every alarm of the stage, by logical id, and the table of what each should be
    # WHEN the stage is synthesized (once per session)
    alarms = _alarms(synthesized)
    for key, want in expected_alarms(synthesized.config).items():
        logical_id, props = alarms[key]
        concern = key[0]
        # THEN the alarm, found by its logical id, has exactly these settings
        synthesized.template(concern).has_resource(
            "AWS::CloudWatch::Alarm",
            {
                "Properties": Match.object_like(
                    {
                        "ComparisonOperator": want.comparison,
                        "Threshold": want.threshold,
                        "EvaluationPeriods": want.evaluation_periods,
                        "TreatMissingData": want.missing,
                    }
                )
            },
        )
        got = (
            props["ComparisonOperator"],
            props["Threshold"],
            _period(props),
            props["EvaluationPeriods"],
            props.get("DatapointsToAlarm"),
            props["TreatMissingData"],
        )
        assert got == (
            want.comparison,
            want.threshold,
            want.period,
            want.evaluation_periods,
            want.datapoints,
            want.missing,
        ), (key, logical_id)


def test_named_alarms_keep_the_names_the_functions_and_rules_use(synthesized: Synthesized) -> None:
    # GIVEN the alarms other components find by name (rules, rollback configuration, the responder)
    alarms = _alarms(synthesized)
    app, stage = "sagecycle", synthesized.config.stage
    by_key = {
        ("Retraining", "AlarmsDrift"): c.alarm_name(app, stage, c.DRIFT_ALARM_SUFFIX),
        ("Retraining", "AlarmsQuality"): c.alarm_name(app, stage, c.QUALITY_ALARM_SUFFIX),
        ("Endpoint", "AlarmsErrors5xx"): c.alarm_name(app, stage, c.ENDPOINT_ALARMS["errors_5xx"]),
        ("Endpoint", "AlarmsModelLatency"): c.alarm_name(app, stage, c.ENDPOINT_ALARMS["model_latency"]),
    }
    # WHEN the stage is synthesized (once per session)
    # THEN each carries the contract's name
    for key, name in by_key.items():
        assert alarms[key][1]["AlarmName"] == name, key


def test_the_composite_health_alarm_is_the_only_composite_and_watches_four_alarms(synthesized: Synthesized) -> None:
    # GIVEN the Endpoint stack
    endpoint = synthesized.template("Endpoint")
    # WHEN the stage is synthesized (once per session)
    # THEN it has one composite alarm, the contract's health alarm by name
    endpoint.resource_count_is("AWS::CloudWatch::CompositeAlarm", 1)
    (props,) = [
        v["Properties"]
        for v in endpoint.find_resources(
            "AWS::CloudWatch::CompositeAlarm",
            {
                "Properties": {
                    "AlarmName": c.alarm_name("sagecycle", synthesized.config.stage, c.ENDPOINT_ALARMS["unhealthy"])
                }
            },
        ).values()
    ]
    # AND its rule is four alarms joined by OR
    rule = str(props["AlarmRule"])
    assert rule.count("ALARM(") == 4 and " OR " in rule


def _dead_letter_queues(raw: dict[str, Any]) -> set[str]:
    """Every queue something sends its failures to: a queue's redrive, a function, a rule target, a subscription."""
    targets: set[str] = set()

    def walk(value: Any, under_dead_letter: bool) -> None:
        if isinstance(value, dict):
            if under_dead_letter and list(value) == ["Fn::GetAtt"] and value["Fn::GetAtt"][1] == "Arn":
                targets.add(value["Fn::GetAtt"][0])
            for k, v in value.items():
                walk(v, under_dead_letter or k in ("RedrivePolicy", "DeadLetterConfig", "deadLetterTargetArn"))
        elif isinstance(value, list):
            for v in value:
                walk(v, under_dead_letter)

    for resource in raw["Resources"].values():
        walk(resource.get("Properties", {}), False)
    queues = {k for k, v in raw["Resources"].items() if v["Type"] == "AWS::SQS::Queue"}
    return targets & queues


def test_every_dead_letter_queue_alarms_to_the_operators_when_not_empty(synthesized: Synthesized) -> None:
    checked = 0
    for concern in ("Data", "Audit", "Model", "Retraining", "Endpoint", "Network", "Notebook"):
        raw = synthesized.raw.get(synthesized.config.stack_name(concern))
        if raw is None:
            continue
        alarms = [a["Properties"] for a in raw["Resources"].values() if a["Type"] == "AWS::CloudWatch::Alarm"]
        # GIVEN every queue of the stack that receives another resource's failures
        # WHEN the stage is synthesized (once per session)
        for queue in sorted(_dead_letter_queues(raw)):
            checked += 1
            watching = [
                a
                for a in alarms
                if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
                and a.get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
            ]
            # THEN one alarm watches its depth, fires on the first message, and tells the operators
            assert len(watching) == 1, (concern, queue)
            (alarm,) = watching
            assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (GT, 0), (concern, queue)
            assert alarm.get("AlarmActions"), (concern, queue)
    # a DLQ per glue function, the new-data queue's, the rules' (and the e-mail subscription's where there is one)
    assert checked == len(c.FUNCTIONS) + 2 + (1 if synthesized.config.operator_email else 0)
