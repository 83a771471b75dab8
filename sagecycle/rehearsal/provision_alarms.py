"""Provisioning CloudWatch: metric alarms (every field the template gives, starting in INSUFFICIENT_DATA as
CloudWatch's do) and composite alarms (through moto's backend: its server has no route for PutCompositeAlarm).

Each creator takes the provisioner (`sagecycle.rehearsal.stage`), the stack, the logical id and the resource, and
returns what Ref and Fn::GetAtt give for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from sagecycle.rehearsal.stage_model import PARTITION, AlarmDef, LocalStage, Physical
from sagecycle.rehearsal.templates import generated_name, present, tagged

if TYPE_CHECKING:
    from sagecycle.rehearsal.stage import Provisioner

_ACTIONS: Final = ("AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "InsufficientDataActions")
_METRIC: Final = (
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)
_COMPOSITE: Final = ("ActionsSuppressor", "ActionsSuppressorWaitPeriod", "ActionsSuppressorExtensionPeriod")


def metric_alarm(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    request = {"AlarmName": props.get("AlarmName") or generated_name(stack, logical_id)}
    request |= present(props, (*_ACTIONS, *_METRIC))
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in request:
            request[key] = int(request[key])
    if "Threshold" in request:
        request["Threshold"] = float(request["Threshold"])
    request |= tagged(props)
    cloudwatch = p.client("cloudwatch")
    cloudwatch.put_metric_alarm(**request)
    # A new alarm starts in INSUFFICIENT_DATA on CloudWatch (moto starts it in OK).
    cloudwatch.set_alarm_state(
        AlarmName=request["AlarmName"], StateValue="INSUFFICIENT_DATA", StateReason="Unchecked: Initial alarm creation"
    )
    return _recorded(p, "metric", stack, logical_id, resource, request)


def composite_alarm(p: Provisioner, stack: str, logical_id: str, resource: Mapping[str, Any]) -> Physical:
    props = p.props(resource)
    request = {
        "AlarmName": props.get("AlarmName") or generated_name(stack, logical_id),
        "AlarmRule": props["AlarmRule"],
        **present(props, (*_ACTIONS, *_COMPOSITE)),
        **tagged(props),
    }
    _put_composite_alarm(p.stage, request)
    return _recorded(p, "composite", stack, logical_id, resource, request)


def _recorded(
    p: Provisioner, kind: str, stack: str, logical_id: str, resource: Mapping[str, Any], request: dict[str, Any]
) -> Physical:
    """The created alarm kept in the stage (its request is the evaluator's definition); Ref is its name."""
    name = str(request["AlarmName"])
    arn = f"arn:{PARTITION}:cloudwatch:{p.stage.region}:{p.stage.account}:alarm:{name}"
    p.stage.alarms.append(AlarmDef(name, arn, kind, stack, logical_id, request))
    return Physical(resource["Type"], name, {"Arn": arn})


def _put_composite_alarm(stage: LocalStage, request: Mapping[str, Any]) -> None:
    """PutCompositeAlarm, through moto's own backend: moto's server has the model but no route for it."""
    from moto.backends import get_backend

    backend = get_backend("cloudwatch")[stage.account][stage.region]
    backend.put_metric_alarm(
        name=request["AlarmName"],
        namespace="",
        metric_name="",
        comparison_operator="",
        evaluation_periods=0,
        period=0,
        threshold=0.0,
        statistic="",
        description=request.get("AlarmDescription", ""),
        dimensions=[],
        alarm_actions=list(request.get("AlarmActions", [])),
        ok_actions=list(request.get("OKActions", [])),
        insufficient_data_actions=list(request.get("InsufficientDataActions", [])),
        actions_enabled=bool(request.get("ActionsEnabled", True)),
        rule=request["AlarmRule"],
        tags=list(request.get("Tags", [])),
    )
    backend.set_alarm_state(request["AlarmName"], "Unchecked: Initial alarm creation", "{}", "INSUFFICIENT_DATA")
